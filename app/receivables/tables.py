"""Open items (invoices and credit items) and payments."""

from sqlalchemy import (
    Column,
    Date,
    PrimaryKeyConstraint,
    String,
    Table,
    UniqueConstraint,
)

from app.db import JsonDoc, Money, UTCDateTime, metadata, partial_index

open_items = Table(
    "open_items",
    metadata,
    Column("customer_id", String(64), nullable=False),
    Column("invoice_id", String(64), nullable=False),
    Column("amount", Money, nullable=False),
    Column("open_amount", Money, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("due_on", Date, nullable=False),
    Column("issued_on", Date),
    Column("order_id", String(64)),
    Column("origin", String(16), nullable=False),
    Column("reservation_consumed", Money, nullable=False),
    Column("response", JsonDoc),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    PrimaryKeyConstraint("customer_id", "invoice_id"),
    UniqueConstraint("invoice_id"),
    # Overdue facts read only the positive open items, by due date: the cost of a check does
    # not grow with the number of items that are not overdue.
    partial_index("ix_open_items_due", "customer_id", "due_on", where="open_amount > 0",
                  include=("open_amount",)),
)

payments = Table(
    "payments",
    metadata,
    Column("customer_id", String(64), nullable=False),
    Column("payment_id", String(64), nullable=False),
    Column("amount", Money, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("invoice_id", String(64)),
    Column("received_on", Date, nullable=False),
    Column("unapplied", Money, nullable=False),
    Column("response", JsonDoc, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    PrimaryKeyConstraint("customer_id", "payment_id"),
    UniqueConstraint("payment_id"),
    partial_index("ix_payments_unapplied", "customer_id", where="unapplied <> 0"),
)
