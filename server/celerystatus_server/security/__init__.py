"""Who may read the status, how much of it, and how often.

Shared by the gRPC server and the JSON bridge so both apply the same tokens,
roles, redaction and budgets.
"""

from __future__ import annotations

from .principal import ADMIN, ANONYMOUS_NAME, ROLES, VIEWER, Principal
from .ratelimit import Budget, Decision, RateLimiter, StreamLimiter
from .redaction import Redactor
from .tokens import TokenError, TokenStore, hash_token

__all__ = [
    "ADMIN",
    "ANONYMOUS_NAME",
    "ROLES",
    "VIEWER",
    "Budget",
    "Decision",
    "Principal",
    "RateLimiter",
    "Redactor",
    "StreamLimiter",
    "TokenError",
    "TokenStore",
    "hash_token",
]
