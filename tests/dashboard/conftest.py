"""Browser, server and worker fixtures for the dashboard tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import service_unavailable
from tests.support.browser import PageProblems, chromium_executable
from tests.support.serve import ServeProcess

DESKTOP = {"width": 1280, "height": 900}


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One chromium per module: Playwright's sync API keeps an event loop marked as running in
    this thread while it is open, which would stop pytest-asyncio from running later async tests."""
    executable = chromium_executable()
    if executable is None:
        service_unavailable("chromium not found (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        service_unavailable("playwright is not installed (pip install -e '.[dev]')")
        raise
    with sync_playwright() as playwright:
        # --no-sandbox: CI containers run as root, where chromium's sandbox cannot start.
        launched = playwright.chromium.launch(executable_path=executable, headless=True, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


OpenPage = Callable[..., tuple[Any, PageProblems]]


@pytest.fixture
def open_page(browser: Any) -> Iterator[OpenPage]:
    """``page, problems = open_page(url)``; at teardown the page must have had no problems."""
    opened: list[tuple[Any, PageProblems]] = []

    def open_(
        url: str,
        *,
        viewport: dict[str, int] | None = None,
        color_scheme: str = "light",
        before: Callable[[Any], None] | None = None,
    ) -> tuple[Any, PageProblems]:
        context = browser.new_context(viewport=viewport or DESKTOP, color_scheme=color_scheme)
        page = context.new_page()
        page.set_default_timeout(30_000)
        problems = PageProblems()
        problems.attach(page)
        opened.append((page, problems))
        if before is not None:
            before(page)
        page.goto(url)
        return page, problems

    yield open_
    failures = []
    for page, problems in opened:
        problems.closed = True
        failures.extend(problems.all())
        page.context.close()
    assert not failures, f"the page had problems: {failures}"


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., ServeProcess]]:
    """``serve(broker_url, extra_args=..., env=...)``: a running ``celery-status serve``, stopped at teardown."""
    started: list[ServeProcess] = []

    def start(broker_url: str, **options: Any) -> ServeProcess:
        process = ServeProcess(broker_url, tmp_path / f"serve{len(started)}.log", **options).start()
        started.append(process)
        return process

    yield start
    for process in reversed(started):
        process.stop()
