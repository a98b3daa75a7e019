"""Pydantic models that pin the JSON shape served by the bridge.

They feed the OpenAPI document (and so the JSON Schema clients can validate
against) and the shape tests. Responses are not passed through them at run
time: the SDK's ``to_dict`` already builds the JSON, and validating every
snapshot again would cost more than the rest of a request.

Every seed key is required; the extras are additive and optional so older
servers that omit them still validate.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Open(BaseModel):
    # New keys may appear in later versions; a client schema must not reject them.
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class PoolModel(_Open):
    max_concurrency: int = Field(alias="max-concurrency")
    processes: list[int]
    max_tasks_per_child: int | None = Field(alias="max-tasks-per-child")


class WorkerStatsModel(_Open):
    total: int
    pool: PoolModel


class TaskModel(_Open):
    id: str
    name: str
    args: list[Any]
    time_start: float | None = Field(description="Epoch seconds when the task started; null for tasks not yet running.")


class QueueDetailsModel(_Open):
    active: dict[str, list[TaskModel]]
    scheduled: dict[str, list[TaskModel]]
    reserved: dict[str, list[TaskModel]] | None = None


class QueueDepthModel(_Open):
    messages: int
    consumers: int | None = None


class InspectionModel(_Open):
    duration: float | None = None
    method: str | None = None
    round: int | None = None
    errors: int | None = None
    refresh_interval: float | None = None


class ReplicaModel(_Open):
    observed_by: str = ""
    term: int = 0
    served_by: str = ""
    role: str | None = None
    degraded: bool = False
    published_at: float | None = None


class CeleryStatusModel(_Open):
    """``GET /api/celery-status``: every key is present in every response."""

    enabled: bool
    connected: bool
    workers: int
    broker_url: str
    active_tasks: int
    scheduled_tasks: int
    registered_tasks: list[str]
    worker_stats: dict[str, WorkerStatsModel]
    queue_details: QueueDetailsModel
    reserved_tasks: int | None = None
    queues: dict[str, QueueDepthModel] | None = None
    observed_at: Any = None
    age: float | None = None
    stale: bool | None = None
    error: str | None = None
    message: str | None = None
    inspection: InspectionModel | None = None
    replica: ReplicaModel | None = None


class TaskSearchModel(_Open):
    """``GET /api/celery-status/tasks``."""

    tasks: list[dict[str, Any]]
    observed_at: Any = None
    stale: bool
    truncated: bool


class ErrorModel(BaseModel):
    """Body of every 4xx answer the bridge produces itself."""

    error: str
    detail: Any = None


class ProbeModel(_Open):
    status: str
