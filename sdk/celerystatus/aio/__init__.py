"""The asyncio twin of the SDK client: same API, ``await``-able."""

from celerystatus.aio._client import AsyncCeleryStatusClient

__all__ = ["AsyncCeleryStatusClient"]
