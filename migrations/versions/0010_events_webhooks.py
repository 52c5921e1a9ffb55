"""The transactional outbox of events, webhook endpoints and their deliveries.

Revision ID: 0010
Revises: 0009
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _at(name: str, nullable: bool = True) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("position", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("event_id", sa.String(26), nullable=False),
        sa.Column("type", sa.String(40), nullable=False),
        sa.Column("customer_id", sa.String(64)),
        _at("timestamp", nullable=False),
        sa.Column("data", postgresql.JSONB(), nullable=False),
        sa.PrimaryKeyConstraint("position", name=op.f("pk_events")),
        sa.UniqueConstraint("event_id", name=op.f("uq_events_event_id")),
    )
    # The writing transaction's id (xid8: never wraps around), for the feed's stable order.
    op.execute("ALTER TABLE events ADD COLUMN txid xid8 NOT NULL DEFAULT pg_current_xact_id()")
    op.create_index("ix_events_feed", "events", ["txid", "position"])
    op.create_index("ix_events_type", "events", ["type", "txid", "position"])
    op.create_index("ix_events_timestamp", "events", ["timestamp"])
    op.create_table(
        "webhooks",
        sa.Column("webhook_id", sa.String(26), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("event_types", postgresql.ARRAY(sa.String(40)), nullable=False),
        sa.Column("description", sa.Text()),
        sa.Column("secret", sa.String(100), nullable=False),
        sa.Column("previous_secret", sa.String(100)),
        _at("previous_secret_expires_at"),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("disabled_reason", sa.Text()),
        _at("failing_since"),
        _at("created_at", nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False),
        _at("updated_at", nullable=False),
        sa.PrimaryKeyConstraint("webhook_id", name=op.f("pk_webhooks")),
    )
    op.create_index("ix_webhooks_status", "webhooks", ["status"])
    op.create_table(
        "webhook_deliveries",
        sa.Column("webhook_id", sa.String(26), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("event_id", sa.String(26), nullable=False),
        sa.Column("customer_id", sa.String(64)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _at("due_at", nullable=False),
        sa.Column("lease", sa.String(32)),
        _at("created_at", nullable=False),
        _at("finished_at"),
        sa.PrimaryKeyConstraint("webhook_id", "position", name=op.f("pk_webhook_deliveries")),
    )
    op.create_index("ix_webhook_deliveries_due", "webhook_deliveries", ["due_at"],
                    postgresql_where=sa.text("status = 'pending'"))
    op.create_index("ix_webhook_deliveries_order", "webhook_deliveries",
                    ["webhook_id", "customer_id", "position"],
                    postgresql_where=sa.text("status = 'pending'"))
    op.create_index("ix_webhook_deliveries_position", "webhook_deliveries", ["position"])
    op.create_table(
        "webhook_attempts",
        sa.Column("attempt_id", sa.String(26), nullable=False),
        sa.Column("webhook_id", sa.String(26), nullable=False),
        sa.Column("event_id", sa.String(26), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        _at("attempted_at", nullable=False),
        sa.Column("result", sa.String(16), nullable=False),
        sa.Column("status_code", sa.Integer()),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("response", sa.Text()),
        sa.Column("error", sa.Text()),
        _at("next_attempt_at"),
        sa.PrimaryKeyConstraint("attempt_id", name=op.f("pk_webhook_attempts")),
    )
    op.create_index("ix_webhook_attempts_webhook", "webhook_attempts",
                    ["webhook_id", "attempt_id"])
    op.create_index("ix_webhook_attempts_at", "webhook_attempts", ["attempted_at"])
    op.create_table(
        "webhook_changes",
        sa.Column("change_id", sa.String(26), nullable=False),
        sa.Column("webhook_id", sa.String(26), nullable=False),
        _at("at", nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("details", postgresql.JSONB()),
        sa.PrimaryKeyConstraint("change_id", name=op.f("pk_webhook_changes")),
    )
    op.create_index("ix_webhook_changes_webhook", "webhook_changes", ["webhook_id", "change_id"])
    # The endpoints' audit trail is append-only, like the credit file (function of 0002).
    op.execute("CREATE TRIGGER webhook_changes_append_only BEFORE UPDATE OR DELETE ON "
               "webhook_changes FOR EACH ROW EXECUTE FUNCTION creditgate_append_only()")


def downgrade() -> None:
    op.drop_table("webhook_changes")
    op.drop_table("webhook_attempts")
    op.drop_table("webhook_deliveries")
    op.drop_table("webhooks")
    op.drop_table("events")
