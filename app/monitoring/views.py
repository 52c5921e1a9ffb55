"""HTTP routes of the early-warning alerts and the reviews due."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response

from app import clock
from app.decimal_json import DecimalRoute
from app.deps import Controller, DbDep
from app.errors import Unprocessable
from app.fields import ID_PATTERN, IsoDate
from app.monitoring import service
from app.monitoring.alerts import Kind
from app.monitoring.schemas import (
    AcknowledgeIn,
    AlertOut,
    AlertsPage,
    AlertStatus,
    ReviewOut,
    ReviewsPage,
)
from app.replays import mark_replayed

router = APIRouter(tags=["monitoring"], route_class=DecimalRoute)
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
MAX_MICROS = 253_402_300_799_000_000  # 9999-12-31: any well-formed cursor is a position
ALERT_ID = r"^[0-9A-Z]{26}$"
ALERTS_CURSOR = r"^[0-9]{1,18}~[0-9A-Z]{26}$"
REVIEWS_CURSOR = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}~[A-Za-z0-9._:-]{1,64}$"
AlertId = Annotated[str, Path(pattern=ALERT_ID, description="The alert's id.")]


def _alert(row: Any) -> AlertOut:
    return AlertOut.model_validate(dict(row))


@router.get("/v1/alerts", response_model=AlertsPage, operation_id="list_alerts")
async def list_alerts(
    db: DbDep, _: Controller,
    customer_id: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
    kind: Kind | None = None,
    status: AlertStatus | None = None,
    cursor: Annotated[str | None, Query(pattern=ALERTS_CURSOR,
                                        description="next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> AlertsPage:
    """Early-warning alerts, newest first; `status=open` excludes acknowledged ones."""
    after = None
    if cursor:
        micros, alert_id = cursor.split("~", 1)
        after = (EPOCH + dt.timedelta(microseconds=min(int(micros), MAX_MICROS)), alert_id)
    rows = await service.list_alerts(db, customer_id=customer_id,
                                     kind=kind.value if kind else None,
                                     status=status.value if status else None, after=after,
                                     limit=limit + 1)
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        micros = (last["raised_at"] - EPOCH) // dt.timedelta(microseconds=1)
        next_cursor = f"{micros}~{last['alert_id']}"
    return AlertsPage(items=[_alert(r) for r in rows[:limit]], next_cursor=next_cursor)


@router.post("/v1/alerts/{alert_id}/acknowledge", response_model=AlertOut,
             operation_id="acknowledge_alert",
             responses={409: {"description": "The alert is resolved"}})
async def acknowledge_alert(alert_id: AlertId, body: AcknowledgeIn, db: DbDep,
                            caller: Controller, response: Response) -> AlertOut:
    """Acknowledge an alert. It still counts as open for its kind and still resolves itself;
    acknowledging it again changes nothing."""
    done = await service.acknowledge(db, alert_id, body.note, caller)
    mark_replayed(response, done.replayed)
    return _alert(done.alert)


@router.get("/v1/reviews", response_model=ReviewsPage, operation_id="list_reviews")
async def list_reviews(
    db: DbDep, _: Controller,
    due_before: Annotated[IsoDate | None, Query(
        description="Inclusive; default: today (UTC)")] = None,
    cursor: Annotated[str | None, Query(pattern=REVIEWS_CURSOR,
                                        description="next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> ReviewsPage:
    """Accounts whose review is due on or before `due_before`, oldest first."""
    today = clock.today()
    after = None
    if cursor:
        day, customer_id = cursor.split("~", 1)
        try:
            after = (dt.date.fromisoformat(day), customer_id)
        except ValueError:
            raise Unprocessable("cursor is not a next_cursor of this listing",
                                code="validation_error") from None
    rows = await service.list_reviews(db, due_before=due_before or today, after=after,
                                      limit=limit + 1)
    items = [ReviewOut(customer_id=r["customer_id"], name=r["name"], currency=r["currency"],
                       credit_limit=r["credit_limit"], risk_class=r["risk_class"],
                       review_due_on=r["review_due_on"],
                       days_left=(r["review_due_on"] - today).days) for r in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last = items[-1]
        next_cursor = f"{last.review_due_on.isoformat()}~{last.customer_id}"
    return ReviewsPage(items=items, next_cursor=next_cursor)
