"""The shared desired-workers computation (pure logic)."""

from __future__ import annotations

import math

import pytest

from celerystatus.models import CeleryStatus, Pool, QueueDepth, QueueDetails, Task, TaskState, WorkerStats
from celerystatus.scaling import DEFAULT_CONCURRENCY, ClusterLoad, ScalingMetric, desired_workers


def _status() -> CeleryStatus:
    def worker(name: str, concurrency: int, queues: tuple[str, ...]) -> WorkerStats:
        return WorkerStats(hostname=name, pool=Pool(max_concurrency=concurrency), active_queues=queues)

    def task(task_id: str, worker: str, queue: str, state: TaskState) -> Task:
        return Task(id=task_id, worker=worker, routing_key=queue, state=state)

    return CeleryStatus(
        enabled=True,
        connected=True,
        workers=2,
        active_tasks=3,
        reserved_tasks=1,
        worker_stats={"a": worker("a", 4, ("fast",)), "b": worker("b", 2, ("slow", "fast"))},
        queue_details=QueueDetails(
            active={
                "a": (task("1", "a", "fast", TaskState.ACTIVE), task("2", "a", "fast", TaskState.ACTIVE)),
                "b": (task("3", "b", "slow", TaskState.ACTIVE),),
            },
            reserved={"b": (task("4", "b", "slow", TaskState.RESERVED),)},
        ),
        queues=(QueueDepth("fast", 5), QueueDepth("slow", 7), QueueDepth("other", 100)),
    )


def test_load_of_the_whole_cluster_uses_the_counters() -> None:
    load = ClusterLoad.of(_status())
    assert load == ClusterLoad(workers=2, capacity=6, active=3, reserved=1, waiting=112)
    assert load.backlog == 116
    assert load.mean_concurrency == 3.0
    assert load.saturation == pytest.approx(116 / 6)


def test_load_of_some_queues_counts_their_workers_tasks_and_messages() -> None:
    assert ClusterLoad.of(_status(), ["slow"]) == ClusterLoad(workers=1, capacity=2, active=1, reserved=1, waiting=7)
    assert ClusterLoad.of(_status(), ["fast"]) == ClusterLoad(workers=2, capacity=6, active=2, reserved=0, waiting=5)
    assert ClusterLoad.of(_status(), ["nobody"]) == ClusterLoad()


@pytest.mark.parametrize(
    ("load", "kwargs", "desired"),
    [
        (ClusterLoad(), {}, 0),
        # no worker live: the default concurrency stands in for the pool size
        (ClusterLoad(waiting=9), {}, math.ceil(9 / DEFAULT_CONCURRENCY)),
        (ClusterLoad(workers=2, capacity=8, active=8, waiting=8), {}, 4),
        (ClusterLoad(workers=2, capacity=8, active=8, waiting=8), {"utilisation": 0.8}, 5),
        (ClusterLoad(workers=2, capacity=8, active=8, waiting=8), {"per_worker": 2}, 8),
        (ClusterLoad(workers=2, capacity=8, active=8, waiting=8), {"metric": ScalingMetric.WAITING}, 2),
        # float noise at an exact boundary does not add a worker
        (ClusterLoad(workers=1, capacity=6, active=9), {"utilisation": 0.3}, 5),
        (ClusterLoad(workers=1, capacity=4, active=8), {"utilisation": 0.8}, 3),
    ],
)
def test_desired_workers(load: ClusterLoad, kwargs: dict[str, object], desired: int) -> None:
    assert desired_workers(load, **kwargs) == desired  # type: ignore[arg-type]


def test_metric_values_and_saturation_without_workers() -> None:
    load = ClusterLoad(workers=1, capacity=4, active=2, reserved=1, waiting=3)
    assert load.value(ScalingMetric.BACKLOG) == 6.0
    assert load.value(ScalingMetric.WAITING) == 3.0
    assert load.value(ScalingMetric.SATURATION) == 1.5
    assert ClusterLoad(waiting=1).saturation == math.inf
    assert ClusterLoad().saturation == 0.0


@pytest.mark.parametrize(
    "kwargs", [{"per_worker": 0}, {"per_worker": -1.0}, {"utilisation": 0}, {"default_concurrency": 0}]
)
def test_bad_arguments(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        desired_workers(ClusterLoad(waiting=1), **kwargs)  # type: ignore[arg-type]
