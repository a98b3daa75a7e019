"""File descriptors: raise the soft limit, and share what there is so clients cannot take it all.

Every accepted connection costs a descriptor. With the common 1,024 soft limit
a thousand idle clients used to leave none for the collector's broker
connections (a false outage) or the gRPC server. The process raises its soft
limit to the hard one, keeps ``fd_reserve`` descriptors for itself, and lets
each listening server (HTTP, gRPC) hold at most half of the rest.
"""

from __future__ import annotations

import logging
import resource

__all__ = ["connection_budget", "nofile_limit", "raise_nofile_limit"]

log = logging.getLogger(__name__)

#: Whatever the arithmetic says, a server can take this many connections.
MIN_CONNECTIONS = 16


def nofile_limit() -> int:
    """The current soft RLIMIT_NOFILE (a large number when unlimited)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


def raise_nofile_limit() -> int:
    """Raise the soft descriptor limit to the hard one; the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError) as exc:  # e.g. a hard limit above the kernel's nr_open
            log.info("cannot raise the descriptor limit from %s to %s: %s", soft, hard, exc)
    return nofile_limit()


def connection_budget(requested: int, reserve: int, limit: int | None = None) -> int:
    """How many connections one listening server may hold: ``requested``, within half of ``limit - reserve``."""
    limit = nofile_limit() if limit is None else limit
    ceiling = max(MIN_CONNECTIONS, (limit - reserve) // 2)
    return max(1, min(requested, ceiling))
