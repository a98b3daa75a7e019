"""The dashboard in a real browser against ``celery-status serve`` and real workers.

Every test also checks (in the ``open_page`` fixture) that the page logged no
console error, threw nothing, and made no failed or 4xx/5xx request.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from celerystatus_server.local_redis import RedisProcess
from celerystatus_server.security.tokens import hash_token
from tests.support.holds import Hold
from tests.support.serve import ServeProcess
from tests.support.waiting import WaitTimeout, wait_for
from tests.support.workers import WorkerFactory

from .conftest import OpenPage

PHONE = {"width": 390, "height": 844}
VIEWER_TOKEN = "dashboard-viewer-token-1234"
ADMIN_TOKEN = "dashboard-admin-token-5678"
SECRET = "sekret-argument-value"
WAIT = 30.0

Serve = Callable[..., ServeProcess]


@pytest.fixture
def hold(redis_url: str) -> Iterator[Hold]:
    held = Hold(redis_url)
    try:
        yield held
    finally:
        held.release(20)
        held.close()


def settled(server: ServeProcess, expected: dict[str, int]) -> dict[str, int] | None:
    """The API's counts when they are ``expected``; None otherwise (the last value ends up in a timeout message)."""
    body = api(server)
    counts = {key: body[key] for key in expected}
    return counts if counts == expected else None


def api(server: ServeProcess, token: str | None = None, **params: str) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = httpx.get(f"{server.url}/api/celery-status", params=params, headers=headers, timeout=5)
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


def card(page: Any, metric: str) -> str:
    text: str = page.inner_text(f'[data-value="{metric}"]')
    return text


def rows(page: Any, table: str) -> int:
    count: int = page.locator(f"#{table} tbody tr:not(.empty)").count()
    return count


def banner(page: Any) -> str:
    state: str = page.get_attribute("#banner", "data-state") or ""
    return state


def until(page: Any, predicate: Callable[[], object], what: str, timeout: float = WAIT) -> None:
    """``wait_for`` with what the page showed when it timed out."""
    try:
        wait_for(predicate, timeout=timeout, message=what)
    except WaitTimeout as timeout_error:
        shown = {
            "banner": page.inner_text("#banner"),
            "transport": page.inner_text("#transport"),
            "workers": page.inner_text("#workers-table tbody"),
            "active": page.inner_text("#active-table tbody"),
        }
        raise WaitTimeout(f"{timeout_error}; page: {shown}") from None


def count(page: Any, metric: str) -> int | None:
    """A card's number; None before the first snapshot is rendered (the card shows a dash)."""
    text = card(page, metric)
    return int(text) if text.isdigit() else None


def page_counts(page: Any) -> dict[str, int | None]:
    return {
        "workers": count(page, "workers"),
        "active_tasks": count(page, "active"),
        "scheduled_tasks": count(page, "scheduled"),
        "reserved_tasks": count(page, "reserved"),
        "worker_rows": page.locator('#workers-table tbody tr[data-state="up"]').count(),
        "active_rows": rows(page, "active-table"),
        "scheduled_rows": rows(page, "scheduled-table"),
    }


def api_counts(body: dict[str, Any]) -> dict[str, int]:
    return {
        "workers": body["workers"],
        "active_tasks": body["active_tasks"],
        "scheduled_tasks": body["scheduled_tasks"],
        "reserved_tasks": body["reserved_tasks"],
        "worker_rows": len(body["worker_stats"]),
        "active_rows": sum(len(t) for t in body["queue_details"]["active"].values()),
        "scheduled_rows": sum(len(t) for t in body["queue_details"]["scheduled"].values()),
    }


def test_page_shows_the_same_counts_as_the_api(
    redis_url: str, worker_factory: WorkerFactory, hold: Hold, serve: Serve, open_page: OpenPage
) -> None:
    worker_factory("dash1")
    worker_factory("dash2")
    # Two held tasks are active whichever workers take them (2 x 2 slots); two with
    # a far ETA stay scheduled. Nothing moves until the test releases them.
    for n in range(2):
        worker_factory.send("tasks.evaluate_code", f"eval-count-{n}", kwargs={"hold": hold.token})
    for n in range(2):
        worker_factory.send("tasks.evaluate_code", f"eval-later-{n}", countdown=600)
    server = serve(redis_url)
    expected = {"workers": 2, "active_tasks": 2, "scheduled_tasks": 2}
    wait_for(lambda: settled(server, expected), timeout=WAIT, message="API settled")

    page, _ = open_page(server.url)
    until(page, lambda: page_counts(page) == api_counts(api(server)), "page equals API")
    assert banner(page) == "connected"
    assert page.get_attribute("#transport", "data-transport") == "websocket"
    # The workers table is sortable from the keyboard.
    header = page.locator("#workers-table thead button", has_text="Total")
    header.focus()
    page.keyboard.press("Enter")
    assert page.locator("#workers-table thead th[aria-sort]").inner_text().startswith("Total")
    # This server records history: the charts come from it, with no note.
    assert page.locator("#history-note").is_hidden()


