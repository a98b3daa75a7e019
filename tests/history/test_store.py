"""The store on SQLite and PostgreSQL: writes, idempotence across replicas, queries, roll-ups, retention."""

from __future__ import annotations

import json
import math
from collections.abc import Callable

import pytest
from sqlalchemy import func, select

from celerystatus.v1 import celery_status_pb2 as pb
from celerystatus_server.history import query as q
from celerystatus_server.history import schema as t
from celerystatus_server.history.store import HistoryStore, Retention, Sample, TaskRunRecord
from celerystatus_server.security.redaction import Redactor

from .conftest import Clock


def _samples(start: int, count: int, every: int = 10) -> list[Sample]:
    return [
        Sample(
            start + i * every,
            {
                "workers": 2.0,
                "active_tasks": float(i % 3),
                "worker:w1@h:total": float(i * 4),
                "worker:w1@h:uptime": 100.0 + i * every,
                "queue:celery": float(i),
            },
        )
        for i in range(count)
    ]


def _count(store: HistoryStore, resolution: int) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).where(t.samples.c.resolution == resolution)).scalar_one())


def _history(store: HistoryStore, clock: Clock, **fields: object) -> pb.GetHistoryResponse:
    request = pb.GetHistoryRequest(series=fields.pop("series", []))  # type: ignore[arg-type]
    request.since.FromSeconds(int(fields.pop("since")))  # type: ignore[call-overload]
    step = fields.pop("step", None)
    if step is not None:
        request.step.FromSeconds(int(step))  # type: ignore[call-overload]
    return q.run_history(store, q.history_query(request, clock()), redactor=None)


def test_two_replicas_writing_the_same_buckets_store_each_once(
    store: HistoryStore, store_factory: Callable[..., HistoryStore], clock: Clock
) -> None:
    other = store_factory()
    other.upgrade()  # a second replica's start: migrations are already applied
    samples = _samples(int(clock()) - 600, 60)
    store.write(samples[:40])
    other.write(samples[20:])  # overlapping buckets, written concurrently in production
    other.write(samples[:10])
    assert _count(store, t.RAW) == 60
    response = _history(store, clock, since=clock() - 600, step=10, series=["worker:w1@h:total"])
    values = list(response.series[0].values)
    assert values == [float(i * 4) for i in range(60)]


def test_query_columns_step_aggregation_and_gaps(store: HistoryStore, clock: Clock) -> None:
    start = int(clock()) - 600
    store.write(_samples(start, 30))  # the last 300 s are missing
    response = _history(
        store, clock, since=start, step=60, series=["active_tasks", "worker:w1@h:total", "queue:*"]
    )
    assert [s.name for s in response.series] == ["active_tasks", "worker:w1@h:total", "queue:celery"]
    assert len(response.timestamps) == 10
    assert response.timestamps[1] - response.timestamps[0] == 60
    active, total, queue = (list(s.values) for s in response.series)
    # Gauges average over the step, counters take their last value, missing steps are NaN.
    assert active[0] == pytest.approx(sum(i % 3 for i in range(6)) / 6)
    assert total[0] == 20.0 and total[4] == 116.0
    assert all(math.isnan(v) for v in total[5:])
    assert queue[1] == pytest.approx(sum(range(6, 12)) / 6)


def test_rollups_and_retention_follow_the_clock(store: HistoryStore, clock: Clock) -> None:
    start = int(clock()) // 3600 * 3600 - 2 * 3600  # two whole hours of raw samples
    store.write(_samples(start, 720))
    clock.now = start + 2 * 3600 + 60
    done = store.maintain()
    assert done["minute"] == 120
    assert done["hour"] == 2
    assert store.maintain() == {"minute": 0, "hour": 0}  # idempotent
    # A query at 1-hour steps reads the hour roll-ups: mean of the gauge, last of the counter.
    response = _history(store, clock, since=start, step=3600, series=["queue:celery", "worker:w1@h:total"])
    queue, total = (list(s.values) for s in response.series)
    assert queue[0] == pytest.approx(sum(range(360)) / 360)
    assert total[:2] == [359 * 4.0, 719 * 4.0]
    # A day later raw samples are gone, roll-ups remain and still answer.
    clock.advance(Retention().raw + 3600)
    store.maintain()
    assert _count(store, t.RAW) == 0
    assert _count(store, t.MINUTE) == 120
    response = _history(store, clock, since=start, step=60, series=["worker:w1@h:total"])
    assert list(response.series[0].values)[59] == 59 * 6 * 4 + 5 * 4
    # After 30 days only the hour roll-ups are left.
    clock.advance(Retention().minute)
    store.maintain()
    assert _count(store, t.MINUTE) == 0
    assert _count(store, t.HOUR) == 2


def test_run_retention_and_redaction(store: HistoryStore, clock: Clock) -> None:
    now = clock()
    store.write(
        runs=[
            TaskRunRecord("old", "tasks.add", "w1@h", now - 9 * 86400, now - 9 * 86400 + 3, '["eval-1", "secret"]'),
            TaskRunRecord("new", "tasks.add", "w1@h", now - 30, now - 10, '["eval-2", "secret"]', '{"key": "x"}'),
        ]
    )
    store.write(runs=[TaskRunRecord("new", "tasks.add", "w1@h", now - 30, now - 10)])  # other replica
    store.maintain()
    runs, truncated = store.runs(now - 30 * 86400, now + 1)
    assert [r.id for r in runs] == ["new"] and not truncated
    admin = q.task_run(runs[0], None)
    assert [v.string_value for v in admin.args.values] == ["eval-2", "secret"]
    assert admin.runtime.ToSeconds() == 20
    viewer = q.task_run(runs[0], Redactor(["eval-*"]))
    assert [v.string_value for v in viewer.args.values] == ["eval-2", "***"]  # positions kept
    assert {k: v.string_value for k, v in viewer.kwargs.fields.items()} == {"key": "***"} and viewer.args_redacted
    assert json.loads(runs[0].args or "[]")[1] == "secret"  # kept for admins


@pytest.mark.parametrize(
    ("fields", "parameter"),
    [
        ({}, "since"),
        ({"since": 2000, "until": 1000}, "until"),
        ({"since": 0, "step": 1}, "step"),
        ({"since": 1_799_999_000, "runs_limit": -1}, "runs_limit"),
    ],
)
def test_bad_history_requests_name_the_parameter(fields: dict[str, int], parameter: str) -> None:
    request = pb.GetHistoryRequest(runs_limit=fields.get("runs_limit", 0))
    if "since" in fields:
        request.since.FromSeconds(fields["since"])
    if "until" in fields:
        request.until.FromSeconds(fields["until"])
    if "step" in fields:
        request.step.FromSeconds(fields["step"])
    with pytest.raises(q.QueryError, match=rf"^{parameter}:"):
        q.history_query(request, now=1_800_000_000.0)


def test_unknown_series_is_refused(store: HistoryStore, clock: Clock) -> None:
    store.write(_samples(int(clock()) - 100, 5))
    for bad in ("nope", "queue:missing", "worker:w1@h:bogus"):
        with pytest.raises(q.QueryError, match=r"^series:"):
            _history(store, clock, since=clock() - 100, series=[bad])
