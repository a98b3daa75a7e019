"""Python SDK for the celery-status service.

::

    import celerystatus

    with celerystatus.CeleryStatusClient("127.0.0.1:50051") as client:
        status = client.get_status()
        print(status.workers, status.active_tasks, status.scheduled_tasks)

``celerystatus.aio.AsyncCeleryStatusClient`` is the asyncio twin.
"""

from celerystatus._base import (
    DEFAULT_TARGET,
    DEFAULT_TIMEOUT,
    OnDisconnect,
    RetryPolicy,
    TLSConfig,
    parse_target,
)
from celerystatus._client import CeleryStatusClient
from celerystatus.aio import AsyncCeleryStatusClient
from celerystatus.analysis import (
    Finding,
    FindingKind,
    ScalingAction,
    ScalingAdvice,
    TaskLocation,
    WorkerHealth,
)
from celerystatus.exceptions import (
    CeleryStatusError,
    DeadlineExceeded,
    InternalError,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    RateLimited,
    Unauthenticated,
    Unavailable,
    Unimplemented,
)
from celerystatus.models import (
    CeleryStatus,
    InspectionInfo,
    InspectionMethod,
    Pool,
    QueueDepth,
    QueueDetails,
    ServingStatus,
    StatusView,
    Task,
    TaskFilter,
    TaskSearchResult,
    TaskState,
    WorkerStats,
)
from celerystatus.scaling import ClusterLoad, ScalingMetric

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_TARGET",
    "DEFAULT_TIMEOUT",
    "AsyncCeleryStatusClient",
    "CeleryStatus",
    "CeleryStatusClient",
    "CeleryStatusError",
    "ClusterLoad",
    "DeadlineExceeded",
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
]
