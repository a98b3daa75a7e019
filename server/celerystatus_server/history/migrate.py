"""Schema migrations (Alembic), run by the store on start and by ``celery-status history upgrade``.

The scripts live in this package (``migrations/``), so an installed wheel
migrates without any file from the source tree. A database stamped with a
revision this version does not know was written by a newer celery-status and
is refused rather than touched.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text

MIGRATIONS = Path(__file__).parent / "migrations"
#: Any constant: serialises concurrent upgrades of one PostgreSQL database by several replicas.
_PG_LOCK_KEY = 0x63656C7374  # "celst"


class SchemaTooNew(RuntimeError):
    """The database was migrated by a newer celery-status."""


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head() -> str:
    revision = ScriptDirectory.from_config(_config()).get_current_head()
    assert revision is not None
    return revision


def known_revisions() -> set[str]:
    return {script.revision for script in ScriptDirectory.from_config(_config()).walk_revisions()}


def current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, target: str = "head") -> tuple[str | None, str]:
    """Bring the schema to ``target``; returns (revision before, revision after).

    Raises :class:`SchemaTooNew` when the database carries an unknown revision.
    """
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
        before = current(connection)
        if before is not None and before not in known_revisions():
            raise SchemaTooNew(
                f"the history database is at schema revision {before!r}, newer than this celery-status "
                f"knows (latest {head()!r}); upgrade celery-status or point --history-url elsewhere"
            )
        command.upgrade(_config(connection), target)
        after = current(connection)
    assert after is not None
    return before, after
