"""Hysteresis of the circuit breaker and the health policy: pure logic, fake clock."""

from __future__ import annotations

import pytest

from celerystatus.models import CeleryStatus
from celerystatus_router import BreakerConfig, BreakerState, CircuitBreaker, HealthPolicy, QueueRouter
from celerystatus_router.breaker import Permit


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def closed_breaker(clock: Clock, **config: object) -> CircuitBreaker:
    breaker = CircuitBreaker(BreakerConfig(**config), clock=clock)  # type: ignore[arg-type]
    for _ in range(breaker.config.close_after):
        breaker.observe(None)
    assert breaker.acquire() is Permit.PROBE
    breaker.record_send(True, Permit.PROBE)
    assert breaker.state is BreakerState.CLOSED
    return breaker


def test_starts_open_and_needs_healthy_observations_then_a_probe() -> None:
    clock = Clock()
    breaker = CircuitBreaker(BreakerConfig(close_after=2), clock=clock)
    assert breaker.state is BreakerState.OPEN
    assert breaker.acquire() is Permit.LEGACY
    breaker.observe(None)
    assert breaker.state is BreakerState.OPEN
    breaker.observe(None)
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.acquire() is Permit.PROBE
    assert breaker.acquire() is Permit.LEGACY  # one probe at a time
    breaker.record_send(True, Permit.PROBE)
    assert breaker.state is BreakerState.CLOSED
    assert breaker.acquire() is Permit.CELERY


def test_single_unhealthy_observation_does_not_switch() -> None:
    clock = Clock()
    breaker = closed_breaker(clock, open_after=3)
    breaker.observe("workers 0 < 2")
    assert breaker.state is BreakerState.CLOSED
    breaker.observe(None)
    breaker.observe("workers 0 < 2")
    breaker.observe("workers 0 < 2")
    assert breaker.state is BreakerState.CLOSED, "a healthy observation resets the streak"
    breaker.observe("workers 0 < 2")
    assert breaker.state is BreakerState.OPEN
    assert "workers" in breaker.reason


def test_single_failed_send_does_not_switch() -> None:
    clock = Clock()
    breaker = closed_breaker(clock, open_after_failures=2)
    breaker.record_send(False, Permit.CELERY, "refused")
    assert breaker.state is BreakerState.CLOSED
    breaker.record_send(True, Permit.CELERY)
    breaker.record_send(False, Permit.CELERY, "refused")
    assert breaker.state is BreakerState.CLOSED
    breaker.record_send(False, Permit.CELERY, "refused")
    assert breaker.state is BreakerState.OPEN


def test_closing_needs_min_open_time_and_m_healthy_observations() -> None:
    clock = Clock()
    breaker = closed_breaker(clock, open_after=1, close_after=3, min_open_time=10.0)
    breaker.observe("broker not connected")
    assert breaker.state is BreakerState.OPEN
    for _ in range(5):
        breaker.observe(None)
    assert breaker.state is BreakerState.OPEN, "minimum open time not over yet"
    clock.now += 10
    breaker.observe(None)
    assert breaker.state is BreakerState.HALF_OPEN
    # an unhealthy observation while probing re-opens and restarts the clock
    breaker.observe("broker not connected")
    assert breaker.state is BreakerState.OPEN
    clock.now += 10
    breaker.observe(None)
    breaker.observe(None)
    assert breaker.state is BreakerState.OPEN, "healthy streak must reach 3 again"
    breaker.observe(None)
    assert breaker.state is BreakerState.HALF_OPEN


def test_failed_probe_reopens() -> None:
    clock = Clock()
    breaker = CircuitBreaker(BreakerConfig(close_after=1, min_open_time=5), clock=clock)
    breaker.observe(None)
    assert breaker.acquire() is Permit.PROBE
    breaker.record_send(False, Permit.PROBE, "timeout")
    assert breaker.state is BreakerState.OPEN
    breaker.observe(None)
    assert breaker.state is BreakerState.OPEN
    clock.now += 5
    breaker.observe(None)
    assert breaker.state is BreakerState.HALF_OPEN


def test_silence_opens_the_breaker() -> None:
    clock = Clock()
    breaker = closed_breaker(clock, silence_timeout=3.0)
    clock.now += 2.9
    assert breaker.acquire() is Permit.CELERY
    clock.now += 0.2
    assert breaker.acquire() is Permit.LEGACY
    assert breaker.state is BreakerState.OPEN
    assert "no status" in breaker.reason


def test_observe_failure_counts_as_unhealthy() -> None:
    router = QueueRouter(producer=object(), legacy=None, breaker=BreakerConfig(open_after=2))  # type: ignore[arg-type]
    router.observe(CeleryStatus(enabled=True, connected=True, workers=2))
    router.observe(CeleryStatus(enabled=True, connected=True, workers=2))
    router.breaker.record_send(True, router.breaker.acquire())
    assert router.state is BreakerState.CLOSED
    router.observe_failure("status service: unavailable")
    assert router.state is BreakerState.CLOSED
    router.observe_failure("status service: unavailable")
    assert router.state is BreakerState.OPEN
    assert router.metrics.breaker_state._value.get() == 2.0


@pytest.mark.parametrize(
    ("status", "policy", "reason"),
    [
        (CeleryStatus(enabled=True, connected=True, workers=2), HealthPolicy(min_workers=2), None),
        (CeleryStatus(enabled=False, connected=True, workers=2), HealthPolicy(), "celery disabled"),
        (CeleryStatus(enabled=True, connected=False, workers=2), HealthPolicy(), "broker not connected"),
        (CeleryStatus(enabled=True, connected=True, workers=1), HealthPolicy(min_workers=2), "workers 1 < 2"),
        (CeleryStatus(enabled=True, connected=True, workers=2, stale=True), HealthPolicy(), "status stale"),
        (
            CeleryStatus(enabled=True, connected=True, workers=1, active_tasks=4, scheduled_tasks=4),
            HealthPolicy(max_saturation=4.0),
            "saturation 8.00 > 4",
        ),
    ],
)
def test_policy(status: CeleryStatus, policy: HealthPolicy, reason: str | None) -> None:
    assert policy.assess(status) == reason
