"""Tables of the history store (SQLAlchemy Core).

A sample is one row: the values of every series at one time bucket, packed
against a *layout* (the sorted list of series names) that many samples share.
One row per bucket keeps the store small (bytes per day grow with the number
of values, not with per-row overhead) and makes writes idempotent: the primary
key is the bucket, so two replicas recording the same instant write it once.

The migrations in ``migrations/versions`` create these tables; this module is
what the code reads and writes through, and must describe the head revision.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

#: Resolution of raw samples; roll-ups are keyed by their bucket width in seconds.
RAW = 0
MINUTE = 60
HOUR = 3600

layouts = Table(
    "history_layouts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    # sha256 of the names, so every replica finds (or creates) the same row.
    Column("digest", String(64), nullable=False, unique=True),
    # JSON list of series names, sorted.
    Column("names", Text, nullable=False),
)

samples = Table(
    "history_samples",
    metadata,
    Column("resolution", Integer, primary_key=True, autoincrement=False),
    # Start of the bucket, epoch seconds.
    Column("ts", BigInteger, primary_key=True, autoincrement=False),
    Column("layout_id", Integer, nullable=False),
    # Packed values, see history.codec: the per-worker series (every series in
    # rows written before revision 0003)...
    Column("payload", LargeBinary, nullable=False),
    # ... and since 0003 the others (cluster, queues, task names), which most
    # queries ask for, so they do not unpack every worker's values.
    Column("summary_layout_id", Integer, nullable=True),
    Column("summary", LargeBinary, nullable=True),
)

task_runs = Table(
    "history_task_runs",
    metadata,
    Column("id", String(255), primary_key=True),
    Column("name", String(255), nullable=False),
    Column("worker", String(255), nullable=False),
    Column("started", Float, nullable=False),
    Column("last_seen", Float, nullable=False),
    Column("runtime", Float, nullable=False),
    # JSON; kept for admins, withheld from viewers when read.
    Column("args", Text, nullable=True),
    Column("kwargs", Text, nullable=True),
    Index("ix_history_task_runs_last_seen", "last_seen"),
    Index("ix_history_task_runs_name_last_seen", "name", "last_seen"),
)
