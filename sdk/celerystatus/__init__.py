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
from celerystatus.alerts import Alert, AlertList, AlertState, AlertUpdate, ReceiverStats
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
    FailedPrecondition,
    InternalError,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    RateLimited,
    Unauthenticated,
    Unavailable,
    Unimplemented,
)
from celerystatus.history import (
    History,
    LongRunningTask,
    QueueTrend,
    Rate,
    Saturation,
    TaskRun,
    TaskRuntime,
    Trends,
    WorkerTrend,
)
from celerystatus.models import (
    CeleryStatus,
    HistoryInfo,
    HistoryState,
    InspectionInfo,
    InspectionMethod,
    Pool,
    QueueDepth,
    QueueDetails,
    ReplicaInfo,
    ReplicaRole,
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
    "Alert",
    "AlertList",
    "AlertState",
    "AlertUpdate",
    "AsyncCeleryStatusClient",
    "CeleryStatus",
    "CeleryStatusClient",
    "CeleryStatusError",
    "ClusterLoad",
    "DeadlineExceeded",
    "FailedPrecondition",
    "Finding",
    "FindingKind",
    "History",
    "HistoryInfo",
    "HistoryState",
    "InspectionInfo",
    "InspectionMethod",
    "InternalError",
    "InvalidArgument",
    "LongRunningTask",
    "NotFound",
    "OnDisconnect",
    "PermissionDenied",
    "Pool",
    "QueueDepth",
    "QueueDetails",
    "QueueTrend",
    "Rate",
    "RateLimited",
    "ReceiverStats",
    "ReplicaInfo",
    "ReplicaRole",
    "RetryPolicy",
    "Saturation",
    "ScalingAction",
    "ScalingAdvice",
    "ScalingMetric",
    "ServingStatus",
    "StatusView",
    "TLSConfig",
    "Task",
    "TaskFilter",
    "TaskLocation",
    "TaskRun",
    "TaskRuntime",
    "TaskSearchResult",
    "TaskState",
    "Trends",
    "Unauthenticated",
    "Unavailable",
    "Unimplemented",
    "WorkerHealth",
    "WorkerStats",
    "WorkerTrend",
    "__version__",
    "parse_target",
]
