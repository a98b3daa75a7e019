"""Task runs followed across snapshots.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "history_task_runs",
        sa.Column("id", sa.String(255), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("worker", sa.String(255), nullable=False),
        sa.Column("started", sa.Float, nullable=False),
        sa.Column("last_seen", sa.Float, nullable=False),
        sa.Column("runtime", sa.Float, nullable=False),
        sa.Column("args", sa.Text, nullable=True),
        sa.Column("kwargs", sa.Text, nullable=True),
    )
    op.create_index("ix_history_task_runs_last_seen", "history_task_runs", ["last_seen"])
    op.create_index("ix_history_task_runs_name_last_seen", "history_task_runs", ["name", "last_seen"])


def downgrade() -> None:
    op.drop_table("history_task_runs")
