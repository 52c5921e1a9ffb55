"""Console sign-ins: one row per session, so that signing out revokes it on the server."""

from sqlalchemy import Column, Index, String, Table

from app.db.columns import UTCDateTime, metadata

console_sessions = Table(
    "console_sessions",
    metadata,
    # SHA-256 of the session token: the token itself lives only in the browser's cookie.
    Column("session_hash", String(64), primary_key=True),
    Column("key_id", String(26), nullable=False),
    Column("key_name", String(100), nullable=False),
    Column("role", String(16), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime),
    Index("ix_console_sessions_expires_at", "expires_at"),
)
