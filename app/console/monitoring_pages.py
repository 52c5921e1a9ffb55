"""Alerts (acknowledge with a note, through the monitoring service) and reviews due."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from fastapi import Request, Response

from app import clock
from app.console.forms import Errors, sentence, validate
from app.console.web import action, db_of, need_session, render, router
from app.errors import AppError
from app.fields import ID_PATTERN
from app.monitoring import service as monitoring
from app.monitoring.alerts import Kind
from app.monitoring.schemas import AcknowledgeIn

STATUSES = ("unresolved", "open", "acknowledged", "resolved")
SHOWN = 200


async def _alerts_page(request: Request, *, status: int = 200, errors: Errors | None = None,
                       notice: str | None = None, notes: dict[str, str] | None = None
                       ) -> Response:
    await need_session(request)
    q = request.query_params
    wanted = q.get("status") or "unresolved"
    kind = q.get("kind") or None
    customer_id = q.get("customer_id") or None
    problems = []
    if wanted not in STATUSES:
        problems.append(f"Unknown status {wanted!r}.")
        wanted = "unresolved"
    if kind is not None and kind not in Kind.__members__:
        problems.append(f"Unknown kind {kind!r}.")
        kind = None
    if customer_id is not None and not re.fullmatch(ID_PATTERN, customer_id):
        problems.append("A customer id is 1 to 64 letters, digits or ._:- characters.")
        customer_id = None
    db = db_of(request)
    rows: list[Any] = []
    for one in (("open", "acknowledged") if wanted == "unresolved" else (wanted,)):
        rows += await monitoring.list_alerts(db, customer_id=customer_id, kind=kind,
                                             status=one, after=None, limit=SHOWN)
    rows.sort(key=lambda r: (r["raised_at"], r["alert_id"]), reverse=True)
    return render(request, "alerts.html", status=422 if problems else status, title="Alerts",
                  rows=rows[:SHOWN], kinds=[k.value for k in Kind], statuses=STATUSES,
                  wanted=wanted, kind=kind or "", customer_id=customer_id or "",
                  problems=problems, errors=errors or Errors(), notice=notice,
                  notes=notes or {}, query=request.url.query)


@router.get("/alerts")
async def alerts(request: Request) -> Response:
    return await _alerts_page(request)


@router.post("/alerts/{alert_id}/acknowledge")
async def acknowledge(request: Request, alert_id: str) -> Response:
    """POST /v1/alerts/{id}/acknowledge's service: the note on the alert and in the file."""
    session, form = await action(request)
    errors = Errors()
    field = f"note-{alert_id}"
    body = validate(AcknowledgeIn, {"note": form.get("note").strip()}, errors, {"note": field})
    if body is None:
        return await _alerts_page(request, status=422, errors=errors,
                                  notes={alert_id: form.get("note")})
    try:
        done = await monitoring.acknowledge(db_of(request), alert_id, body.note, session.caller)
    except AppError as exc:
        errors.add(field, sentence(exc.detail))
        return await _alerts_page(request, status=exc.status, errors=errors)
    alert = done.alert
    notice = (f"{alert['kind']} of {alert['customer_id']} was already acknowledged."
              if done.replayed else f"Acknowledged {alert['kind']} of {alert['customer_id']}.")
    return await _alerts_page(request, notice=notice)


@router.get("/reviews")
async def reviews(request: Request) -> Response:
    await need_session(request)
    today = clock.today()
    text = request.query_params.get("due_before") or ""
    errors = Errors()
    due_before = today + dt.timedelta(days=14)
    if text:
        try:
            due_before = dt.date.fromisoformat(text)
        except ValueError:
            errors.add("due_before", "Enter a date as YYYY-MM-DD.")
    rows = await monitoring.list_reviews(db_of(request), due_before=due_before, after=None,
                                         limit=SHOWN)
    return render(request, "reviews.html", status=422 if errors else 200, title="Reviews due",
                  rows=rows, due_before=due_before, errors=errors, shown_max=SHOWN)