def test_phone_width_has_no_horizontal_scrolling(redis_url: str, worker_factory: WorkerFactory,
                                                 serve: Serve, open_page: OpenPage) -> None:  # fmt: skip
    worker_factory("dashphone")
    server = serve(redis_url)
    page, _ = open_page(server.url, viewport=PHONE, color_scheme="dark")
    until(page, lambda: card(page, "workers") == "1", "one worker shown")
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"page is {overflow}px wider than the phone"


def test_new_worker_appears_and_killed_worker_is_marked_gone(
    redis_url: str, worker_factory: WorkerFactory, serve: Serve, open_page: OpenPage
) -> None:
    worker_factory("dashfirst")
    server = serve(redis_url)
    page, _ = open_page(server.url)
    until(page, lambda: card(page, "workers") == "1", "first worker shown")

    late = worker_factory("dashlate")
    row = f'#workers-table tr[data-worker="{late.hostname}"]'
    until(page, lambda: page.locator(f'{row}[data-state="up"]').count() == 1, "late worker shown")
    late.kill()
    until(page, lambda: page.locator(f'{row}[data-state="gone"]').count() == 1, "killed worker gone")
    assert "gone" in page.inner_text(row)
    assert card(page, "workers") == "1"
    assert "1 up, 1 gone" in page.inner_text("#workers-summary")


def test_broker_down_banner_and_recovery(
    redis_process: RedisProcess, worker_factory: WorkerFactory, serve: Serve, open_page: OpenPage
) -> None:
    broker = redis_process.url(0)
    worker_factory("dashbroker", broker_url=broker)
    server = serve(broker)
    page, _ = open_page(server.url)
    until(page, lambda: banner(page) == "connected" and card(page, "workers") == "1", "connected, one worker")

    redis_process.stop()
    until(page, lambda: banner(page) == "broker-down", "banner shows broker down")
    text = page.inner_text("#banner")
    assert "Broker down" in text and re.search(r"\d", text), text
    # The last good data stays on screen, and the worker is not declared gone.
    assert page.get_attribute("#workers-table tbody tr", "data-state") == "up"

    redis_process.start()
    until(page, lambda: banner(page) == "connected", "banner cleared after restart")


def test_frozen_server_turns_the_banner_stale_with_its_age(
    redis_url: str, worker_factory: WorkerFactory, serve: Serve, open_page: OpenPage
) -> None:
    worker_factory("dashstale")
    server = serve(redis_url)
    page, _ = open_page(server.url)
    until(page, lambda: banner(page) == "connected" and card(page, "workers") == "1", "connected, one worker")
    # The socket stays open but nothing arrives: only the page's own clock can tell.
    server.freeze()
    try:
        until(page, lambda: banner(page) == "stale", "banner shows stale")
        text = page.inner_text("#banner")
        assert re.search(r"Stale .* \d+(\.\d)?s old", text), text
    finally:
        server.thaw()
    until(page, lambda: banner(page) == "connected", "banner cleared after the server resumed")


def test_reconnects_after_the_server_restarts(
    redis_url: str, worker_factory: WorkerFactory, serve: Serve, open_page: OpenPage
) -> None:
    worker_factory("dashrestart")
    server = serve(redis_url)
    page, problems = open_page(server.url)
    until(page, lambda: page.get_attribute("#transport", "data-transport") == "websocket", "live over WebSocket")

    server.stop()
    until(page, lambda: page.get_attribute("#transport", "data-transport") == "offline", "page knows it is cut off")
    until(page, lambda: banner(page) == "unreachable", "banner says unreachable")
    server.start()  # same ports
    until(page, lambda: page.get_attribute("#transport", "data-transport") == "websocket", "back on the WebSocket",
          timeout=60)  # fmt: skip
    until(page, lambda: banner(page) == "connected" and card(page, "workers") == "1", "connected again")
    # Requests failed while the server was gone; from here on nothing may fail.
    problems.clear()
    page.wait_for_function("() => document.querySelector('#banner').dataset.state === 'connected'")


