"""History: the cluster over time, recorded from the snapshot stream.

``store`` (SQLAlchemy Core; SQLite or PostgreSQL) ← ``recorder`` (sampler and
writer threads) ← ``sampling`` (what a snapshot contributes); ``migrate``
(Alembic, scripts in ``migrations/``); ``query`` and ``trends`` answer
GetHistory and GetTrends.
"""

from ..config import default_data_dir
from .migrate import SchemaTooNew
from .recorder import HistoryRecorder
from .store import HistoryError, HistoryStore, Retention, resolve_url

__all__ = [
    "HistoryError",
    "HistoryRecorder",
    "HistoryStore",
    "Retention",
    "SchemaTooNew",
    "default_data_dir",
    "resolve_url",
]
