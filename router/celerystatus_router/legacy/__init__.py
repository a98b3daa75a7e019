"""Legacy queue adapters and the loop that consumes them."""

from .base import Claim, LegacyQueue
from .consumer import LegacyConsumer
from .postgres import PostgresLegacyQueue
from .redis import RedisLegacyQueue

__all__ = ["Claim", "LegacyConsumer", "LegacyQueue", "PostgresLegacyQueue", "RedisLegacyQueue"]
