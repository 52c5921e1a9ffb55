"""Early-warning alerts: at most one open (or acknowledged) per customer and kind."""

from sqlalchemy import Column, Date, Index, Integer, String, Table, Text, text

from app.db.columns import JsonDoc, UTCDateTime, metadata

alerts = Table(
    "alerts",
    metadata,
    Column("alert_id", String(26), primary_key=True),
    Column("customer_id", String(64), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("status", String(16), nullable=False),  # open, acknowledged, resolved
    Column("raised_at", UTCDateTime, nullable=False),
    Column("acknowledged_at", UTCDateTime),
    Column("acknowledged_by", String(100)),
    Column("resolved_at", UTCDateTime),
    Column("details", JsonDoc, nullable=False),
    Column("note", Text),
    # The one-open-per-kind rule, enforced by PostgreSQL whoever raises concurrently.
    Index("uq_alerts_open", "customer_id", "kind", unique=True,
          postgresql_where=text("status <> 'resolved'")),
    Index("ix_alerts_customer", "customer_id", "raised_at"),
    Index("ix_alerts_status", "status", "raised_at"),
)

# The daily sweep: one row per UTC day. A replica claims the day (a lease it renews while it
# sweeps); a finished day is never swept again by the in-app task (`creditgate monitor` may).
monitor_sweeps = Table(
    "monitor_sweeps",
    metadata,
    Column("day", Date, primary_key=True),
    Column("claimed_by", String(100), nullable=False),
    Column("claimed_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime),
    Column("evaluated", Integer),
    Column("raised", Integer),
    Column("resolved", Integer),
)
