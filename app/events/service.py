"""Webhook endpoints: create, list, delete, rotate, their attempts, redelivery; audited."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import insert, select, text, update

from app import clock
from app.auth.roles import Caller
from app.db.engine import Database
from app.errors import Conflict, NotFound, Unprocessable
from app.events.dispatcher import disable, record
from app.events.outbox import WEBHOOKS_CHANNEL, feed
from app.events.schemas import (
    AttemptOut,
    AttemptsPage,
    EventOut,
    EventsPage,
    RedeliveryOut,
    SecretRotated,
    WebhookCreated,
    WebhookIn,
    WebhookOut,
)
from app.events.signing import new_secret
from app.events.tables import webhook_attempts, webhooks
from app.events.urls import UnsafeUrl, resolve
from app.ids import new_id
from app.notify import notify

ROTATION_OVERLAP = dt.timedelta(hours=24)


def _invalid(field: str, message: str) -> Unprocessable:
    return Unprocessable(f"invalid fields: {field}", code="validation_error",
                         extra={"errors": [{"field": field, "message": message}]})


async def events_page(db: Database, *, event_type: str | None, after: str | None,
                      limit: int) -> EventsPage:
    async with db.autocommit() as conn:
        rows = await feed(conn, event_type=event_type, after=after, limit=limit)
    if rows is None:
        raise _invalid("query.after", "is not the event_id of an event in the feed (events "
                       "older than the retention are pruned)")
    items = [EventOut.model_validate(r) for r in rows]
    return EventsPage(items=items, next_after=items[-1].event_id if items else after)


async def create(db: Database, body: WebhookIn, caller: Caller) -> WebhookCreated:
    try:
        await resolve(body.url, allow_private=db.settings.webhook_allow_private)
    except UnsafeUrl as exc:
        raise _invalid("body.url", str(exc)) from None
    now = clock.now()
    webhook_id = new_id()
    row: dict[str, Any] = {"webhook_id": webhook_id, "url": body.url,
           "event_types": [t.value for t in body.event_types], "description": body.description,
           "secret": new_secret(), "status": "active", "created_at": now,
           "created_by": caller.name, "updated_at": now}
    async with db.begin() as conn:
        await conn.execute(insert(webhooks).values(row))
        await record(conn, webhook_id, "created", caller.name, now,
                     {"url": body.url, "event_types": row["event_types"],
                      "description": body.description})
    return WebhookCreated(**row, disabled_reason=None)


def _out(row: Any) -> WebhookOut:
    return WebhookOut.model_validate(dict(row))


async def list_webhooks(db: Database) -> list[WebhookOut]:
    async with db.autocommit() as conn:
        rows = (await conn.execute(select(webhooks).where(webhooks.c.status != "deleted")
                                   .order_by(webhooks.c.webhook_id))).mappings().all()
    return [_out(r) for r in rows]


async def _locked(conn: Any, webhook_id: str) -> Any:
    row = (await conn.execute(select(webhooks).where(
        webhooks.c.webhook_id == webhook_id, webhooks.c.status != "deleted")
        .with_for_update())).mappings().first()
    if row is None:
        raise NotFound(f"no webhook endpoint {webhook_id}", code="webhook_not_found")
    return row


async def delete(db: Database, webhook_id: str, caller: Caller) -> None:
    now = clock.now()
    async with db.begin() as conn:
        await _locked(conn, webhook_id)
        await conn.execute(update(webhooks).where(webhooks.c.webhook_id == webhook_id)
                           .values(status="deleted", updated_at=now))
        await conn.execute(text(
            "UPDATE webhook_deliveries SET status = 'cancelled', finished_at = :now, "
            "lease = NULL WHERE webhook_id = :w AND status = 'pending'"),
            {"w": webhook_id, "now": now})
        await record(conn, webhook_id, "deleted", caller.name, now)


async def rotate(db: Database, webhook_id: str, caller: Caller) -> SecretRotated:
    now = clock.now()
    secret, until = new_secret(), now + ROTATION_OVERLAP
    async with db.begin() as conn:
        row = await _locked(conn, webhook_id)
        await conn.execute(update(webhooks).where(webhooks.c.webhook_id == webhook_id).values(
            secret=secret, previous_secret=row["secret"], previous_secret_expires_at=until,
            updated_at=now))
        await record(conn, webhook_id, "secret_rotated", caller.name, now,
                     {"previous_secret_expires_at": until.isoformat()})
    return SecretRotated(webhook_id=webhook_id, secret=secret, previous_secret_expires_at=until)


async def attempts(db: Database, webhook_id: str, *, event_id: str | None,
                   before: str | None, limit: int) -> AttemptsPage:
    """Delivery attempts, newest first."""
    async with db.autocommit() as conn:
        found = await conn.scalar(select(webhooks.c.webhook_id).where(
            webhooks.c.webhook_id == webhook_id, webhooks.c.status != "deleted"))
        if found is None:
            raise NotFound(f"no webhook endpoint {webhook_id}", code="webhook_not_found")
        stmt = select(webhook_attempts).where(webhook_attempts.c.webhook_id == webhook_id)
        if event_id is not None:
            stmt = stmt.where(webhook_attempts.c.event_id == event_id)
        if before is not None:
            stmt = stmt.where(webhook_attempts.c.attempt_id < before)
        stmt = stmt.order_by(webhook_attempts.c.attempt_id.desc()).limit(limit + 1)
        rows = (await conn.execute(stmt)).mappings().all()
    items = [AttemptOut.model_validate(dict(r)) for r in rows[:limit]]
    return AttemptsPage(items=items,
                        next_cursor=items[-1].attempt_id if len(rows) > limit else None)


async def redeliver(db: Database, webhook_id: str, event_id: str, caller: Caller
                    ) -> RedeliveryOut:
    """Deliver the event to the endpoint again, as soon as possible (a fresh schedule)."""
    now = clock.now()
    async with db.begin() as conn:
        row = await _locked(conn, webhook_id)
        if row["status"] != "active":
            raise Conflict(f"webhook endpoint {webhook_id} is disabled "
                           f"({row['disabled_reason']}); create a new one",
                           code="webhook_disabled")
        event = (await conn.execute(text(
            "SELECT position, customer_id FROM events WHERE event_id = :e"),
            {"e": event_id})).mappings().first()
        if event is None:
            raise NotFound(f"no event {event_id}", code="event_not_found")
        await conn.execute(text(
            "INSERT INTO webhook_deliveries (webhook_id, position, event_id, customer_id, "
            "status, attempts, due_at, created_at) VALUES (:w, :p, :e, :c, 'pending', 0, :now, "
            ":now) ON CONFLICT (webhook_id, position) DO UPDATE SET status = 'pending', "
            "attempts = 0, due_at = :now, lease = NULL, finished_at = NULL"),
            {"w": webhook_id, "p": event["position"], "e": event_id,
             "c": event["customer_id"], "now": now})
        await record(conn, webhook_id, "redelivery_requested", caller.name, now,
                     {"event_id": event_id})
        await notify(conn, WEBHOOKS_CHANNEL)
    return RedeliveryOut(webhook_id=webhook_id, event_id=event_id, status="pending")


__all__ = ["attempts", "create", "delete", "disable", "events_page", "list_webhooks",
           "redeliver", "rotate"]
