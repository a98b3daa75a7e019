"""Notifications: webhook, Slack-compatible and Alertmanager receivers.

Each receiver has its own thread and bounded queue, so a slow or dead
receiver delays nobody: not the collector, not the event loop, not the other
receivers. The evaluator only enqueues (never blocks; a full queue drops and
counts). Delivery retries with jittered exponential backoff, a bounded number
of times, each try with a timeout. URLs are secrets: only their scheme and
host ever reach a log line or an error message.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from celerystatus.v1 import alerts_pb2 as apb

from .config import Receiver
from .engine import Evaluation
from .model import Alert, AlertState

__all__ = ["DeliveryError", "Notifier", "build_payload", "mask_url"]

log = logging.getLogger(__name__)

#: Poster(url, body, timeout) -> HTTP status; raises OSError when nothing answered.
Poster = Callable[[str, bytes, float], int]


def mask_url(url: str) -> str:
    """``https://hooks.example.com/***``: scheme and host only (paths and queries carry tokens)."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}/***"


class DeliveryError(Exception):
    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).isoformat().replace("+00:00", "Z")


def build_payload(receiver: Receiver, alert: Alert, now: float) -> Any:
    """The JSON body one receiver gets for one alert's notification."""
    status = "resolved" if alert.state is AlertState.RESOLVED else "firing"
    if receiver.type == "alertmanager":
        starts = alert.fired_at or alert.active_since
        # Without endsAt Alertmanager resolves on its own after resolve_timeout;
        # with it, the alert lives until we stop repeating it (Prometheus does the same).
        ends = alert.resolved_at if alert.resolved_at is not None else now + 4 * receiver.repeat_seconds
        return [
            {
                "labels": dict(alert.labels),
                "annotations": dict(alert.annotations),
                "startsAt": _iso(starts),
                "endsAt": _iso(ends),
                "generatorURL": f"celery-status://alerts/{alert.fingerprint}",
            }
        ]
    if receiver.type == "slack":
        icon = ":white_check_mark:" if status == "resolved" else (
            ":rotating_light:" if alert.severity == "critical" else ":warning:"
        )
        summary = alert.annotations.get("summary", alert.name)
        return {
            "text": f"{icon} [{status.upper()}] {alert.name}: {summary}\n{alert.annotations.get('description', '')}",
        }
    return {
        "version": "1",
        "receiver": receiver.name,
        "status": status,
        "alert": alert.to_dict(),
    }


def urllib_post(url: str, body: bytes, timeout: float) -> int:
    request = urllib.request.Request(
        url, data=body, method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "celery-status-alerts/1"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


@dataclass(frozen=True)
class _Job:
    alert: Alert


class _ReceiverWorker:
    def __init__(self, receiver: Receiver, post: Poster, clock: Callable[[], float]) -> None:
        self.receiver = receiver
        self._post = post
        self._clock = clock
        self._queue: queue.Queue[_Job | None] = queue.Queue(maxsize=receiver.queue_size)
        self.sent = 0
        self.failed = 0
        self.dropped = 0
        #: fingerprint -> when its firing notification was last enqueued (repeat interval).
        self.last_firing: dict[str, float] = {}
        self._thread = threading.Thread(target=self._run, name=f"alert-receiver-{receiver.name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float) -> None:
        try:
            self._queue.put_nowait(None)
        except queue.Full:
            pass
        self._thread.join(timeout)

    def enqueue(self, alert: Alert) -> None:
        try:
            self._queue.put_nowait(_Job(alert))
        except queue.Full:
            self.dropped += 1
            log.warning("alert receiver %s: queue full, notification for %s dropped", self.receiver.name, alert.name)

    def pending(self) -> int:
        return self._queue.qsize()

    def _deliver(self, job: _Job) -> None:
        receiver = self.receiver
        body = json.dumps(build_payload(receiver, job.alert, self._clock())).encode()
        url = receiver.url
        if receiver.type == "alertmanager":
            url = url.rstrip("/") + "/api/v2/alerts"

        def attempt() -> None:
            try:
                code = self._post(url, body, receiver.timeout)
            except OSError as exc:
                reason = getattr(exc, "reason", None) or exc.strerror or type(exc).__name__
                raise DeliveryError(f"{mask_url(url)}: {reason}", retryable=True) from None
            if code >= 400:
                # Rate limits and server errors may pass; other refusals will not.
                raise DeliveryError(f"{mask_url(url)}: HTTP {code}", retryable=code == 429 or code >= 500)

        Retrying(
            stop=stop_after_attempt(receiver.attempts),
            wait=wait_random_exponential(multiplier=0.2, max=5.0),
            retry=retry_if_exception(lambda exc: isinstance(exc, DeliveryError) and exc.retryable),
            reraise=True,
        )(attempt)

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            try:
                self._deliver(job)
            except DeliveryError as exc:
                self.failed += 1
                log.warning("alert receiver %s: %s %s not delivered: %s",
                            self.receiver.name, job.alert.name, job.alert.state.value, exc)
            except Exception:  # a bug here must not kill the receiver
                self.failed += 1
                log.exception("alert receiver %s failed", self.receiver.name)
            else:
                self.sent += 1


class Notifier:
    """Turns evaluations into notifications; every method returns at once."""

    def __init__(
        self,
        receivers: Iterable[Receiver],
        *,
        clock: Callable[[], float] = time.time,
        post: Poster = urllib_post,
    ) -> None:
        self._clock = clock
        self._workers = [_ReceiverWorker(r, post, clock) for r in receivers]
        self._started = False

    def start(self) -> None:
        if not self._started:
            for worker in self._workers:
                worker.start()
            self._started = True

    def stop(self, timeout: float = 2.0) -> None:
        if self._started:
            for worker in self._workers:
                worker.stop(timeout)
            self._started = False

    def handle(self, evaluation: Evaluation, alerts: Iterable[Alert]) -> None:
        """Firing and resolved transitions, and repeats of alerts still firing."""
        now = self._clock()
        changed = {a.fingerprint for a in evaluation.changed}
        firing = {a.fingerprint: a for a in alerts if a.state is AlertState.FIRING}
        for worker in self._workers:
            for alert in evaluation.changed:
                if alert.state is AlertState.FIRING:
                    worker.last_firing[alert.fingerprint] = now
                    worker.enqueue(alert)
                elif alert.state is AlertState.RESOLVED:
                    notified = worker.last_firing.pop(alert.fingerprint, None)
                    if worker.receiver.send_resolved and (notified is not None or alert.fired_at is not None):
                        worker.enqueue(alert)
            for fp, alert in firing.items():
                if fp in changed:
                    continue
                last = worker.last_firing.get(fp)
                if last is None:
                    # Firing before a restart: notified then; repeat from now on.
                    worker.last_firing[fp] = now
                elif now - last >= worker.receiver.repeat_seconds:
                    worker.last_firing[fp] = now
                    worker.enqueue(alert)
            for fp in [fp for fp in worker.last_firing if fp not in firing]:
                del worker.last_firing[fp]

    def stats(self) -> list[apb.ReceiverStats]:
        return [
            apb.ReceiverStats(
                name=w.receiver.name, kind=w.receiver.type, sent=w.sent, failed=w.failed, dropped=w.dropped
            )
            for w in self._workers
        ]

    def idle(self) -> bool:
        """True when nothing waits in any queue (tests, shutdown)."""
        return all(w.pending() == 0 for w in self._workers)
