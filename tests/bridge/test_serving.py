"""The hot path of GET /api/celery-status: pre-encoded bodies, ETag/304, gzip, max-age, aged per request."""

from __future__ import annotations

import gzip
import json
import zlib

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics_families

from celerystatus import StatusView
from celerystatus_server.bridge import BridgeServer
from celerystatus_server.bridge.representation import StatusDocument, accepts_gzip, etag_matches

from .fake_service import FakeBackend, make_status

STATUS = "/api/celery-status"


async def _on_round(bridge: BridgeServer, fake_backend: FakeBackend, round_number: int) -> None:
    hub = bridge._app.state.bridge.hub
    await fake_backend.service.publish(make_status(round_number))
    await hub.wait_for(lambda s: s.from_backend and s.data["inspection"]["round"] == round_number, timeout=5)


async def test_etag_revalidates_until_the_next_snapshot(
    http: httpx.AsyncClient, bridge: BridgeServer, fake_backend: FakeBackend
) -> None:
    await _on_round(bridge, fake_backend, 3)
    first = await http.get(STATUS)
    etag = first.headers["etag"]
    assert first.status_code == 200 and etag.startswith('"') and not etag.startswith("W/")
    # max-age runs up to the next round: the fake's refresh interval is 2 s.
    cache_control = first.headers["cache-control"]
    assert cache_control.startswith("max-age=") and 0 <= int(cache_control.split("=")[1]) <= 2
    assert "Authorization" in first.headers["vary"] and "Accept-Encoding" in first.headers["vary"]

    again = await http.get(STATUS, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    weak = await http.get(STATUS, headers={"If-None-Match": f'"other", W/{etag}'})
    assert weak.status_code == 304

    await _on_round(bridge, fake_backend, 4)
    changed = await http.get(STATUS, headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["etag"] != etag
    assert changed.json()["inspection"]["round"] == 4
    assert fake_backend.service.get_requests == []


async def test_age_moves_per_request_without_reencoding(
    http: httpx.AsyncClient, bridge: BridgeServer, fake_backend: FakeBackend
) -> None:
    await _on_round(bridge, fake_backend, 5)
    snapshot = bridge._app.state.bridge.hub.latest
    document = snapshot.document(StatusView.FULL)
    ages = [(await http.get(STATUS)).json()["age"] for _ in range(3)]
    assert ages == sorted(ages) and ages[0] >= 0.1  # the server's 0.1 s, plus the time since receipt
    assert bridge._app.state.bridge.hub.latest is snapshot
    assert snapshot.document(StatusView.FULL) is document  # encoded once for the three requests


async def test_gzip_is_the_same_document(
    http: httpx.AsyncClient, bridge: BridgeServer, fake_backend: FakeBackend
) -> None:
    await _on_round(bridge, fake_backend, 6)
    plain = await http.get(STATUS, headers={"Accept-Encoding": "identity"})
    zipped = await http.get(STATUS, headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in plain.headers
    assert zipped.headers["content-encoding"] == "gzip"
    assert zipped.headers["etag"] != plain.headers["etag"]  # one strong ETag per coding
    a, b = plain.json(), zipped.json()
    assert b["age"] >= a["age"]
    assert {**a, "age": None} == {**b, "age": None}
    refused = await http.get(STATUS, headers={"Accept-Encoding": "gzip;q=0"})
    assert "content-encoding" not in refused.headers
    # Revalidation with the gzip ETag answers 304 too.
    again = await http.get(STATUS, headers={"Accept-Encoding": "gzip", "If-None-Match": zipped.headers["etag"]})
    assert again.status_code == 304


async def test_summary_view_is_served_from_the_stream(
    http: httpx.AsyncClient, bridge: BridgeServer, fake_backend: FakeBackend
) -> None:
    await _on_round(bridge, fake_backend, 7)
    full = (await http.get(STATUS)).json()
    summary = await http.get(STATUS, params={"view": "summary", "_": "1"})
    body = summary.json()
    assert summary.status_code == 200
    assert full["queue_details"]["active"] and body["queue_details"] == {"active": {}, "scheduled": {}, "reserved": {}}
    assert {k: v for k, v in body.items() if k not in ("queue_details", "age")} == {
        k: v for k, v in full.items() if k not in ("queue_details", "age")
    }
    assert fake_backend.service.get_requests == []
    # Anything the stream cannot answer still reaches the route and its validation.
    assert (await http.get(STATUS, params={"view": "summary", "view ": "x"})).status_code == 400
    assert (await http.get(STATUS, params=[("view", "summary"), ("view", "full")])).status_code in (200, 422)


async def test_metrics_render_once_per_snapshot(
    http: httpx.AsyncClient, bridge: BridgeServer, fake_backend: FakeBackend
) -> None:
    await _on_round(bridge, fake_backend, 8)
    metrics = bridge._app.state.bridge.metrics
    first = (await http.get("/metrics")).text
    renders = metrics.renders
    second = (await http.get("/metrics")).text
    assert metrics.renders == renders
    assert "celery_snapshot_age_seconds" in first and "celery_snapshot_age_seconds" in second
    assert first.split("celery_snapshot_age_seconds")[0] == second.split("celery_snapshot_age_seconds")[0]
    await _on_round(bridge, fake_backend, 9)
    await http.get("/metrics")
    assert metrics.renders == renders + 1


async def test_openmetrics_is_rendered_once_per_snapshot_too(
    http: httpx.AsyncClient, bridge: BridgeServer, fake_backend: FakeBackend
) -> None:
    await _on_round(bridge, fake_backend, 10)
    metrics = bridge._app.state.bridge.metrics
    accept = {"Accept": "application/openmetrics-text; version=1.0.0"}
    await http.get("/metrics")
    renders = metrics.renders
    first = await http.get("/metrics", headers=accept)
    second = await http.get("/metrics", headers=accept)
    assert metrics.renders == renders + 1  # its own rendering, kept beside the text one
    for response in (first, second):
        assert response.headers["content-type"].startswith("application/openmetrics-text")
        # The cached part and the per-scrape part make one exposition: a single EOF, at the end.
        assert response.text.count("# EOF") == 1 and response.text.endswith("# EOF\n")
        families = {f.name: f for f in openmetrics_families(response.text)}  # type: ignore[no-untyped-call]
        assert families["celery_workers"].samples[0].value == 2
        assert families["celery_snapshot_age_seconds"].samples[0].value >= 0.1
        assert "process_cpu_seconds" in families and "python_info" in families
    assert "# EOF" not in (await http.get("/metrics")).text
    assert metrics.renders == renders + 1


_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@given(
    before=st.dictionaries(st.text(max_size=8).filter(lambda k: k != "age"), _values, max_size=5),
    after=st.dictionaries(st.text(max_size=8).filter(lambda k: k != "age"), _values, max_size=5),
    age=st.none() | st.floats(min_value=0, max_value=1e6),
    elapsed=st.floats(min_value=0, max_value=1e4),
)
def test_spliced_bodies_decode_to_the_aged_document(
    before: dict,  # type: ignore[type-arg]
    after: dict,  # type: ignore[type-arg]
    age: float | None,
    elapsed: float,
) -> None:
    after = {k: v for k, v in after.items() if k not in before}
    data = {**before, "age": age, **after}
    document = StatusDocument(data, received_at=100.0)
    identity = document.identity(now=100.0 + elapsed)
    decoded = json.loads(identity)
    assert list(decoded) == list(data) and {**decoded, "age": None} == {**data, "age": None}
    assert decoded["age"] == document.current_age(now=100.0 + elapsed)
    assert age is None or decoded["age"] == pytest.approx(age + elapsed, abs=1e-6)
    zipped = document.gzipped(now=100.0 + elapsed)
    assert gzip.decompress(zipped) == identity
    assert zlib.decompressobj(zlib.MAX_WBITS | 16).decompress(zipped) == identity


def test_conditional_and_coding_headers() -> None:
    assert etag_matches('"a", W/"b"', ('"b"',)) and etag_matches("*", ('"x"',))
    assert not etag_matches('"a"', ('"b"',)) and not etag_matches("", ('"b"',))
    assert accepts_gzip("br, gzip") and accepts_gzip("gzip;q=0.5") and accepts_gzip("*")
    assert not accepts_gzip("gzip;q=0") and not accepts_gzip("identity") and not accepts_gzip("")
