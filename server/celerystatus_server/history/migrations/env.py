"""Runs migrations on the connection the history store hands over.

The store always passes its own connection (``config.attributes["connection"]``),
so no URL or logging configuration is read from an ini file.
"""

from __future__ import annotations

from alembic import context

from celerystatus_server.history.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
