"""The credit checks' daily tally per customer: what ORDER_SPIKE compares an order with,
kept by the check's own write so that no check sums a customer's history."""

from sqlalchemy import Column, Date, Integer, PrimaryKeyConstraint, String, Table

from app.db.columns import Money, metadata

check_days = Table(
    "check_days",
    metadata,
    Column("customer_id", String(64), nullable=False),
    Column("day", Date, nullable=False),
    Column("checks", Integer, nullable=False),
    Column("amount", Money, nullable=False),
    PrimaryKeyConstraint("customer_id", "day"),
)
