"""API keys: only a SHA-256 hash of each key is stored."""

from sqlalchemy import Column, String, Table

from app.db.columns import UTCDateTime, metadata

api_keys = Table(
    "api_keys",
    metadata,
    Column("key_id", String(26), primary_key=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("role", String(16), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_used_at", UTCDateTime),
    Column("revoked_at", UTCDateTime),
)
