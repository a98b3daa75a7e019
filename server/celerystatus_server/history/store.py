"""The history store: SQLite (default, WAL) or PostgreSQL through SQLAlchemy Core.

Everything here blocks; callers run it on their own threads (the recorder's
writer, a query pool), never on the collector thread or an event loop.
Roll-ups and retention follow an injectable clock so tests can age data.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Engine, case, create_engine, delete, event, func, null, select
from sqlalchemy.engine import make_url
from sqlalchemy.sql.dml import Insert

from ..config import default_data_dir
from . import codec, migrate
from . import schema as t
from .series import CLUSTER, Kind, kind_of

#: A query or write against PostgreSQL never waits longer than this (ms).
PG_STATEMENT_TIMEOUT_MS = 10_000
PG_CONNECT_TIMEOUT_S = 3
SQLITE_BUSY_TIMEOUT_S = 2.0
#: Roll-up work done per maintenance call, so one call never holds the writer long.
MAX_ROLLUP_BUCKETS = 24 * 60


_WORKERS = "workers"
_SUMMARY = "summary"
#: The two packed payloads of a row: (part, layout column, payload column).
_PARTS = ((_WORKERS, "layout_id", "payload"), (_SUMMARY, "summary_layout_id", "summary"))


def _part_of(name: str) -> str:
    return _WORKERS if name.startswith("worker:") else _SUMMARY


class HistoryError(RuntimeError):
    """The history store cannot be opened or used."""


@dataclass(frozen=True, slots=True)
class Retention:
    """How long each resolution is kept, in seconds."""

    raw: float = 24 * 3600.0
    minute: float = 30 * 86400.0
    hour: float = 365 * 86400.0
    runs: float = 7 * 86400.0

    def of(self, resolution: int) -> float:
        return {t.RAW: self.raw, t.MINUTE: self.minute, t.HOUR: self.hour}[resolution]


@dataclass(frozen=True, slots=True)
class Sample:
    """Every series' value at one time bucket (``ts``: start of the bucket, epoch seconds)."""

    ts: int
    values: dict[str, float]


@dataclass(frozen=True, slots=True)
class TaskRunRecord:
    id: str
    name: str
    worker: str
    started: float
    last_seen: float
    #: JSON text of the positional / keyword arguments, None when unknown.
    args: str | None = None
    kwargs: str | None = None

    @property
    def runtime(self) -> float:
        return max(0.0, self.last_seen - self.started)


@dataclass(frozen=True, slots=True)
class Point:
    """One stored bucket, decoded: per series, the value a query step should use."""

    ts: int
    resolution: int
    #: name -> (min, max, mean, last, count); a raw value is its own min, max, mean and last, count 1.
    values: dict[str, tuple[float, float, float, float, int]] = field(default_factory=dict)

    def get(self, name: str) -> tuple[float, float, float, float, int] | None:
        return self.values.get(name)


def resolve_url(history_url: str | None, data_dir: str | None) -> str | None:
    """The SQLAlchemy URL to use, or None when history is off (``none``)."""
    if history_url is not None and history_url.strip().lower() in {"none", "off", ""}:
        return None
    if history_url:
        url = history_url.strip()
        # psycopg (3) is the driver we ship; a bare postgresql:// would ask for psycopg2.
        for prefix in ("postgresql://", "postgres://"):
            if url.startswith(prefix):
                return "postgresql+psycopg://" + url[len(prefix):]
        return url
    directory = Path(data_dir or default_data_dir())
    return f"sqlite:///{directory / 'history.sqlite3'}"


