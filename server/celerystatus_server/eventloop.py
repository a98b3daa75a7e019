"""The process's event loop: uvloop when it is installed, asyncio's own otherwise.

gRPC (grpc.aio) and the bridge share one loop in ``celery-status serve``;
uvloop serves HTTP noticeably faster and grpc.aio runs on it unchanged.
uvicorn only picks uvloop when it owns the loop, which it does not here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["run"]

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    try:
        import uvloop
    except ImportError:  # Windows, PyPy: uvicorn[standard] does not install it there
        return asyncio.run(main)
    return uvloop.run(main)
