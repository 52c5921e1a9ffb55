"""Credit accounts (with their maintained exposure aggregates) and the credit file."""

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

from app.db import JsonDoc, Money, UTCDateTime, metadata

accounts = Table(
    "accounts",
    metadata,
    Column("customer_id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("credit_limit", Money, nullable=False),
    Column("risk_class", String(8), nullable=False),
    Column("payment_terms_days", Integer, nullable=False),
    Column("blocked", Boolean, nullable=False),
    Column("block_reason", Text),
    Column("temp_limit_amount", Money),
    Column("temp_limit_expires_on", Date),
    # Maintained aggregates, changed in the same transaction as the event that changes them.
    Column("open_receivables", Money, nullable=False),
    Column("open_orders", Money, nullable=False),
    Column("held_amount", Money, nullable=False),
    Column("held_count", Integer, nullable=False),
    # Bumped on every change of terms / of receivables, so an optimistic check can prove that
    # what it decided from is still true when it writes.
    Column("terms_version", Integer, nullable=False),
    Column("ledger_version", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

credit_file = Table(
    "credit_file",
    metadata,
    Column("customer_id", String(64), nullable=False),
    Column("entry_id", String(26), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("event", String(32), nullable=False),
    Column("actor", String(100), nullable=False),
    Column("order_id", String(64)),
    # Decision entries (credit checks, dispatch checks, amendments, releases).
    Column("outcome", String(8)),
    Column("reasons", JsonDoc),
    Column("amount", Money),
    Column("currency", String(3)),
    Column("open_receivables", Money),
    Column("open_orders", Money),
    Column("effective_limit", Money),
    Column("available", Money),
    Column("expires_at", UTCDateTime),
    # Everything else: old -> new values, allocations, counts.
    Column("details", JsonDoc),
    Column("note", Text),
    PrimaryKeyConstraint("customer_id", "entry_id"),
    Index("ix_credit_file_order", "customer_id", "order_id"),
)
