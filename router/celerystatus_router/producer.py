"""Publishing a job to Celery with a hard deadline and, on AMQP, publisher confirms.

Celery's own ``send_task`` retries for a while when Redis refuses, hangs for a
long time when the broker is frozen, and on AMQP without confirms reports
success for messages the broker never stored.  This producer uses its own
Celery app with tight socket and connection settings, never retries, asks
RabbitMQ to confirm each publish, and runs the publish on a small thread pool
so the caller waits at most ``send_timeout`` seconds whatever the socket does.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import threading
from collections.abc import Mapping
from typing import Any

from celery import Celery

from .errors import SendFailed, SendTimeout
from .jobs import Job

__all__ = ["CeleryProducer", "producer_app"]

_app_numbers = itertools.count(1)


def _is_amqp(url: str) -> bool:
    return url.split("://", 1)[0].lower() in {"amqp", "amqps", "pyamqp"}


def producer_app(
    broker_url: str,
    *,
    socket_timeout: float = 1.0,
    connect_timeout: float = 1.0,
    transport_options: Mapping[str, Any] | None = None,
    conf: Mapping[str, Any] | None = None,
) -> Celery:
    """A Celery app that only publishes, with every timeout short and retries off."""
    options: dict[str, Any] = {"max_retries": 0}
    if _is_amqp(broker_url):
        # Without confirms a publish to a broker that drops it still "succeeds".
        options.update(confirm_publish=True, read_timeout=socket_timeout, write_timeout=socket_timeout)
    else:
        options.update(
            socket_timeout=socket_timeout,
            socket_connect_timeout=connect_timeout,
            retry_on_timeout=False,
        )
    options.update(transport_options or {})
    app = Celery(f"celerystatus-router-{next(_app_numbers)}", broker=broker_url, set_as_current=False)
    app.conf.update(
        broker_connection_timeout=connect_timeout,
        broker_connection_retry=False,
        broker_connection_max_retries=0,
        broker_transport_options=options,
        task_publish_retry=False,
        task_serializer="json",
        accept_content=["json"],
        result_backend=None,
        task_ignore_result=True,
    )
    app.conf.update(dict(conf or {}))
    return app


class CeleryProducer:
    """Publishes jobs; thread-safe.  Each pool thread owns one broker connection.

    ``send`` raises :class:`SendTimeout` after ``send_timeout`` seconds and
    :class:`SendFailed` on any broker error; it never retries.  A timed-out
    publish may still complete later (the thread is not killed), which is why
    consumers de-duplicate by job id.
    """

    def __init__(
        self,
        broker_url: str,
        *,
        send_timeout: float = 1.0,
        socket_timeout: float | None = None,
        connect_timeout: float | None = None,
        threads: int = 4,
        transport_options: Mapping[str, Any] | None = None,
        conf: Mapping[str, Any] | None = None,
        app: Celery | None = None,
    ) -> None:
        if send_timeout <= 0:
            raise ValueError("send_timeout must be positive")
        if threads < 1:
            raise ValueError("threads must be at least 1")
        self.broker_url = broker_url
        self.send_timeout = send_timeout
        # The socket gives up a little after the deadline, so a stuck thread comes back soon.
        socket = socket_timeout if socket_timeout is not None else send_timeout
        self.app = app or producer_app(
            broker_url,
            socket_timeout=socket,
            connect_timeout=connect_timeout if connect_timeout is not None else socket,
            transport_options=transport_options,
            conf=conf,
        )
        self._executor = concurrent.futures.ThreadPoolExecutor(threads, thread_name_prefix="celery-router-send")
        self._local = threading.local()
        self._connections: set[Any] = set()
        self._lock = threading.Lock()
        self._closed = False

    # --- public ----------------------------------------------------------------

    def send(self, job: Job, timeout: float | None = None) -> None:
        """Publish ``job`` with its id as the task id; returns once the broker took it."""
        future = self._submit(job)
        deadline = self.send_timeout if timeout is None else timeout
        try:
            future.result(timeout=deadline)
        except concurrent.futures.TimeoutError:
            raise self._timeout(job, future, deadline) from None
        except SendFailed:
            raise
        except Exception as exc:
            raise SendFailed(f"publish of job {job.id} failed: {type(exc).__name__}: {exc}") from exc

    async def send_async(self, job: Job, timeout: float | None = None) -> None:
        """:meth:`send` for asyncio: the event loop is never blocked by the broker."""
        future = self._submit(job)
        deadline = self.send_timeout if timeout is None else timeout
        try:
            await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(future)), deadline)
        except asyncio.TimeoutError:
            raise self._timeout(job, future, deadline) from None
        except SendFailed:
            raise
        except Exception as exc:
            raise SendFailed(f"publish of job {job.id} failed: {type(exc).__name__}: {exc}") from exc

    def close(self) -> None:
        self._closed = True
        self._executor.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            connections, self._connections = list(self._connections), set()
        for connection in connections:
            self._discard(connection)
        self.app.close()

    # --- internals ---------------------------------------------------------------

    def _submit(self, job: Job) -> concurrent.futures.Future[None]:
        if self._closed:
            raise SendFailed("the producer is closed")
        return self._executor.submit(self._publish, job)

    @staticmethod
    def _timeout(job: Job, future: concurrent.futures.Future[None], deadline: float) -> SendTimeout:
        # A publish still waiting for a thread can be withdrawn: then it certainly never ran.
        withdrawn = future.cancel()
        return SendTimeout(
            f"publish of job {job.id} took longer than {deadline:g}s"
            + (" (withdrawn before it started)" if withdrawn else ""),
            maybe_published=not withdrawn,
        )

    def _producer(self) -> Any:
        producer = getattr(self._local, "producer", None)
        if producer is None:
            connection = self.app.connection_for_write()
            with self._lock:
                self._connections.add(connection)
            producer = self.app.amqp.Producer(connection)
            self._local.producer = producer
        return producer

    def _publish(self, job: Job) -> None:
        producer = self._producer()
        try:
            self.app.send_task(
                job.task,
                args=list(job.args),
                kwargs=dict(job.kwargs),
                task_id=job.id,
                queue=job.queue,
                producer=producer,
                retry=False,
                **dict(job.options),
            )
        except BaseException:
            # The connection may be half-broken; the next publish on this thread starts afresh.
            self._local.producer = None
            with self._lock:
                self._connections.discard(producer.connection)
            self._discard(producer.connection)
            raise

    @staticmethod
    def _discard(connection: Any) -> None:
        try:
            connection.collect()  # drops sockets without talking to a broker that may hang
        except Exception:
            pass
