"""Protobuf snapshots shared by the SDK tests (pure data, no I/O)."""

from __future__ import annotations

from google.protobuf import duration_pb2, struct_pb2, timestamp_pb2

from celerystatus.v1 import celery_status_pb2 as pb

OBSERVED_AT = 1_700_000_000.25


def _list(*items: object) -> struct_pb2.ListValue:
    value = struct_pb2.ListValue()
    value.extend(list(items))
    return value


def _struct(**items: object) -> struct_pb2.Struct:
    value = struct_pb2.Struct()
    value.update(items)
    return value


def full_status_proto() -> pb.CeleryStatus:
    """A two-worker cluster with one task in each state."""
    msg = pb.CeleryStatus(
        enabled=True,
        connected=True,
        workers=2,
        broker_url="redis://:**@127.0.0.1:6379/4",
        active_tasks=1,
        scheduled_tasks=1,
        reserved_tasks=1,
        registered_tasks=["tasks.cleanup_old_evaluations", "tasks.evaluate_code"],
        observed_at=timestamp_pb2.Timestamp(seconds=1_700_000_000, nanos=250_000_000),
        age=duration_pb2.Duration(seconds=1, nanos=500_000_000),
        inspection=pb.InspectionInfo(
            duration=duration_pb2.Duration(nanos=120_000_000),
            method=pb.INSPECTION_METHOD_STOCK,
            round=7,
            errors=1,
            refresh_interval=duration_pb2.Duration(seconds=2),
        ),
        queues=[
            pb.QueueDepth(name="celery", messages=45),
            pb.QueueDepth(name="priority", messages=0, consumers=2),
        ],
    )
    msg.worker_stats["celery@worker-1"].CopyFrom(
        pb.WorkerStats(
            hostname="celery@worker-1",
            total=1523,
            total_by_task={"tasks.evaluate_code": 1500, "tasks.cleanup_old_evaluations": 23},
            pool=pb.Pool(
                max_concurrency=4,
                processes=[12345, 12346, 12347, 12348],
                max_tasks_per_child=1000,
                implementation="prefork",
            ),
            pid=12340,
            uptime=duration_pb2.Duration(seconds=3600),
            prefetch_count=16,
            active_queues=["celery"],
            registered_tasks=["tasks.cleanup_old_evaluations", "tasks.evaluate_code"],
            active_tasks=1,
            scheduled_tasks=1,
            reserved_tasks=0,
            loadavg=[0.5, 0.25, 0.125],
            transport="redis",
            sw_version="5.4.0",
            last_heartbeat=timestamp_pb2.Timestamp(seconds=1_699_999_999),
            max_rss_kb=81920,
            extension=False,
        )
    )
    msg.worker_stats["celery@worker-2"].CopyFrom(
        pb.WorkerStats(
            hostname="celery@worker-2",
            total=12,
            pool=pb.Pool(max_concurrency=2, processes=[22345], implementation="prefork"),
            pid=22340,
            reserved_tasks=1,
            transport="redis",
        )
    )
    msg.queue_details.active["celery@worker-1"].tasks.append(
        pb.Task(
            id="task-123",
            name="tasks.evaluate_code",
            args=_list("eval-456", 3, 2.5, [1, "x"], {"nested": True}),
            kwargs=_struct(language="python", attempt=1),
            time_start=1_699_999_990.123,
            worker="celery@worker-1",
            state=pb.TASK_STATE_ACTIVE,
            worker_pid=12345,
            acknowledged=True,
            routing_key="celery",
            exchange="",
        )
    )
    msg.queue_details.scheduled["celery@worker-1"].tasks.append(
        pb.Task(
            id="task-124",
            name="tasks.cleanup_old_evaluations",
            eta=1_700_000_600.0,
            priority=6,
            worker="celery@worker-1",
            state=pb.TASK_STATE_SCHEDULED,
            routing_key="celery",
        )
    )
    msg.queue_details.reserved["celery@worker-2"].tasks.append(
        pb.Task(
            id="task-125",
            name="tasks.evaluate_code",
            args_redacted=True,
            worker="celery@worker-2",
            state=pb.TASK_STATE_RESERVED,
            routing_key="celery",
        )
    )
    return msg


def disabled_status_proto() -> pb.CeleryStatus:
    return pb.CeleryStatus(
        enabled=False, message="Celery is disabled (CELERY_STATUS_ENABLED=false)"
    )
