"""QueueRouter: sends each job to Celery when it is healthy, else to a legacy queue.

::

    from celerystatus_router import HealthPolicy, QueueRouter, RedisLegacyQueue

    with QueueRouter("redis://127.0.0.1:6379/0", status="127.0.0.1:50051",
                     legacy=RedisLegacyQueue.from_url("redis://127.0.0.1:6379/1"),
                     policy=HealthPolicy(min_workers=2)) as router:
        result = router.route("tasks.evaluate_code", (eval_id, code), job_id=eval_id)
        print(result.backend, result.reason)

``celerystatus_router.aio.AsyncQueueRouter`` is the asyncio twin.  Consumers
de-duplicate on the job id with :class:`RedisDedupe` or :class:`PostgresDedupe`.
"""

from ._base import Backend, Reason, RouteResult
from .aio import AsyncQueueRouter
from .breaker import BreakerConfig, BreakerState, CircuitBreaker
from .dedupe import Dedupe, PostgresDedupe, RedisDedupe
from .drain import DrainReport, drain
from .errors import DedupeError, JobNotRouted, LegacyQueueError, RoutingError, SendFailed, SendTimeout
from .jobs import Job, new_job_id
from .legacy import Claim, LegacyConsumer, LegacyQueue, PostgresLegacyQueue, RedisLegacyQueue
from .metrics import RouterMetrics
from .outbox import ReconcileReport, RedisOutbox, reconcile
from .policy import HealthPolicy
from .producer import CeleryProducer, producer_app
from .router import QueueRouter

__all__ = [
    "AsyncQueueRouter",
    "Backend",
    "BreakerConfig",
    "BreakerState",
    "CeleryProducer",
    "CircuitBreaker",
    "Claim",
    "Dedupe",
    "DedupeError",
    "DrainReport",
    "HealthPolicy",
    "Job",
    "JobNotRouted",
    "LegacyConsumer",
    "LegacyQueue",
    "LegacyQueueError",
    "PostgresDedupe",
    "PostgresLegacyQueue",
    "QueueRouter",
    "Reason",
    "ReconcileReport",
    "RedisDedupe",
    "RedisLegacyQueue",
    "RedisOutbox",
    "RouteResult",
    "RouterMetrics",
    "RoutingError",
    "SendFailed",
    "SendTimeout",
    "drain",
    "new_job_id",
    "producer_app",
    "reconcile",
]
