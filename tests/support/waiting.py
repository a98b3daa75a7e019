"""Polling with a deadline: the only way tests wait for something to happen."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

__all__ = ["WaitTimeout", "wait_for", "wait_for_async"]


class WaitTimeout(AssertionError):
    """The condition was still false when the deadline passed."""


def _timeout_error(
    message: str | None, timeout: float, last: object, error: BaseException | None
) -> WaitTimeout:
    text = message or "condition not met"
    detail = f"last error: {error!r}" if error is not None else f"last value: {last!r}"
    return WaitTimeout(f"{text} (after {timeout:.1f}s; {detail})")


def wait_for(
    predicate: Callable[[], T],
    timeout: float = 10.0,
    interval: float = 0.05,
    message: str | None = None,
    ignore: tuple[type[BaseException], ...] = (),
) -> T:
    """Calls ``predicate`` until it returns something truthy, and returns that.

    Exceptions listed in ``ignore`` count as "not yet" (e.g. a connection
    refused while a server starts); anything else propagates at once.
    """
    deadline = time.monotonic() + timeout
    last: object = None
    error: BaseException | None = None
    while True:
        try:
            value = predicate()
        except ignore as exc:
            error = exc
        else:
            if value:
                return value
            last, error = value, None
        if time.monotonic() >= deadline:
            raise _timeout_error(message, timeout, last, error)
        time.sleep(interval)


async def wait_for_async(
    predicate: Callable[[], T | Awaitable[T]],
    timeout: float = 10.0,
    interval: float = 0.05,
    message: str | None = None,
    ignore: tuple[type[BaseException], ...] = (),
) -> T:
    """``wait_for`` for async tests; ``predicate`` may be sync or return an awaitable."""
    deadline = time.monotonic() + timeout
    last: object = None
    error: BaseException | None = None
    while True:
        try:
            value = predicate()
            if inspect.isawaitable(value):
                value = await value
        except ignore as exc:
            error = exc
        else:
            if value:
                return value  # type: ignore[return-value]
            last, error = value, None
        if time.monotonic() >= deadline:
            raise _timeout_error(message, timeout, last, error)
        await asyncio.sleep(interval)
