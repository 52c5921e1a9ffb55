"""Webhooks (admin only): endpoints, their delivery attempts, redelivery; through the events
service that POST/DELETE /v1/webhooks… use (the same URL checks, the same audit records)."""

from __future__ import annotations

import re
from typing import Any

from fastapi import Request, Response

from app.console.forms import Errors, app_error, sentence, validate
from app.console.web import action, db_of, need_session, render, router
from app.errors import AppError, NotFound
from app.events import service as events
from app.events.schemas import WebhookIn
from app.events.types import EventType

ULID = re.compile(r"^[0-9A-Z]{26}$")
TYPES = [t.value for t in EventType]


async def _list_page(request: Request, *, status: int = 200, errors: Errors | None = None,
                     notice: str | None = None, secret: str | None = None,
                     shown: dict[str, Any] | None = None) -> Response:
    hooks = await events.list_webhooks(db_of(request))
    return render(request, "webhooks.html", status=status, title="Webhooks", hooks=hooks,
                  types=TYPES, errors=errors or Errors(), notice=notice, secret=secret,
                  shown=shown or {"url": "", "description": "", "event_types": []})


@router.get("/webhooks")
async def webhooks(request: Request) -> Response:
    await need_session(request, admin=True)
    return await _list_page(request)


@router.post("/webhooks")
async def create_webhook(request: Request) -> Response:
    session, form = await action(request, admin=True)
    errors = Errors()
    shown = {"url": form.get("url").strip(), "description": form.get("description"),
             "event_types": form.all("event_types")}
    data: dict[str, Any] = {"url": shown["url"], "event_types": shown["event_types"]}
    if form.text("description") is not None:
        data["description"] = form.text("description")
    body = validate(WebhookIn, data, errors)
    if body is None:
        return await _list_page(request, status=422, errors=errors, shown=shown)
    try:
        created = await events.create(db_of(request), body, session.caller)
    except AppError as exc:
        app_error(exc, errors)
        return await _list_page(request, status=exc.status, errors=errors, shown=shown)
    return await _list_page(request, notice=f"Created endpoint {created.webhook_id}.",
                            secret=created.secret)


def _known(webhook_id: str) -> None:
    if not ULID.match(webhook_id):
        raise NotFound(f"no webhook endpoint {webhook_id}", code="webhook_not_found")


@router.post("/webhooks/{webhook_id}/rotate")
async def rotate(request: Request, webhook_id: str) -> Response:
    session, _form = await action(request, admin=True)
    _known(webhook_id)
    rotated = await events.rotate(db_of(request), webhook_id, session.caller)
    return await _list_page(
        request, secret=rotated.secret,
        notice=f"New secret for {webhook_id}; the old one also signs until "
               f"{rotated.previous_secret_expires_at:%Y-%m-%d %H:%M} UTC.")


@router.post("/webhooks/{webhook_id}/delete")
async def delete(request: Request, webhook_id: str) -> Response:
    session, _form = await action(request, admin=True)
    _known(webhook_id)
    await events.delete(db_of(request), webhook_id, session.caller)
    return await _list_page(request, notice=f"Deleted endpoint {webhook_id}.")


async def _deliveries_page(request: Request, webhook_id: str, *, status: int = 200,
                           errors: Errors | None = None, notice: str | None = None
                           ) -> Response:
    _known(webhook_id)
    db = db_of(request)
    hook = next((h for h in await events.list_webhooks(db) if h.webhook_id == webhook_id),
                None)
    page = await events.attempts(db, webhook_id, event_id=None, before=None, limit=100)
    return render(request, "webhook.html", status=status, title=f"Webhook {webhook_id}",
                  hook=hook, attempts=page.items, errors=errors or Errors(), notice=notice)


@router.get("/webhooks/{webhook_id}")
async def deliveries(request: Request, webhook_id: str) -> Response:
    await need_session(request, admin=True)
    return await _deliveries_page(request, webhook_id)


@router.post("/webhooks/{webhook_id}/redeliver")
async def redeliver(request: Request, webhook_id: str) -> Response:
    session, form = await action(request, admin=True)
    errors = Errors()
    event_id = form.get("event_id").strip()
    if not ULID.match(event_id):
        errors.add("event_id", "An event id is 26 capital letters and digits.")
        return await _deliveries_page(request, webhook_id, status=422, errors=errors)
    try:
        await events.redeliver(db_of(request), webhook_id, event_id, session.caller)
    except AppError as exc:
        errors.add("event_id", sentence(exc.detail))
        return await _deliveries_page(request, webhook_id, status=exc.status, errors=errors)
    return await _deliveries_page(request, webhook_id,
                                  notice=f"Event {event_id} will be delivered again shortly.")
