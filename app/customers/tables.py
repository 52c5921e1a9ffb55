"""Credit accounts, with their maintained exposure aggregates."""

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    Integer,
    String,
    Table,
    Text,
)

from app.db.columns import Money, UTCDateTime, metadata, partial_index

# Pages are filled to 85 % (migration 0013): a check's update stays on its page.
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
    Column("review_due_on", Date),
    Column("max_order_amount", Money),
    # The credit group whose limit the account shares (app/groups), if any.
    Column("group_id", String(64)),
    # Recomputed by every ledger event that changes it and by the daily sweep (time makes
    # open items later), so a check reads it without summing any history.
    Column("payment_index", Integer),
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
    partial_index("ix_accounts_group", "group_id", "customer_id",
                  where="group_id IS NOT NULL"),
    partial_index("ix_accounts_review_due", "review_due_on", "customer_id",
                  where="review_due_on IS NOT NULL"),
)
