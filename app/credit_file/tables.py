"""The credit file: one row per decision or event, never updated or deleted (migration 0002)."""

from sqlalchemy import Column, Integer, PrimaryKeyConstraint, String, Table, Text

from app.db.columns import JsonDoc, Money, Rate, UTCDateTime, metadata, partial_index

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
    # The amount in the account's currency and the rate used, when `currency` is another.
    Column("converted_amount", Money),
    Column("fx_rate", Rate),
    Column("open_receivables", Money),
    Column("open_orders", Money),
    Column("effective_limit", Money),
    Column("available", Money),
    Column("expires_at", UTCDateTime),
    Column("payment_index", Integer),
    # What the decision was taken on (terms, class policy, exposure, overdue facts, payment
    # index, review date), so that a simulation can decide it again (app/policies/simulate.py).
    Column("inputs", JsonDoc),
    # Everything else: old -> new values, allocations, counts.
    Column("details", JsonDoc),
    Column("note", Text),
    PrimaryKeyConstraint("customer_id", "entry_id"),
    # An order's entries, by its id alone (migration 0014): order ids mostly grow, so a
    # check's entry goes to the index's last leaves, not to a random one per customer.
    partial_index("ix_credit_file_order_id", "order_id", where="order_id IS NOT NULL"),
    partial_index("ix_credit_file_checks", "at", where="event = 'credit_check'"),
)
