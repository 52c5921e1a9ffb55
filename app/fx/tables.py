"""Exchange rates by day: 1 unit of from_currency = rate units of to_currency."""

from sqlalchemy import Column, Date, PrimaryKeyConstraint, String, Table

from app.db.columns import Rate, UTCDateTime, metadata

fx_rates = Table(
    "fx_rates",
    metadata,
    Column("from_currency", String(3), nullable=False),
    Column("to_currency", String(3), nullable=False),
    Column("as_of", Date, nullable=False),
    Column("rate", Rate, nullable=False),
    Column("actor", String(100), nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    # The latest rate on or before a day is the first row of a backward scan of this key.
    PrimaryKeyConstraint("from_currency", "to_currency", "as_of"),
)
