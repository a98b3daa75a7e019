"""The public surface: what ``import celerystatus`` promises."""

from __future__ import annotations

import celerystatus
import celerystatus.aio
from celerystatus import exceptions

EXPECTED = {
    "DEFAULT_TARGET",
    "DEFAULT_TIMEOUT",
    "Alert",
    "AlertList",
    "AlertState",
    "AlertUpdate",
    "ReceiverStats",
    "AsyncCeleryStatusClient",
    "CeleryStatus",
    "CeleryStatusClient",
    "CeleryStatusError",
    "ClusterLoad",
    "DeadlineExceeded",
    "FailedPrecondition",
    "Finding",
    "FindingKind",
    "InspectionInfo",
    "InspectionMethod",
    "InternalError",
    "InvalidArgument",
    "NotFound",
    "OnDisconnect",
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
    "ScalingMetric",
    "ServingStatus",
    "StatusView",
    "TLSConfig",
    "Task",
    "TaskFilter",
    "TaskLocation",
    "TaskSearchResult",
    "TaskState",
    "Unauthenticated",
    "Unavailable",
    "Unimplemented",
    "WorkerHealth",
    "WorkerStats",
    "__version__",
    "parse_target",
    # history and trends (issue 10)
    "History",
    "HistoryInfo",
    "HistoryState",
    "LongRunningTask",
    "QueueTrend",
    "Rate",
    "Saturation",
    "TaskRun",
    "TaskRuntime",
    "Trends",
    "WorkerTrend",
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
    # One level under CeleryStatusError; Unimplemented refines InternalError so
    # code written against the documented mapping (UNIMPLEMENTED is an
    # InternalError) keeps working.
    refinements = {exceptions.Unimplemented: exceptions.InternalError}
    for name in exceptions.__all__:
        obj = getattr(exceptions, name)
        if isinstance(obj, type) and obj is not exceptions.CeleryStatusError:
            parent = refinements.get(obj, exceptions.CeleryStatusError)
            assert obj.__bases__ == (parent,), name


def test_py_typed_ships() -> None:
    from pathlib import Path

    assert (Path(celerystatus.__file__).parent / "py.typed").exists()


def test_server_and_router_use_only_the_public_sdk() -> None:
    # The SDK's underscore modules may change freely; code shipped next to it
    # (the status server, the bridge, the router) must not depend on them.
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    offenders = []
    for package in ("server", "router"):
        for path in (root / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                names: list[str] = []
                if isinstance(node, ast.ImportFrom) and node.module:
                    names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
                elif isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                for name in names:
                    parts = name.split(".")
                    if parts[0] == "celerystatus" and any(p.startswith("_") for p in parts[1:]):
                        offenders.append(f"{path.relative_to(root)}:{node.lineno}: {name}")
    assert offenders == []
