"""Replicas: several status servers, one collector, no single point of failure (docs/replicas.md).

``Leadership`` is the hook for jobs that must run once per deployment (``is_leader()``,
``add_listener(callback)``); ``Replica`` runs the election through a coordination store
(Redis or PostgreSQL, ``open_store``) and relays the leader's snapshots to the followers.
"""

from .leadership import Leadership, LeadershipListener
from .replica import Replica, default_replica_name
from .store import Attempt, CoordinationStore, Lease, StoreUnavailable, open_store

__all__ = [
    "Attempt",
    "CoordinationStore",
    "Leadership",
    "LeadershipListener",
    "Lease",
    "Replica",
    "StoreUnavailable",
    "default_replica_name",
    "open_store",
]
