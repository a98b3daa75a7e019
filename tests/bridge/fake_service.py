"""A CeleryStatusService serving canned snapshots over a real grpc.aio server.

Used for the tests that are about the bridge's own behaviour (shape, request
translation, fan-out, metrics format); the integration tests use the real
server with real workers.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from celerystatus.v1 import celery_status_pb2 as pb
from celerystatus.v1 import celery_status_pb2_grpc as pb_grpc
from celerystatus.values import epoch_to_timestamp, list_to_list_value, seconds_to_duration


def make_status(round_number: int = 1, *, active: int = 1) -> pb.CeleryStatus:
    """A two-worker snapshot; ``active`` evaluation tasks on worker-1."""
    status = pb.CeleryStatus(
        enabled=True,
        connected=True,
        workers=2,
        broker_url="redis://127.0.0.1:6379/7",
        active_tasks=active,
        scheduled_tasks=1,
        reserved_tasks=0,
        registered_tasks=["tasks.cleanup_old_evaluations", "tasks.evaluate_code"],
        inspection=pb.InspectionInfo(
            round=round_number,
            errors=0,
            method=pb.INSPECTION_METHOD_STOCK,
            duration=seconds_to_duration(0.25),
            refresh_interval=seconds_to_duration(2.0),
        ),
        queues=[pb.QueueDepth(name="celery", messages=3)],
    )
    status.observed_at.CopyFrom(epoch_to_timestamp(time.time()))
    status.age.CopyFrom(seconds_to_duration(0.1))
    for host, pids, total in (("celery@w1", [101, 102], 150), ("celery@w2", [201, 202], 7)):
        stats = status.worker_stats[host]
        stats.hostname = host
        stats.total = total
        stats.pool.max_concurrency = 2
        stats.pool.processes.extend(pids)
        stats.pool.max_tasks_per_child = 100
    for index in range(active):
        status.queue_details.active["celery@w1"].tasks.append(
            pb.Task(
                id=f"task-{index}",
                name="tasks.evaluate_code",
                args=list_to_list_value([f"eval-{index}"]),
                time_start=time.time() - 5,
                worker="celery@w1",
                state=pb.TASK_STATE_ACTIVE,
            )
        )
    status.queue_details.scheduled["celery@w2"].tasks.append(
        pb.Task(
            id="task-later",
            name="tasks.cleanup_old_evaluations",
            args=list_to_list_value(["eval-later"]),
            eta=time.time() + 60,
            worker="celery@w2",
            state=pb.TASK_STATE_SCHEDULED,
        )
    )
    return status


@dataclass
class FakeStatusService(pb_grpc.CeleryStatusServiceServicer):
    status: pb.CeleryStatus = field(default_factory=make_status)
    get_requests: list[pb.GetStatusRequest] = field(default_factory=list)
    search_requests: list[pb.SearchTasksRequest] = field(default_factory=list)
    watch_calls: int = 0
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    _version: int = 0

    async def publish(self, status: pb.CeleryStatus) -> None:
        async with self._changed:
            self.status = status
            self._version += 1
            self._changed.notify_all()

    async def GetStatus(self, request, context):
        self.get_requests.append(request)
        if request.filter.task_id == "invalid!":
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "task_id is malformed")
        return pb.GetStatusResponse(status=self.status)

    async def SearchTasks(self, request, context):
        self.search_requests.append(request)
        tasks = [
            task
            for lists in (self.status.queue_details.active, self.status.queue_details.scheduled)
            for task_list in lists.values()
            for task in task_list.tasks
            if not request.filter.task_name or task.name == request.filter.task_name
        ]
        reply = pb.SearchTasksResponse(tasks=tasks, stale=False, truncated=False)
        reply.observed_at.CopyFrom(self.status.observed_at)
        return reply

    async def WatchStatus(self, request, context):
        self.watch_calls += 1
        seen = -1
        while True:
            async with self._changed:
                await self._changed.wait_for(lambda seen=seen: self._version != seen)
                seen = self._version
                status = self.status
            yield pb.WatchStatusResponse(status=status)


class FakeBackend:
    def __init__(self) -> None:
        self.service = FakeStatusService()
        self.port = 0
        self._serve()
        self.target = f"127.0.0.1:{self.port}"

    def _serve(self) -> None:
        self.server = grpc.aio.server()
        pb_grpc.add_CeleryStatusServiceServicer_to_server(self.service, self.server)
        self.health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        self.port = self.server.add_insecure_port(f"127.0.0.1:{self.port}")

    async def restart(self) -> None:
        """Serve the same service again on the same port, after :meth:`stop`."""
        self._serve()
        await self.start()

    async def start(self) -> None:
        await self.server.start()
        await self.health.set("", health_pb2.HealthCheckResponse.SERVING)

    async def stop(self) -> None:
        await self.server.stop(grace=None)
