"""The outbox of events, webhook endpoints, their deliveries, attempts and audit trail."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Identity,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql.base import ischema_names
from sqlalchemy.types import UserDefinedType

from app.db.columns import JsonDoc, UTCDateTime, metadata, partial_index


class Xid8(UserDefinedType[int]):
    """PostgreSQL's 64-bit transaction id (never read back in Python: compared in SQL)."""

    cache_ok = True

    def get_col_spec(self, **_kw: Any) -> str:
        return "xid8"


# So that reflection (Alembic's comparison in tests/db) knows the type too.
ischema_names["xid8"] = Xid8

# One row per event, written in the transaction of the change (app/events/outbox.py).
# `position` is the insert order; `txid` the writing transaction. The feed pages by
# (txid, position) and serves only transactions older than every one still in flight, so an
# event that commits late can never sort before a cursor a reader already holds.
events = Table(
    "events",
    metadata,
    Column("position", BigInteger, Identity(), nullable=False),
    Column("event_id", String(26), nullable=False, unique=True),
    Column("type", String(40), nullable=False),
    Column("customer_id", String(64)),
    Column("timestamp", UTCDateTime, nullable=False),
    Column("data", JsonDoc, nullable=False),
    Column("txid", Xid8, nullable=False, server_default=text("pg_current_xact_id()")),
    PrimaryKeyConstraint("position"),
    Index("ix_events_feed", "txid", "position"),
    Index("ix_events_type", "type", "txid", "position"),
    Index("ix_events_timestamp", "timestamp"),
)

webhooks = Table(
    "webhooks",
    metadata,
    Column("webhook_id", String(26), primary_key=True),
    Column("url", Text, nullable=False),
    Column("event_types", ARRAY(String(40)), nullable=False),
    Column("description", Text),
    # Must be kept in clear: it keys the HMAC. Only ever shown in the create/rotate answers.
    Column("secret", String(100), nullable=False),
    Column("previous_secret", String(100)),
    Column("previous_secret_expires_at", UTCDateTime),
    Column("status", String(16), nullable=False),  # active, disabled, deleted
    Column("disabled_reason", Text),
    Column("failing_since", UTCDateTime),  # first failure since the last success
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(100), nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_webhooks_status", "status"),
)

# One row per (endpoint, event) to deliver. While pending, `due_at` is the next attempt or,
# once claimed, the end of the claim's lease (`lease` names the claim).
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("webhook_id", String(26), nullable=False),
    Column("position", BigInteger, nullable=False),
    Column("event_id", String(26), nullable=False),
    Column("customer_id", String(64)),
    Column("status", String(16), nullable=False),  # pending, delivered, failed, cancelled
    Column("attempts", Integer, nullable=False),
    Column("due_at", UTCDateTime, nullable=False),
    Column("lease", String(32)),
    Column("created_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime),
    PrimaryKeyConstraint("webhook_id", "position"),
    partial_index("ix_webhook_deliveries_due", "due_at", where="status = 'pending'"),
    partial_index("ix_webhook_deliveries_order", "webhook_id", "customer_id", "position",
                  where="status = 'pending'"),
    Index("ix_webhook_deliveries_position", "position"),
)

webhook_attempts = Table(
    "webhook_attempts",
    metadata,
    Column("attempt_id", String(26), primary_key=True),
    Column("webhook_id", String(26), nullable=False),
    Column("event_id", String(26), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("attempted_at", UTCDateTime, nullable=False),
    Column("result", String(16), nullable=False),  # delivered, retried, failed
    Column("status_code", Integer),
    Column("duration_ms", Integer, nullable=False),
    Column("response", Text),  # the first 1 KiB of the answer
    Column("error", Text),
    Column("next_attempt_at", UTCDateTime),
    Index("ix_webhook_attempts_webhook", "webhook_id", "attempt_id"),
    Index("ix_webhook_attempts_at", "attempted_at"),
)

# The audit trail of the endpoints (append-only, migration 0010): who created, rotated,
# deleted, asked for a redelivery; when and why the dispatcher disabled one.
webhook_changes = Table(
    "webhook_changes",
    metadata,
    Column("change_id", String(26), primary_key=True),
    Column("webhook_id", String(26), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(100), nullable=False),
    Column("action", String(32), nullable=False),
    Column("details", JsonDoc),
    Index("ix_webhook_changes_webhook", "webhook_id", "change_id"),
)
