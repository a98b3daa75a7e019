"""Answers history queries off the event loop, on a small pool of its own, bounded in time.

A slow or unreachable database makes a history request fail with
:class:`HistoryUnavailable` after ``timeout`` seconds; it never holds the
event loop, and it never takes threads from anything else.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from celerystatus.v1 import celery_status_pb2 as pb

from ..security.redaction import Redactor
from .query import QueryError, history_query, run_history, run_trends, trends_query
from .store import HistoryStore

T = TypeVar("T")

QUERY_THREADS = 2
QUERY_TIMEOUT_S = 15.0


class HistoryUnavailable(RuntimeError):
    """The store did not answer (down, locked, too slow)."""


class HistoryReader:
    def __init__(
        self,
        store: HistoryStore,
        *,
        timeout: float = QUERY_TIMEOUT_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.timeout = timeout
        self.clock = clock
        self._pool = ThreadPoolExecutor(QUERY_THREADS, thread_name_prefix="celery-status-history-query")

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def _run(self, work: Callable[[], T]) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await asyncio.wait_for(loop.run_in_executor(self._pool, work), self.timeout)
        except QueryError:
            raise
        except asyncio.TimeoutError:
            raise HistoryUnavailable(f"history store did not answer within {self.timeout:g}s") from None
        except Exception as exc:  # driver errors of either engine
            first = str(exc).splitlines()[0] if str(exc) else ""
            raise HistoryUnavailable(f"history store unavailable: {type(exc).__name__}: {first}".rstrip(": ")) from exc

    async def history(self, request: pb.GetHistoryRequest, *, redactor: Redactor | None) -> pb.GetHistoryResponse:
        """``redactor`` set: the caller may not see task arguments."""
        query = history_query(request, self.clock())
        return await self._run(lambda: run_history(self.store, query, redactor=redactor))

    async def trends(self, request: pb.GetTrendsRequest, status: pb.CeleryStatus | None) -> pb.GetTrendsResponse:
        query = trends_query(request)
        now = self.clock()
        return await self._run(lambda: run_trends(self.store, query, status, now))
