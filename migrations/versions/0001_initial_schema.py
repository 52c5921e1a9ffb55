"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-23 14:25:16.652752
"""

import datetime
from collections.abc import Sequence
from decimal import Decimal

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from app.db.columns import Money, UTCDateTime

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Money is NUMERIC(20,4) on PostgreSQL and an exact integer of 1/10,000ths on SQLite.
JSONDOC = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
RISK_CLASSES = ("AAA", "AA", "A", "BBB", "BB", "B", "CCC", "unrated")


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("credit_limit", Money(), nullable=False),
        sa.Column("risk_class", sa.String(length=8), nullable=False),
        sa.Column("payment_terms_days", sa.Integer(), nullable=False),
        sa.Column("blocked", sa.Boolean(), nullable=False),
        sa.Column("block_reason", sa.Text(), nullable=True),
        sa.Column("temp_limit_amount", Money(), nullable=True),
        sa.Column("temp_limit_expires_on", sa.Date(), nullable=True),
        sa.Column("open_receivables", Money(), nullable=False),
        sa.Column("open_orders", Money(), nullable=False),
        sa.Column("held_amount", Money(), nullable=False),
        sa.Column("held_count", sa.Integer(), nullable=False),
        sa.Column("terms_version", sa.Integer(), nullable=False),
        sa.Column("ledger_version", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_accounts")),
    )
    op.create_table(
        "api_keys",
        sa.Column("key_id", sa.String(length=26), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("last_used_at", UTCDateTime(), nullable=True),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("key_id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
        sa.UniqueConstraint("name", name=op.f("uq_api_keys_name")),
    )
    op.create_table(
        "credit_file",
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("entry_id", sa.String(length=26), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("event", sa.String(length=32), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("order_id", sa.String(length=64), nullable=True),
        sa.Column("outcome", sa.String(length=8), nullable=True),
        sa.Column("reasons", JSONDOC, nullable=True),
        sa.Column("amount", Money(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("open_receivables", Money(), nullable=True),
        sa.Column("open_orders", Money(), nullable=True),
        sa.Column("effective_limit", Money(), nullable=True),
        sa.Column("available", Money(), nullable=True),
        sa.Column("expires_at", UTCDateTime(), nullable=True),
        sa.Column("details", JSONDOC, nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("customer_id", "entry_id", name=op.f("pk_credit_file")),
    )
    op.create_index(
        "ix_credit_file_order", "credit_file", ["customer_id", "order_id"], unique=False
    )
    op.create_table(
        "open_items",
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("invoice_id", sa.String(length=64), nullable=False),
        sa.Column("amount", Money(), nullable=False),
        sa.Column("open_amount", Money(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("issued_on", sa.Date(), nullable=True),
        sa.Column("order_id", sa.String(length=64), nullable=True),
        sa.Column("origin", sa.String(length=16), nullable=False),
        sa.Column("reservation_consumed", Money(), nullable=False),
        sa.Column("response", JSONDOC, nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", "invoice_id", name=op.f("pk_open_items")),
        sa.UniqueConstraint("invoice_id", name=op.f("uq_open_items_invoice_id")),
    )
    op.create_index(
        "ix_open_items_due",
        "open_items",
        ["customer_id", "due_on"],
        unique=False,
        postgresql_where=sa.text("open_amount > 0"),
        sqlite_where=sa.text("open_amount > 0"),
    )
    op.create_table(
        "orders",
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("amount", Money(), nullable=False),
        sa.Column("requested_amount", Money(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=True),
        sa.Column("reserved", Money(), nullable=False),
        sa.Column("invoiced", Money(), nullable=False),
        sa.Column("released", sa.Boolean(), nullable=False),
        sa.Column("entry_decision_id", sa.String(length=26), nullable=False),
        sa.Column("dispatch_decision_id", sa.String(length=26), nullable=True),
        sa.Column("expires_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", "order_id", name=op.f("pk_orders")),
        sa.UniqueConstraint("order_id", name=op.f("uq_orders_order_id")),
    )
    op.create_index(
        "ix_orders_expiring",
        "orders",
        ["expires_at"],
        unique=False,
        postgresql_where=sa.text("status = 'approved'"),
        sqlite_where=sa.text("status = 'approved'"),
    )
    op.create_index(
        "ix_orders_held",
        "orders",
        ["created_at", "order_id"],
        unique=False,
        postgresql_where=sa.text("status = 'held'"),
        sqlite_where=sa.text("status = 'held'"),
    )
    op.create_index(
        "ix_orders_held_customer",
        "orders",
        ["customer_id", "created_at"],
        unique=False,
        postgresql_where=sa.text("status = 'held'"),
        sqlite_where=sa.text("status = 'held'"),
    )
    op.create_table(
        "payments",
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("payment_id", sa.String(length=64), nullable=False),
        sa.Column("amount", Money(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("invoice_id", sa.String(length=64), nullable=True),
        sa.Column("received_on", sa.Date(), nullable=False),
        sa.Column("unapplied", Money(), nullable=False),
        sa.Column("response", JSONDOC, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", "payment_id", name=op.f("pk_payments")),
        sa.UniqueConstraint("payment_id", name=op.f("uq_payments_payment_id")),
    )
    op.create_index(
        "ix_payments_unapplied",
        "payments",
        ["customer_id"],
        unique=False,
        postgresql_where=sa.text("unapplied <> 0"),
        sqlite_where=sa.text("unapplied <> 0"),
    )
    op.create_table(
        "policies",
        sa.Column("risk_class", sa.String(length=8), nullable=False),
        sa.Column("prepay_required", sa.Boolean(), nullable=False),
        sa.Column("hold_band", Money(), nullable=False),
        sa.Column("max_days_past_due", sa.Integer(), nullable=False),
        sa.Column("prepay_days_past_due", sa.Integer(), nullable=False),
        sa.Column("overdue_tolerance", Money(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("updated_by", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("risk_class", name=op.f("pk_policies")),
    )
    op.create_table(
        "policy_changes",
        sa.Column("change_id", sa.String(length=26), nullable=False),
        sa.Column("risk_class", sa.String(length=8), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("old", JSONDOC, nullable=True),
        sa.Column("new", JSONDOC, nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("change_id", name=op.f("pk_policy_changes")),
    )
    _seed_policies()


def _seed_policies() -> None:
    """The DESIGN.md defaults: hold band 20%, hold past 30 days, prepay past 90, CCC prepays."""
    policies = sa.table(
        "policies",
        sa.column("risk_class", sa.String),
        sa.column("prepay_required", sa.Boolean),
        sa.column("hold_band", Money()),
        sa.column("max_days_past_due", sa.Integer),
        sa.column("prepay_days_past_due", sa.Integer),
        sa.column("overdue_tolerance", Money()),
        sa.column("updated_at", UTCDateTime()),
        sa.column("updated_by", sa.String),
    )
    now = datetime.datetime.now(datetime.UTC)
    op.bulk_insert(
        policies,
        [
            {
                "risk_class": rc,
                "prepay_required": rc == "CCC",
                "hold_band": Decimal("0.20"),
                "max_days_past_due": 30,
                "prepay_days_past_due": 90,
                "overdue_tolerance": Decimal(0),
                "updated_at": now,
                "updated_by": "migration",
            }
            for rc in RISK_CLASSES
        ],
    )


def downgrade() -> None:
    op.drop_table("policy_changes")
    op.drop_table("policies")
    op.drop_index(
        "ix_payments_unapplied",
        table_name="payments",
        postgresql_where=sa.text("unapplied <> 0"),
        sqlite_where=sa.text("unapplied <> 0"),
    )
    op.drop_table("payments")
    op.drop_index(
        "ix_orders_held_customer",
        table_name="orders",
        postgresql_where=sa.text("status = 'held'"),
        sqlite_where=sa.text("status = 'held'"),
    )
    op.drop_index(
        "ix_orders_held",
        table_name="orders",
        postgresql_where=sa.text("status = 'held'"),
        sqlite_where=sa.text("status = 'held'"),
    )
    op.drop_index(
        "ix_orders_expiring",
        table_name="orders",
        postgresql_where=sa.text("status = 'approved'"),
        sqlite_where=sa.text("status = 'approved'"),
    )
    op.drop_table("orders")
    op.drop_index(
        "ix_open_items_due",
        table_name="open_items",
        postgresql_where=sa.text("open_amount > 0"),
        sqlite_where=sa.text("open_amount > 0"),
    )
    op.drop_table("open_items")
    op.drop_index("ix_credit_file_order", table_name="credit_file")
    op.drop_table("credit_file")
    op.drop_table("api_keys")
    op.drop_table("accounts")
