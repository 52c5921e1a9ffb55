"""The transactional outbox: `emit` writes an event in the caller's transaction.

An event and its deliveries (one per active endpoint subscribed to its type) are written by
one statement inside the transaction of the change, so they commit or roll back with it; at
commit PostgreSQL wakes the dispatchers (NOTIFY, sent only when there is something to
deliver). Call `emit` after the change, while the customer's account row is still locked
(every service that changes a customer holds that lock): then a customer's events are
numbered in the order they commit, which the per-customer delivery order relies on.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

from pydantic_core import to_json
from sqlalchemy import event, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from app import metrics
from app.events.types import EventType
from app.ids import new_id

WEBHOOKS_CHANNEL = "creditgate_webhooks"
_PENDING = "creditgate_events"

_EMIT = (
    "WITH e AS (INSERT INTO events (event_id, type, customer_id, timestamp, data) "
    "VALUES (:event_id, :type, :customer_id, :ts, CAST(:data AS jsonb)) "
    "RETURNING position, event_id, type, customer_id, timestamp), "
    "d AS (INSERT INTO webhook_deliveries (webhook_id, position, event_id, customer_id, status, "
    "attempts, due_at, created_at) SELECT w.webhook_id, e.position, e.event_id, e.customer_id, "
    "'pending', 0, e.timestamp, e.timestamp FROM e JOIN webhooks w "
    "ON w.status = 'active' AND e.type = ANY(w.event_types) RETURNING 1) "
    f"SELECT CASE WHEN EXISTS (SELECT 1 FROM d) THEN pg_notify('{WEBHOOKS_CHANNEL}', '') END "
    "FROM e"
)
_NAMES = ("event_id", "type", "customer_id", "ts", "data")
_EMIT_PG = re.sub(r":(event_id|type|customer_id|ts|data)\b",
                  lambda m: f"${_NAMES.index(m.group(1)) + 1}", _EMIT)


def encode(data: Any) -> str:
    """The event's `data` as JSON: a response model as the API renders it (money as decimal
    strings), or any dict/list of JSON-able values, Decimals, dates and enums."""
    return to_json(data).decode()


def _params(event_type: EventType | str, data: Any, customer_id: str | None,
            now: dt.datetime) -> tuple[str, str, str | None, dt.datetime, str]:
    kind = EventType(event_type)  # an unknown type is a programming error: ValueError
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return new_id(), kind.value, customer_id, now, encode(data)


async def emit(conn: AsyncConnection, event_type: EventType | str, data: Any, *,
               customer_id: str | None, now: dt.datetime) -> str:
    """Write one event in the transaction of `conn` (a `Database.begin()` block); returns its
    event_id. `data` is the full object as it is now (the order with its decisions, the
    alert, the account). Counted in creditgate_events_total when the transaction commits."""
    params = _params(event_type, data, customer_id, now)
    await conn.execute(text(_EMIT), dict(zip(_NAMES, params, strict=True)))
    if conn.sync_connection is not None and conn.sync_connection.get_execution_options().get(
            "isolation_level") == "AUTOCOMMIT":
        metrics.EVENTS.labels(params[1]).inc()
    else:
        _count_at_commit(conn.sync_connection, params[1])
    return params[0]


async def emit_pg(pg: Any, event_type: EventType | str, data: Any, *,
                  customer_id: str | None, now: dt.datetime) -> str:
    """`emit` for the hot path's asyncpg connection (`Database.driver()`), inside its
    `transaction()`. asyncpg has no commit hook: call `count_emitted(types)` after the
    transaction committed."""
    params = _params(event_type, data, customer_id, now)
    await pg.fetchval(_EMIT_PG, *params)
    return params[0]


def count_emitted(types: list[str]) -> None:
    """Count events written through `emit_pg` once their transaction committed."""
    for kind in types:
        metrics.EVENTS.labels(kind).inc()


def _count_at_commit(sync: Connection | None, kind: str) -> None:
    if sync is None:
        return
    sync.info.setdefault(_PENDING, []).append(kind)
    engine = sync.engine
    if not event.contains(engine, "commit", _committed):
        event.listen(engine, "commit", _committed)
        event.listen(engine, "rollback", _rolled_back)


def _committed(conn: Connection) -> None:
    if conn.invalidated:  # .info would try to revalidate it, and raise over the real error
        return
    for kind in conn.info.pop(_PENDING, ()):
        metrics.EVENTS.labels(kind).inc()


def _rolled_back(conn: Connection) -> None:
    # An invalidated connection (a statement cancelled or timed out) takes its pending
    # counts with it: its .info goes with the DBAPI connection it is discarded with.
    if not conn.invalidated:
        conn.info.pop(_PENDING, None)


_FEED = (
    "SELECT event_id, type, customer_id, timestamp, data FROM events "
    "WHERE txid < pg_snapshot_xmin(pg_current_snapshot()) {where} "
    "ORDER BY txid, position LIMIT :limit"
)


async def feed(conn: AsyncConnection, *, event_type: str | None, after: str | None,
               limit: int) -> list[Any] | None:
    """Events oldest first (by writing transaction, then position), strictly after the event
    `after`; only from transactions older than every one still in flight, so a page never
    skips an event that commits later. None when `after` is not an event."""
    where = ""
    params: dict[str, Any] = {"limit": limit}
    if after is not None:
        cursor = (await conn.execute(text("SELECT 1 FROM events WHERE event_id = :a"),
                                     {"a": after})).first()
        if cursor is None:
            return None
        where += (" AND (txid, position) > (SELECT txid, position FROM events "
                  "WHERE event_id = :after)")
        params["after"] = after
    if event_type is not None:
        where += " AND type = :type"
        params["type"] = event_type
    rows = await conn.execute(text(_FEED.format(where=where)), params)
    return [{**r, "data": json.loads(r["data"]) if isinstance(r["data"], str) else r["data"]}
            for r in rows.mappings().all()]
