"""Request and response bodies of the alert and review endpoints."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from pydantic import Field

from app.fields import AmountOut, RequestModel, ResponseModel, Text


class AlertStatus(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class AcknowledgeIn(RequestModel):
    note: Text = Field(description="What the controller did or will do; kept on the alert "
                       "and in the credit file.")

    model_config = {"json_schema_extra": {"examples": [{"note": "called the CFO, plan agreed"}]}}


class AlertOut(ResponseModel):
    alert_id: str
    customer_id: str
    kind: str = Field(examples=["UTILISATION_HIGH"])
    status: str = Field(examples=["open"], description="open, acknowledged or resolved; an "
                        "acknowledged alert still counts as open for its kind")
    raised_at: dt.datetime
    acknowledged_at: dt.datetime | None
    acknowledged_by: str | None
    resolved_at: dt.datetime | None
    details: dict[str, Any] = Field(description="The facts the alert was raised on.")
    note: str | None


class AlertsPage(ResponseModel):
    items: list[AlertOut]
    next_cursor: str | None


class ReviewOut(ResponseModel):
    customer_id: str
    name: str
    currency: str
    credit_limit: AmountOut
    risk_class: str
    review_due_on: dt.date
    days_left: int = Field(description="Days until the review is due (negative: past due).")


class ReviewsPage(ResponseModel):
    items: list[ReviewOut]
    next_cursor: str | None
