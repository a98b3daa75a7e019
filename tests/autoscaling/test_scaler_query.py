"""scalerMetadata validation and the per-trigger computation (pure logic)."""

from __future__ import annotations

import pytest

from celerystatus.scaling import ClusterLoad, ScalingMetric
from celerystatus_server.scaler_query import MetadataError, ScalerQuery


def test_defaults() -> None:
    query = ScalerQuery.parse({})
    assert query == ScalerQuery(None, ScalingMetric.BACKLOG, None, 0.0)
    assert query.metric_name == "celery-backlog-workers"


def test_every_key_and_kedas_own_keys() -> None:
    query = ScalerQuery.parse(
        {
            "queues": " b, a ,a",
            "metric": "waiting",
            "targetPerWorker": "2.5",
            "activationThreshold": "3",
            "scalerAddress": "celery-status:50051",
            "enableTLS": "true",
            "unsafeSsl": "false",
        }
    )
    assert query == ScalerQuery(("a", "b"), ScalingMetric.WAITING, 2.5, 3.0)


def test_from_env_keys_are_kedas_resolved_values() -> None:
    assert ScalerQuery.parse({"queuesFromEnv": "x"}).queues == ("x",)


def test_metric_names_are_short_dns_like_and_distinct() -> None:
    long = ScalerQuery.parse({"queues": ",".join(f"Queue_{i}" for i in range(40))}).metric_name
    assert len(long) <= 60 and long == long.lower() and "_" not in long
    one = ScalerQuery.parse({"queues": "a.b"}).metric_name
    other = ScalerQuery.parse({"queues": "a-b"}).metric_name
    assert one != other and one.startswith("celery-backlog-workers-a-b-")


@pytest.mark.parametrize(
    ("metadata", "key"),
    [
        ({"queue": "a"}, "queue"),
        ({"targetperworker": "2"}, "targetperworker"),
        ({"queues": ""}, "queues"),
        ({"queues": " , "}, "queues"),
        ({"queues": "a b"}, "queues"),
        ({"queues": "a", "queuesFromEnv": "b"}, "queuesFromEnv"),
        ({"metric": "depth"}, "metric"),
        ({"targetPerWorker": "0"}, "targetPerWorker"),
        ({"targetPerWorker": "-1"}, "targetPerWorker"),
        ({"targetPerWorker": "two"}, "targetPerWorker"),
        ({"targetPerWorker": "nan"}, "targetPerWorker"),
        ({"targetPerWorker": "inf"}, "targetPerWorker"),
        ({"activationThreshold": "-0.5"}, "activationThreshold"),
        ({"activationThreshold": ""}, "activationThreshold"),
    ],
)
def test_bad_metadata_names_the_key(metadata: dict[str, str], key: str) -> None:
    with pytest.raises(MetadataError) as info:
        ScalerQuery.parse(metadata)
    assert info.value.key == key
    assert str(info.value).startswith(f"scalerMetadata.{key}: ")


LOAD = ClusterLoad(workers=2, capacity=4, active=4, reserved=2, waiting=6)


@pytest.mark.parametrize(
    ("metadata", "desired", "active"),
    [
        ({}, 6, True),  # backlog 12 over the mean pool of 2
        ({"targetPerWorker": "4"}, 3, True),
        ({"metric": "waiting"}, 3, True),
        ({"metric": "saturation"}, 6, True),  # 12 tasks for 4 slots: 3.0 saturated
        ({"metric": "saturation", "targetPerWorker": "0.5"}, 12, True),
        ({"metric": "saturation", "activationThreshold": "3"}, 6, False),
        ({"activationThreshold": "12"}, 6, False),
        ({"activationThreshold": "11.5"}, 6, True),
    ],
)
def test_desired_and_active(metadata: dict[str, str], desired: int, active: bool) -> None:
    query = ScalerQuery.parse(metadata)
    assert (query.desired(LOAD), query.active(LOAD)) == (desired, active)


def test_nothing_to_do_wants_no_worker_and_is_inactive() -> None:
    query = ScalerQuery.parse({})
    assert (query.desired(ClusterLoad(workers=3, capacity=12)), query.active(ClusterLoad())) == (0, False)
