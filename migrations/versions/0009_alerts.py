"""Early-warning alerts, at most one open per customer and kind; the daily sweep's days.

Revision ID: 0009
Revises: 0008
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("alert_id", sa.String(26), nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True)),
        sa.Column("acknowledged_by", sa.String(100)),
        sa.Column("resolved_at", sa.DateTime(timezone=True)),
        sa.Column("details", postgresql.JSONB(), nullable=False),
        sa.Column("note", sa.Text()),
        sa.PrimaryKeyConstraint("alert_id", name=op.f("pk_alerts")),
    )
    op.create_index("uq_alerts_open", "alerts", ["customer_id", "kind"], unique=True,
                    postgresql_where=sa.text("status <> 'resolved'"))
    op.create_index("ix_alerts_customer", "alerts", ["customer_id", "raised_at"])
    op.create_index("ix_alerts_status", "alerts", ["status", "raised_at"])
    op.create_table(
        "monitor_sweeps",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("claimed_by", sa.String(100), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("evaluated", sa.Integer()),
        sa.Column("raised", sa.Integer()),
        sa.Column("resolved", sa.Integer()),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_monitor_sweeps")),
    )


def downgrade() -> None:
    op.drop_table("monitor_sweeps")
    op.drop_table("alerts")
