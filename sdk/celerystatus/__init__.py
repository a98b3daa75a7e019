"""Python SDK for the celery-status service.

::

    import celerystatus

    with celerystatus.CeleryStatusClient("127.0.0.1:50051") as client:
        status = client.get_status()
        print(status.workers, status.active_tasks, status.scheduled_tasks)

``celerystatus.aio.AsyncCeleryStatusClient`` is the asyncio twin.
"""

from celerystatus._base import DEFAULT_TARGET, DEFAULT_TIMEOUT, RetryPolicy, TLSConfig
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
)
from celerystatus.models import (
    CeleryStatus,
    InspectionInfo,
    InspectionMethod,
    Pool,
    QueueDepth,
    QueueDetails,
    ReplicaInfo,
    ReplicaRole,
    StatusView,
    Task,
    TaskFilter,
    TaskSearchResult,
    TaskState,
    WorkerStats,
)

__version__ = "0.1.0"

__all__ = [
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
]
