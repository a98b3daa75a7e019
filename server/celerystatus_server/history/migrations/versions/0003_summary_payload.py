"""A second, small payload per sample for the series that are not per worker.

Cluster, queue and task-name series are what most charts ask for; with them
in a payload of their own a query no longer unpacks every worker's values.
Rows written before this revision keep everything in ``payload`` and are
still read from it.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("history_samples") as batch:
        batch.add_column(sa.Column("summary_layout_id", sa.Integer, nullable=True))
        batch.add_column(sa.Column("summary", sa.LargeBinary, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("history_samples") as batch:
        batch.drop_column("summary")
        batch.drop_column("summary_layout_id")
