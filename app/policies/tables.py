"""Decision parameters per risk class, and their audit trail."""

from sqlalchemy import Boolean, Column, Integer, String, Table, Text

from app.db.columns import ExactRatio, JsonDoc, Money, UTCDateTime, metadata

policies = Table(
    "policies",
    metadata,
    Column("risk_class", String(8), primary_key=True),
    Column("prepay_required", Boolean, nullable=False),
    Column("hold_band", ExactRatio, nullable=False),
    Column("max_days_past_due", Integer, nullable=False),
    Column("prepay_days_past_due", Integer, nullable=False),
    Column("overdue_tolerance", Money, nullable=False),
    Column("min_payment_index", Integer),
    Column("review_grace_days", Integer),
    Column("alert_utilisation", ExactRatio, nullable=False, server_default="0.90"),
    Column("alert_payment_index", Integer, nullable=False, server_default="50"),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("updated_by", String(100), nullable=False),
    # Bumped by every change: an optimistic check's write lands only under the version it read.
    Column("version", Integer, nullable=False, server_default="1"),
)

policy_changes = Table(
    "policy_changes",
    metadata,
    Column("change_id", String(26), primary_key=True),
    Column("risk_class", String(8), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(100), nullable=False),
    Column("old", JsonDoc),
    Column("new", JsonDoc, nullable=False),
    Column("note", Text),
)
