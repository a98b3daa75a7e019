"""A KEDA trigger's ``scalerMetadata``, validated into what the scaler computes.

Keys (docs/autoscaling.md):

* ``queues``: comma-separated queue names; default every queue;
* ``metric``: ``backlog`` (default), ``waiting`` or ``saturation``;
* ``targetPerWorker``: tasks one worker should carry (default its pool size,
  the mean concurrency of the live workers); for ``saturation``, the share of
  each worker's pool to keep busy (default 1.0);
* ``activationThreshold``: the scaler is active while the metric's value is
  above it (default 0).

KEDA passes the whole trigger metadata, its own connection keys included,
and resolves ``<key>FromEnv`` entries without renaming them; both are
accepted. Anything else is a typo and is refused with the key named.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

from celerystatus.scaling import ClusterLoad, ScalingMetric, desired_workers

__all__ = ["KEDA_KEYS", "MetadataError", "ScalerQuery"]

#: Keys KEDA itself reads from the same trigger metadata and forwards to us.
KEDA_KEYS = frozenset({"scalerAddress", "enableTLS", "unsafeSsl"})
QUEUES, METRIC, TARGET_PER_WORKER, ACTIVATION_THRESHOLD = (
    "queues",
    "metric",
    "targetPerWorker",
    "activationThreshold",
)
OWN_KEYS = (QUEUES, METRIC, TARGET_PER_WORKER, ACTIVATION_THRESHOLD)
FROM_ENV = "FromEnv"
#: Queue names as Celery and the brokers accept them, without separators we split on.
_QUEUE_NAME = re.compile(r"^[^\s,]{1,255}$")
#: Kubernetes wants external metric names short and DNS-like.
_METRIC_NAME_CHARS = re.compile(r"[^a-z0-9]+")
_MAX_METRIC_NAME = 60


class MetadataError(ValueError):
    """A metadata entry the scaler cannot use; the message starts with the key."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"scalerMetadata.{key}: {problem}")
        self.key = key


def _number(key: str, raw: str, *, positive: bool) -> float:
    try:
        value = float(raw.strip())
    except ValueError:
        raise MetadataError(key, f"expected a number, got {raw!r}") from None
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        raise MetadataError(key, f"must be {'> 0' if positive else '>= 0'} and finite, got {raw!r}")
    return value


def _queues(raw: str) -> tuple[str, ...]:
    names = [part.strip() for part in raw.split(",")]
    if not any(names):
        raise MetadataError(QUEUES, "expected a comma-separated list of queue names, got an empty value")
    for name in names:
        if not _QUEUE_NAME.match(name):
            raise MetadataError(QUEUES, f"not a queue name: {name!r}")
    return tuple(sorted(set(names)))


def _own_entries(metadata: Mapping[str, str]) -> dict[str, str]:
    """Our keys with their values, ``<key>FromEnv`` folded in; unknown keys refused."""
    values: dict[str, str] = {}
    for key in sorted(metadata):
        if key in KEDA_KEYS:
            continue
        own = key[: -len(FROM_ENV)] if key.endswith(FROM_ENV) else key
        if own not in OWN_KEYS:
            raise MetadataError(key, f"unknown key (known: {', '.join(OWN_KEYS)})")
        if own in values:
            raise MetadataError(key, f"given twice ({own} and {own}{FROM_ENV})")
        values[own] = metadata[key]
    return values


@dataclass(frozen=True, slots=True)
class ScalerQuery:
    """What one trigger asks for; hashable, so held answers are kept per query."""

    queues: tuple[str, ...] | None = None
    metric: ScalingMetric = ScalingMetric.BACKLOG
    target_per_worker: float | None = None
    activation_threshold: float = 0.0

    @classmethod
    def parse(cls, metadata: Mapping[str, str]) -> ScalerQuery:
        values = _own_entries(metadata)
        queues = _queues(values[QUEUES]) if QUEUES in values else None
        metric = ScalingMetric.BACKLOG
        if METRIC in values:
            try:
                metric = ScalingMetric(values[METRIC].strip())
            except ValueError:
                choices = ", ".join(m.value for m in ScalingMetric)
                raise MetadataError(METRIC, f"expected one of {choices}, got {values[METRIC]!r}") from None
        target = (
            _number(TARGET_PER_WORKER, values[TARGET_PER_WORKER], positive=True)
            if TARGET_PER_WORKER in values
            else None
        )
        threshold = (
            _number(ACTIVATION_THRESHOLD, values[ACTIVATION_THRESHOLD], positive=False)
            if ACTIVATION_THRESHOLD in values
            else 0.0
        )
        return cls(queues, metric, target, threshold)

    @property
    def metric_name(self) -> str:
        """The name KEDA puts (prefixed with ``s<N>-``) on the HPA's external metric."""
        name = f"celery-{self.metric.value}-workers"
        if self.queues:
            joined = _METRIC_NAME_CHARS.sub("-", "-".join(self.queues).lower()).strip("-")
            digest = hashlib.sha256(",".join(self.queues).encode()).hexdigest()[:8]
            # The digest keeps two selections that sanitise alike apart.
            name = f"{name}-{joined[: _MAX_METRIC_NAME - len(name) - 10]}-{digest}".replace("--", "-")
        return name

    def desired(self, load: ClusterLoad) -> int:
        """Workers this query wants, by the shared computation."""
        if self.metric is ScalingMetric.SATURATION:
            return desired_workers(load, metric=self.metric, utilisation=self.target_per_worker or 1.0)
        return desired_workers(load, metric=self.metric, per_worker=self.target_per_worker)

    def active(self, load: ClusterLoad) -> bool:
        return load.value(self.metric) > self.activation_threshold
