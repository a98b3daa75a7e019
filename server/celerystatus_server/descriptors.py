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
import threading
import uuid

__all__ = ["connection_budget", "nofile_limit", "raise_nofile_limit", "stop_libuuid_descriptor_leak"]

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


_uuid_lock = threading.Lock()


def stop_libuuid_descriptor_leak() -> None:
    """Make ``uuid.uuid1()`` stop leaking a descriptor in every thread that calls it.

    libuuid's ``uuid_generate_time_safe`` keeps a per-thread descriptor on
    ``/var/lib/libuuid/clock.txt`` and never closes it when the thread exits.
    The collector runs each inspection round in a fresh thread (a round stuck
    on a frozen broker is abandoned, not joined), and kombu's Redis transport
    takes a redis-py lock, whose token is a ``uuid1()``, every few rounds: the
    soak (bench/soak.py) saw one descriptor more every 15 s or so, for ever.
    Python's own ``uuid1`` implementation (time, random clock sequence, the
    node learned once here) needs no descriptor; this switches to it.
    """
    with _uuid_lock:
        if getattr(uuid, "_generate_time_safe", None) is None:
            return
        uuid.getnode()  # learned once, while libuuid is still used
        uuid._generate_time_safe = None  # type: ignore[attr-defined]
