"""The public surface: what ``import celerystatus`` promises."""

from __future__ import annotations

import celerystatus
import celerystatus.aio
from celerystatus import exceptions

EXPECTED = {
    "DEFAULT_TARGET",
    "DEFAULT_TIMEOUT",
    "AsyncCeleryStatusClient",
    "CeleryStatus",
    "CeleryStatusClient",
    "CeleryStatusError",
    "DeadlineExceeded",
    "Finding",
    "FindingKind",
    "InspectionInfo",
    "InspectionMethod",
    "InternalError",
    "InvalidArgument",
    "NotFound",
    "PermissionDenied",
    "Pool",
    "QueueDepth",
    "QueueDetails",
    "RateLimited",
    "ReplicaInfo",
    "ReplicaRole",
    "RetryPolicy",
    "ScalingAction",
    "ScalingAdvice",
    "StatusView",
    "TLSConfig",
    "Task",
    "TaskFilter",
    "TaskLocation",
    "TaskSearchResult",
    "TaskState",
    "Unauthenticated",
    "Unavailable",
    "WorkerHealth",
    "WorkerStats",
    "__version__",
}


def test_all_is_exactly_the_public_api() -> None:
    # Adding a name is a deliberate API decision: update EXPECTED with it.
    assert set(celerystatus.__all__) == EXPECTED
    assert len(celerystatus.__all__) == len(EXPECTED)
    for name in celerystatus.__all__:
        assert hasattr(celerystatus, name), name


def test_aio_exposes_the_async_client() -> None:
    assert celerystatus.aio.__all__ == ["AsyncCeleryStatusClient"]
    assert celerystatus.aio.AsyncCeleryStatusClient is celerystatus.AsyncCeleryStatusClient


def test_exception_tree_is_flat() -> None:
    for name in exceptions.__all__:
        obj = getattr(exceptions, name)
        if isinstance(obj, type) and obj is not exceptions.CeleryStatusError:
            assert obj.__bases__ == (exceptions.CeleryStatusError,), name


def test_py_typed_ships() -> None:
    from pathlib import Path

    assert (Path(celerystatus.__file__).parent / "py.typed").exists()
