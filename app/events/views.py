"""HTTP routes of the events feed (any role) and the webhook endpoints (admin only)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response

from app.decimal_json import DecimalRoute
from app.deps import Admin, AnyRole, DbDep
from app.events import service
from app.events.schemas import (
    AttemptsPage,
    EventsPage,
    RedeliveryOut,
    SecretRotated,
    WebhookCreated,
    WebhookIn,
    WebhooksPage,
)
from app.events.types import EventType

router = APIRouter(route_class=DecimalRoute)
ULID = r"^[0-9A-Z]{26}$"
WebhookId = Annotated[str, Path(pattern=ULID, description="The endpoint's id.")]
EventId = Annotated[str, Path(pattern=ULID, description="The event's id.")]
_404: dict[int | str, dict[str, Any]] = {404: {"description": "No such webhook endpoint"}}


@router.get("/v1/events", response_model=EventsPage, operation_id="list_events",
            tags=["events"])
async def list_events(
    db: DbDep, _: AnyRole,
    type: Annotated[EventType | None, Query(description="Only events of this type")] = None,
    after: Annotated[str | None, Query(pattern=ULID, description="An event_id (exclusive): "
                                       "next_after of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> EventsPage:
    """The events feed, oldest first, for systems that poll. Paging is stable while events
    arrive: an event appears once its transaction and every older one have finished."""
    return await service.events_page(db, event_type=type.value if type else None,
                                     after=after, limit=limit)


@router.post("/v1/webhooks", response_model=WebhookCreated, status_code=201,
             operation_id="create_webhook", tags=["webhooks"])
async def create_webhook(body: WebhookIn, db: DbDep, caller: Admin) -> WebhookCreated:
    """Register an endpoint; it receives the events of its types committed from now on.
    The signing secret is in this answer only."""
    return await service.create(db, body, caller)


@router.get("/v1/webhooks", response_model=WebhooksPage, operation_id="list_webhooks",
            tags=["webhooks"])
async def list_webhooks(db: DbDep, _: Admin) -> WebhooksPage:
    """Every endpoint (never its secret)."""
    return WebhooksPage(items=await service.list_webhooks(db))


@router.delete("/v1/webhooks/{webhook_id}", status_code=204, response_class=Response,
               operation_id="delete_webhook", tags=["webhooks"], responses=_404)
async def delete_webhook(webhook_id: WebhookId, db: DbDep, caller: Admin) -> Response:
    """Remove an endpoint; what it still had pending is not delivered."""
    await service.delete(db, webhook_id, caller)
    return Response(status_code=204)


@router.post("/v1/webhooks/{webhook_id}/rotate-secret", response_model=SecretRotated,
             operation_id="rotate_webhook_secret", tags=["webhooks"], responses=_404)
async def rotate_secret(webhook_id: WebhookId, db: DbDep, caller: Admin) -> SecretRotated:
    """A new signing secret (shown only now); for 24 h the old one signs too."""
    return await service.rotate(db, webhook_id, caller)


@router.get("/v1/webhooks/{webhook_id}/deliveries", response_model=AttemptsPage,
            operation_id="list_webhook_deliveries", tags=["webhooks"], responses=_404)
async def list_deliveries(
    webhook_id: WebhookId, db: DbDep, _: Admin,
    event_id: Annotated[str | None, Query(pattern=ULID)] = None,
    cursor: Annotated[str | None, Query(pattern=ULID,
                                        description="next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> AttemptsPage:
    """Delivery attempts, newest first: status, duration, the first 1 KiB of the answer."""
    return await service.attempts(db, webhook_id, event_id=event_id, before=cursor,
                                  limit=limit)


@router.post("/v1/webhooks/{webhook_id}/redeliver/{event_id}", response_model=RedeliveryOut,
             status_code=202, operation_id="redeliver_webhook_event", tags=["webhooks"],
             responses={**_404, 409: {"description": "The endpoint is disabled"}})
async def redeliver(webhook_id: WebhookId, event_id: EventId, db: DbDep, caller: Admin
                    ) -> RedeliveryOut:
    """Deliver an event to the endpoint again, as soon as possible."""
    return await service.redeliver(db, webhook_id, event_id, caller)