def describe_url(url: str) -> str:
    """The URL with its password hidden, for messages."""
    return make_url(url).render_as_string(hide_password=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL: readers (queries) and the writer do not block each other.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _pg_session(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute(f"SET statement_timeout = {PG_STATEMENT_TIMEOUT_MS}")
    cursor.close()
    dbapi_connection.commit()


def create_history_engine(url: str) -> Engine:
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            try:
                Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise HistoryError(f"data_dir: cannot create the directory of {database!r}: {exc.strerror}") from None
        engine = create_engine(parsed, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if backend == "postgresql":
        engine = create_engine(
            parsed,
            connect_args={"connect_timeout": PG_CONNECT_TIMEOUT_S},
            pool_pre_ping=True,
            pool_size=3,
            max_overflow=2,
            pool_timeout=5,
        )
        event.listen(engine, "connect", _pg_session)
        return engine
    raise HistoryError(f"history_url: unsupported database {backend!r} (use sqlite:/// or postgresql+psycopg://)")


def _finite(value: float) -> bool:
    return not (math.isnan(value) or math.isinf(value))


class HistoryStore:
    """Reads and writes samples and task runs; thread-safe (one engine, pooled connections)."""

    def __init__(
        self,
        url: str,
        *,
        retention: Retention | None = None,
        interval: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.url = url
        self.retention = retention or Retention()
        self.interval = interval
        self.clock = clock
        self.engine = create_history_engine(url)
        self.dialect = self.engine.dialect.name
        self._layout_ids: dict[str, int] = {}
        self._layout_names: dict[int, tuple[str, ...]] = {}
        self._layout_index: dict[int, dict[str, int]] = {}
        self._known_names: set[str] = set(CLUSTER)
        self._names_seen_up_to = 0
        self._lock = threading.Lock()

    def close(self) -> None:
        self.engine.dispose()

    def upgrade(self) -> tuple[str | None, str]:
        """Apply pending migrations (raises ``migrate.SchemaTooNew`` for a newer database)."""
        return migrate.upgrade(self.engine)

    # -- writing ------------------------------------------------------------------
    def _insert_ignore(self, table: Any) -> Insert:
        if self.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            return pg_insert(table).on_conflict_do_nothing()
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(table).on_conflict_do_nothing()

    def _layout_id(self, connection: Any, names: tuple[str, ...]) -> int:
        text = json.dumps(names, separators=(",", ":"))
        digest = hashlib.sha256(text.encode()).hexdigest()
        with self._lock:
            cached = self._layout_ids.get(digest)
        if cached is not None:
            return cached
        connection.execute(self._insert_ignore(t.layouts).values(digest=digest, names=text))
        layout_id = int(connection.execute(select(t.layouts.c.id).where(t.layouts.c.digest == digest)).scalar_one())
        with self._lock:
            self._layout_ids[digest] = layout_id
            self._layout_names[layout_id] = names
        return layout_id

    def write(self, samples: Sequence[Sample] = (), runs: Sequence[TaskRunRecord] = ()) -> None:
        """One transaction; a bucket or run already stored (by another replica) is left as is."""
        with self.engine.begin() as connection:
            rows = []
            for sample in samples:
                names = sorted(n for n, v in sample.values.items() if _finite(v))
                row: dict[str, Any] = {"resolution": t.RAW, "ts": sample.ts}
                for part, layout_column, payload_column in _PARTS:
                    mine = tuple(n for n in names if _part_of(n) == part)
                    row[layout_column] = self._layout_id(connection, mine)
                    row[payload_column] = codec.encode_raw([codec.round_value(sample.values[n]) for n in mine])
                rows.append(row)
            if rows:
                connection.execute(self._insert_ignore(t.samples), rows)
            if runs:
                connection.execute(
                    self._insert_ignore(t.task_runs),
                    [
                        {"id": r.id, "name": r.name, "worker": r.worker, "started": r.started,
                         "last_seen": r.last_seen, "runtime": r.runtime, "args": r.args, "kwargs": r.kwargs}
                        for r in runs
                    ],
                )

    # -- roll-ups and retention ---------------------------------------------------------
    def maintain(self) -> dict[str, int]:
        """Roll complete buckets up (raw -> minute -> hour) and delete what retention allows."""
        now = self.clock()
        done = {"minute": self._rollup(t.RAW, t.MINUTE, now), "hour": self._rollup(t.MINUTE, t.HOUR, now)}
        with self.engine.begin() as connection:
            for resolution in (t.RAW, t.MINUTE, t.HOUR):
                cutoff = int(now - self.retention.of(resolution))
                connection.execute(
                    delete(t.samples).where(t.samples.c.resolution == resolution, t.samples.c.ts < cutoff)
                )
            connection.execute(delete(t.task_runs).where(t.task_runs.c.last_seen < now - self.retention.runs))
        return done

    def _rollup(self, source: int, target: int, now: float) -> int:
        # A bucket is complete once the next one has started and late samples had time to land.
        grace = self.interval + 5 if source == t.RAW else 0
        end = int((now - grace) // target * target)
        with self.engine.connect() as connection:
            last = connection.execute(
                select(func.max(t.samples.c.ts)).where(t.samples.c.resolution == target)
            ).scalar()
            if last is not None:
                start = int(last) + target
            else:
                first = connection.execute(
                    select(func.min(t.samples.c.ts)).where(t.samples.c.resolution == source)
                ).scalar()
                if first is None:
                    return 0
                start = int(first) // target * target
            end = min(end, start + MAX_ROLLUP_BUCKETS * target)
            if end <= start:
                return 0
            points = self._read(connection, source, start, end)
        buckets: dict[int, list[Point]] = defaultdict(list)
        for point in points:
            buckets[point.ts // target * target].append(point)
        rows = []
        with self.engine.begin() as connection:
            for ts, group in sorted(buckets.items()):
                names = sorted({name for point in group for name in point.values})
                row: dict[str, Any] = {"resolution": target, "ts": ts}
                for part, layout_column, payload_column in _PARTS:
                    mine = tuple(n for n in names if _part_of(n) == part)
                    row[layout_column] = self._layout_id(connection, mine)
                    row[payload_column] = codec.encode_rollup(_aggregate(group, mine))
                rows.append(row)
            if rows:
                connection.execute(self._insert_ignore(t.samples), rows)
        return len(rows)

    # -- reading --------------------------------------------------------------------------
    def _names(self, connection: Any, layout_id: int) -> tuple[str, ...]:
        with self._lock:
            names = self._layout_names.get(layout_id)
        if names is None:
            text = connection.execute(select(t.layouts.c.names).where(t.layouts.c.id == layout_id)).scalar_one()
            names = tuple(json.loads(text))
            with self._lock:
                self._layout_names[layout_id] = names
        return names

    def _index(self, layout_id: int, names: tuple[str, ...]) -> dict[str, int]:
        with self._lock:
            index = self._layout_index.get(layout_id)
        if index is None:
            index = {name: i for i, name in enumerate(names)}
            with self._lock:
                self._layout_index[layout_id] = index
        return index

    def _unpack(
        self,
        connection: Any,
        layout_id: int,
        blob: bytes,
        wanted: set[str] | None,
        values: dict[str, tuple[float, float, float, float, int]],
    ) -> None:
        """Add the wanted values of one packed payload to ``values``."""
        names = self._names(connection, layout_id)
        index = self._index(layout_id, names)
        picks = index.items() if wanted is None else ((n, index[n]) for n in wanted if n in index)
        decoded = codec.decode(blob)
        if isinstance(decoded, codec.Rollup):
            low, high, means, last, count = (
                cast(Sequence[float], decoded.min), cast(Sequence[float], decoded.max),
                cast(Sequence[float], decoded.mean), cast(Sequence[float], decoded.last), decoded.count,
            )
            for name, i in picks:
                mean = means[i]
                if mean != mean:  # NaN: not recorded in this bucket
                    continue
                values[name] = (low[i], high[i], mean, last[i], count[i])
        else:
            for name, i in picks:
                value = decoded[i]
                if value == value:
                    values[name] = (value, value, value, value, 1)

    def _read(
        self, connection: Any, resolution: int, since: int, until: int, wanted: set[str] | None = None
    ) -> list[Point]:
        summary_only = wanted is not None and all(_part_of(n) == _SUMMARY for n in wanted)
        # Rows from before revision 0003 have no summary: their payload holds everything.
        payload = (
            case((t.samples.c.summary.is_(None), t.samples.c.payload), else_=None)
            if summary_only
            else t.samples.c.payload
        )
        workers_only = wanted is not None and all(_part_of(n) == _WORKERS for n in wanted)
        summary = null() if workers_only else t.samples.c.summary
        rows = connection.execute(
            select(t.samples.c.ts, t.samples.c.layout_id, payload, t.samples.c.summary_layout_id, summary)
            .where(t.samples.c.resolution == resolution, t.samples.c.ts >= since, t.samples.c.ts < until)
            .order_by(t.samples.c.ts)
        ).all()
        points = []
        for ts, layout_id, workers_blob, summary_layout_id, summary_blob in rows:
            values: dict[str, tuple[float, float, float, float, int]] = {}
            for part_layout, blob in ((layout_id, workers_blob), (summary_layout_id, summary_blob)):
                if blob is not None:
                    self._unpack(connection, part_layout, blob, wanted, values)
            points.append(Point(int(ts), resolution, values))
        return points

    def points(self, since: float, until: float, step: float, wanted: Iterable[str] | None = None) -> list[Point]:
        """Stored buckets in [since, until), from the coarsest resolution that fits ``step``.

        The newest part of the range is not rolled up yet; it is filled from the
        next finer resolution, so a query always reaches the latest sample.
        """
        resolution = t.HOUR if step >= t.HOUR else t.MINUTE if step >= t.MINUTE else t.RAW
        chain = [r for r in (t.HOUR, t.MINUTE, t.RAW) if r <= resolution]
        names = set(wanted) if wanted is not None else None
        out: list[Point] = []
        start = math.floor(since)
        end = math.ceil(until)
        with self.engine.connect() as connection:
            for res in chain:
                if start >= end:
                    break
                found = self._read(connection, res, start, end, names)
                out.extend(found)
                if found:
                    start = max(start, found[-1].ts + max(res, 1))
        out.sort(key=lambda p: p.ts)
        return out

    def recorded_names(self) -> set[str]:
        """Every series name ever stored (in any layout, this replica's or another's).

        Layouts never change once written, so only the ones added since the last
        call are read.
        """
        with self._lock:
            seen = self._names_seen_up_to
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(t.layouts.c.id, t.layouts.c.names).where(t.layouts.c.id > seen).order_by(t.layouts.c.id)
            ).all()
        with self._lock:
            for layout_id, text in rows:
                self._known_names.update(json.loads(text))
                self._names_seen_up_to = max(self._names_seen_up_to, int(layout_id))
            return set(self._known_names)

    def runs(
        self, since: float, until: float, *, limit: int = 1000, name: str | None = None
    ) -> tuple[list[TaskRunRecord], bool]:
        """Runs whose last sighting falls in [since, until), newest first; True when truncated."""
        query = select(t.task_runs).where(t.task_runs.c.last_seen >= since, t.task_runs.c.last_seen < until)
        if name is not None:
            query = query.where(t.task_runs.c.name == name)
        query = query.order_by(t.task_runs.c.last_seen.desc()).limit(limit + 1)
        with self.engine.connect() as connection:
            rows = connection.execute(query).mappings().all()
        records = [
            TaskRunRecord(
                id=row["id"], name=row["name"], worker=row["worker"], started=row["started"],
                last_seen=row["last_seen"], args=row["args"], kwargs=row["kwargs"],
            )
            for row in rows[:limit]
        ]
        return records, len(rows) > limit

    def runtimes(self, since: float, until: float) -> dict[str, list[float]]:
        """Runtimes per task name of the runs seen in [since, until)."""
        query = select(t.task_runs.c.name, t.task_runs.c.runtime).where(
            t.task_runs.c.last_seen >= since, t.task_runs.c.last_seen < until
        )
        out: dict[str, list[float]] = defaultdict(list)
        with self.engine.connect() as connection:
            for name, runtime in connection.execute(query):
                out[name].append(float(runtime))
        return dict(out)

    def size_bytes(self) -> int | None:
        """Bytes the database takes on disk (SQLite file + WAL, or PostgreSQL tables)."""
        if self.dialect == "sqlite":
            database = self.engine.url.database
            if not database:
                return None
            return sum(os.path.getsize(p) for p in (database, database + "-wal") if os.path.exists(p))
        if self.dialect == "postgresql":
            from sqlalchemy import text

            with self.engine.connect() as connection:
                total = 0
                for table in ("history_samples", "history_layouts", "history_task_runs"):
                    size = connection.execute(text("SELECT pg_total_relation_size(:t)"), {"t": table}).scalar()
                    total += int(size or 0)
                return total
        return None


def _aggregate(group: Sequence[Point], names: Sequence[str]) -> codec.Rollup:
    counts: list[int] = []
    mins: list[float | None] = []
    maxs: list[float | None] = []
    means: list[float | None] = []
    lasts: list[float | None] = []
    for name in names:
        present = [p.values[name] for p in group if name in p.values]
        if not present:
            counts.append(0)
            mins.append(None)
            maxs.append(None)
            means.append(None)
            lasts.append(None)
            continue
        n = sum(v[4] for v in present)
        counts.append(n)
        mins.append(codec.round_value(min(v[0] for v in present)))
        maxs.append(codec.round_value(max(v[1] for v in present)))
        means.append(codec.round_value(sum(v[2] * v[4] for v in present) / n))
        lasts.append(codec.round_value(present[-1][3]))
    return codec.Rollup(count=counts, min=mins, max=maxs, mean=means, last=lasts)


def columns(
    points: Sequence[Point], names: Sequence[str], since: float, step: float, count: int
) -> dict[str, list[float]]:
    """Columnar values on the grid ``since + i * step`` (NaN where nothing was stored).

    Within a step a gauge is averaged (weighted by samples), a counter takes its
    last value and event counts are added up.
    """
    kinds = [kind_of(name) or Kind.GAUGE for name in names]
    sums = [[0.0] * count for _ in names]
    weights = [[0] * count for _ in names]
    lasts = [[math.nan] * count for _ in names]
    for point in sorted(points, key=lambda p: p.ts):
        index = int((point.ts - since) // step)
        if not 0 <= index < count:
            continue
        for k, name in enumerate(names):
            value = point.values.get(name)
            if value is None:
                continue
            sums[k][index] += value[2] * value[4]
            weights[k][index] += value[4]
            lasts[k][index] = value[3]
    out: dict[str, list[float]] = {}
    for k, name in enumerate(names):
        kind, total, n, last = kinds[k], sums[k], weights[k], lasts[k]
        if kind is Kind.COUNTER:
            out[name] = last
        elif kind is Kind.EVENTS:
            out[name] = [total[i] if n[i] else math.nan for i in range(count)]
        else:
            out[name] = [total[i] / n[i] if n[i] else math.nan for i in range(count)]
    return out
