"""Open items (invoices and credit items) and payments."""

from sqlalchemy import (
    Column,
    Date,
    Integer,
    Numeric,
    PrimaryKeyConstraint,
    String,
    Table,
    UniqueConstraint,
)

from app.db.columns import JsonDoc, Money, Rate, UTCDateTime, metadata, partial_index

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
    # The document as sent when it is in another currency than the account's (amount and
    # the money columns above are the account's currency, converted at fx_rate).
    Column("document_amount", Money),
    Column("document_currency", String(3)),
    Column("fx_rate", Rate),
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
    # The document as sent when it is in another currency than the account's (amount and
    # the money columns above are the account's currency, converted at fx_rate).
    Column("document_amount", Money),
    Column("document_currency", String(3)),
    Column("fx_rate", Rate),
    Column("response", JsonDoc, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    PrimaryKeyConstraint("customer_id", "payment_id"),
    UniqueConstraint("payment_id"),
    partial_index("ix_payments_unapplied", "customer_id", where="unapplied <> 0"),
)

# Payment behaviour (DESIGN 2.2). The line items: every amount a payment applied to an
# invoice, with the invoice's dates as they were when it was applied.
payment_applications = Table(
    "payment_applications",
    metadata,
    Column("customer_id", String(64), nullable=False),
    Column("payment_id", String(64), nullable=False),
    Column("invoice_id", String(64), nullable=False),
    Column("amount", Money, nullable=False),
    Column("received_on", Date, nullable=False),
    Column("due_on", Date, nullable=False),
    Column("issued_on", Date),
    PrimaryKeyConstraint("customer_id", "payment_id", "invoice_id"),
)

# Amount x days sums are unbounded NUMERIC: 10^14 x thousands of days outgrows NUMERIC(20,4).
AmountDays = Numeric(asdecimal=True)

# Maintained aggregates: one row per customer and day the applications were received, so a
# window of 365 days reads at most 365 rows whatever the length of the history. Changed by
# each payment's allocations, in its transaction.
payment_days = Table(
    "payment_days",
    metadata,
    Column("customer_id", String(64), nullable=False),
    Column("received_on", Date, nullable=False),
    Column("amount", Money, nullable=False),
    Column("late_days", AmountDays, nullable=False),
    Column("on_time", Money, nullable=False),
    Column("dated_amount", Money, nullable=False),
    Column("dated_days", AmountDays, nullable=False),
    Column("max_days_late", Integer, nullable=False),
    PrimaryKeyConstraint("customer_id", "received_on"),
)

# Invoiced sales per customer and invoice day (issued_on, else the day posted); changed by
# each invoice posted, never by snapshots (their items are not sales).
invoiced_days = Table(
    "invoiced_days",
    metadata,
    Column("customer_id", String(64), nullable=False),
    Column("invoiced_on", Date, nullable=False),
    Column("amount", Money, nullable=False),
    PrimaryKeyConstraint("customer_id", "invoiced_on"),
)
