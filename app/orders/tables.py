"""Orders and their reservations."""

from sqlalchemy import (
    Boolean,
    Column,
    PrimaryKeyConstraint,
    String,
    Table,
    UniqueConstraint,
)

from app.db.columns import Money, Rate, UTCDateTime, metadata, partial_index

orders = Table(
    "orders",
    metadata,
    Column("customer_id", String(64), nullable=False),
    Column("order_id", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("amount", Money, nullable=False),
    Column("requested_amount", Money, nullable=False),
    Column("currency", String(3), nullable=False),
    # The amount in the account's currency (= amount when the order is in it) and the rate
    # it was converted at (null then); reserved and invoiced are in the account's currency.
    Column("converted_amount", Money, nullable=False),
    Column("fx_rate", Rate),
    Column("channel", String(32)),
    Column("reserved", Money, nullable=False),
    Column("invoiced", Money, nullable=False),
    Column("released", Boolean, nullable=False),
    Column("entry_decision_id", String(26), nullable=False),
    Column("dispatch_decision_id", String(26)),
    Column("expires_at", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    PrimaryKeyConstraint("customer_id", "order_id"),
    UniqueConstraint("order_id"),
    partial_index("ix_orders_held", "created_at", "order_id", where="status = 'held'"),
    partial_index("ix_orders_held_customer", "customer_id", "created_at", where="status = 'held'"),
    partial_index("ix_orders_expiring", "expires_at", where="status = 'approved'"),
)
