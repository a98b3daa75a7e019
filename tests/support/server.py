"""Runs a real StatusServer in a background thread, for tests that call it synchronously."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from celerystatus_server.config import Settings
from celerystatus_server.server import StatusServer

__all__ = ["running_server"]


@contextmanager
def running_server(
    settings: Settings, *, app: Any = None, timeout: float = 30.0, **options: Any
) -> Iterator[StatusServer]:
    """``with running_server(Settings(...)) as server:`` — ``server.grpc_target`` is ready.

    ``options`` go to :class:`StatusServer` (e.g. ``alert_clock``).
    """
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="test-status-server", daemon=True)
    thread.start()
    server = StatusServer(settings, app=app, **options)
    try:
        asyncio.run_coroutine_threadsafe(server.start(), loop).result(timeout)
        yield server
    finally:
        try:
            asyncio.run_coroutine_threadsafe(server.stop(grace=0.5), loop).result(timeout)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout)
            loop.close()