def test_search_by_eval_id_finds_the_task_and_its_runtime(
    redis_url: str, worker_factory: WorkerFactory, hold: Hold, serve: Serve, open_page: OpenPage
) -> None:
    worker_factory("dashsearch")
    result = worker_factory.send("tasks.evaluate_code", "eval-dash-42", kwargs={"hold": hold.token})
    worker_factory.send("tasks.evaluate_code", "eval-dash-other", countdown=600)
    hold.wait_started()
    # Arguments shown, as the spec's stuck-evaluation finder expects (without tokens
    # anonymous callers are viewers unless --show-args).
    server = serve(redis_url, extra_args=["--show-args"])
    page, _ = open_page(server.url)
    until(page, lambda: rows(page, "active-table") == 1, "the held task shown")

    page.fill("#search-input", "eval-dash-42")
    page.press("#search-input", "Enter")
    row = page.locator(f'#search-table tr[data-task-id="{result.id}"]')
    row.wait_for()
    assert page.locator("#search-table tbody tr").count() == 1
    cells = row.locator("td").all_inner_texts()
    assert "tasks.evaluate_code" in cells and "active" in cells
    assert any(re.fullmatch(r"\d+(\.\d)?s|\d+m \d+s", c.strip()) for c in cells), cells


@pytest.fixture
def with_tokens(redis_url: str, worker_factory: WorkerFactory, hold: Hold, serve: Serve) -> ServeProcess:
    worker_factory("dashtokens")
    worker_factory.send("tasks.evaluate_code", "eval-tok-1", SECRET, kwargs={"hold": hold.token})
    hold.wait_started()
    tokens = f"{hash_token(VIEWER_TOKEN)}:viewer:dashboard,{hash_token(ADMIN_TOKEN)}:admin:ops"
    return serve(redis_url, env={"CELERY_STATUS_TOKENS": tokens})


def sign_in(page: Any, token: str) -> None:
    page.locator("#token-dialog").wait_for(state="visible")
    assert banner(page) == "auth"
    page.fill("#token-input", token)
    page.press("#token-input", "Enter")
    until(page, lambda: banner(page) == "connected" and rows(page, "active-table") == 1, "signed in, task shown")


def test_tokens_prompt_then_viewer_sees_arguments_withheld(with_tokens: ServeProcess, open_page: OpenPage) -> None:
    page, _ = open_page(with_tokens.url)
    # Without a token the page asks for one, and shows no data.
    page.locator("#token-dialog").wait_for(state="visible")
    assert card(page, "workers") == "\u2013"  # the en dash shown for "no data"

    sign_in(page, VIEWER_TOKEN)
    # The WebSocket authenticated too (the token travels as a subprotocol, not in the URL).
    assert page.get_attribute("#transport", "data-transport") == "websocket"
    active = page.inner_text("#active-table tbody")
    assert "withheld" in active
    assert SECRET not in page.content() and "eval-tok-1" not in active
    # Kept for this tab only: sessionStorage, no cookie, never in the address.
    assert page.evaluate("sessionStorage.getItem('celery-status.token')") == VIEWER_TOKEN
    assert page.evaluate("document.cookie") == ""
    assert VIEWER_TOKEN not in page.url


def test_tokens_admin_sees_arguments(with_tokens: ServeProcess, open_page: OpenPage) -> None:
    page, _ = open_page(with_tokens.url)
    sign_in(page, ADMIN_TOKEN)
    assert SECRET in page.inner_text("#active-table tbody")


def test_polling_when_websockets_are_blocked(
    redis_url: str, worker_factory: WorkerFactory, serve: Serve, open_page: OpenPage
) -> None:
    worker_factory("dashpoll")
    server = serve(redis_url)

    def block(ws: Any) -> None:
        ws.close(code=1011, reason="blocked by a proxy")

    page, _ = open_page(server.url, before=lambda p: p.route_web_socket(re.compile(r".*/ws/celery-status$"), block))
    until(page, lambda: page.get_attribute("#transport", "data-transport") == "polling", "polling")
    until(page, lambda: banner(page) == "connected" and card(page, "workers") == "1", "connected, one worker")


def test_disabled_service_says_so(redis_url: str, serve: Serve, open_page: OpenPage) -> None:
    server = serve(redis_url, extra_args=["--disabled"])
    page, _ = open_page(server.url)
    until(page, lambda: banner(page) == "disabled", "disabled banner")
    assert "Disabled" in page.inner_text("#banner")


def test_api_docs_render_offline(redis_url: str, serve: Serve, open_page: OpenPage) -> None:
    server = serve(redis_url, extra_args=["--disabled"])
    page, _ = open_page(f"{server.url}/docs")
    # Rendered by Swagger UI from the installed package: any CDN request would fail here.
    page.locator(".swagger-ui .info .title").wait_for()
    assert "celery-status bridge" in page.inner_text(".swagger-ui .info .title")
    page.locator(".opblock-summary-path", has_text="/api/celery-status").first.wait_for()
