"""Securities: credit insurance, guarantees, letters of credit and collateral that add to a
customer's effective limit while valid."""

from sqlalchemy import Column, Date, PrimaryKeyConstraint, String, Table, Text

from app.db.columns import Money, UTCDateTime, metadata

securities = Table(
    "securities",
    metadata,
    Column("customer_id", String(64), nullable=False),
    Column("security_id", String(64), nullable=False),
    Column("kind", String(24), nullable=False),
    Column("amount", Money, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("valid_from", Date, nullable=False),
    Column("valid_until", Date, nullable=False),
    Column("provider", String(200)),
    Column("reference", Text),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    PrimaryKeyConstraint("customer_id", "security_id"),
)
