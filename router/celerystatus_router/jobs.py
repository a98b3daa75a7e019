"""A job: what the router sends, under one id, to Celery or to the legacy queue."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Job", "new_job_id"]


def new_job_id() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True, slots=True)
class Job:
    """One unit of work.  ``id`` is the Celery task id and the de-duplication key.

    Arguments must be JSON values: the legacy queue stores jobs as JSON and the
    producer uses the JSON serializer, so a job survives a trip through either.
    """

    id: str
    task: str
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    queue: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    """Extra ``send_task`` options (``priority``, ``countdown``, ``headers`` ...)."""
    created_at: float = field(default_factory=time.time)

    @classmethod
    def create(
        cls,
        task: str,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        job_id: str | None = None,
        queue: str | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> Job:
        if not task:
            raise ValueError("task name must not be empty")
        if job_id is not None and (not isinstance(job_id, str) or not job_id.strip()):
            raise ValueError(f"job_id must be a non-empty string, got {job_id!r}")
        return cls(
            id=job_id or new_job_id(),
            task=task,
            args=tuple(args),
            kwargs=dict(kwargs or {}),
            queue=queue,
            options=dict(options or {}),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "task": self.task,
            "args": list(self.args),
            "kwargs": dict(self.kwargs),
            "queue": self.queue,
            "options": dict(self.options),
            "created_at": self.created_at,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Job:
        try:
            return cls(
                id=str(data["id"]),
                task=str(data["task"]),
                args=tuple(data.get("args") or ()),
                kwargs=dict(data.get("kwargs") or {}),
                queue=data.get("queue"),
                options=dict(data.get("options") or {}),
                created_at=float(data.get("created_at") or 0.0),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a job message: {exc}") from exc

    @classmethod
    def from_json(cls, text: str | bytes) -> Job:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ValueError(f"not a job message: {exc}") from exc
        if not isinstance(data, dict):
            raise ValueError("not a job message: expected a JSON object")
        return cls.from_dict(data)
