"""Credit groups: a limit shared by sister companies, with its maintained exposure."""

from sqlalchemy import Boolean, Column, Integer, String, Table, Text

from app.db.columns import Money, UTCDateTime, metadata

credit_groups = Table(
    "credit_groups",
    metadata,
    Column("group_id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("credit_limit", Money, nullable=False),
    Column("blocked", Boolean, nullable=False),
    Column("block_reason", Text),
    # The sums of the members' open_receivables and open_orders. Kept by a trigger on
    # accounts (migration 0012), in the transaction that changes a member, so no code path
    # can forget it; every writer locks the group row before the member's
    # (app/customers/locking.py).
    Column("open_receivables", Money, nullable=False),
    Column("open_orders", Money, nullable=False),
    Column("member_count", Integer, nullable=False),
    # Bumped on every change of the group's terms, so an optimistic check can prove that what
    # it decided from still holds when it writes.
    Column("version", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)
