"""Request and response bodies of the events feed and the webhook endpoints."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from pydantic import Field, StringConstraints, field_validator

from app.events.types import EventType
from app.events.urls import MAX_URL_LENGTH
from app.fields import NO_NUL, RequestModel, ResponseModel, Text

Url = Annotated[str, StringConstraints(min_length=1, max_length=MAX_URL_LENGTH, strict=True,
                                       pattern=NO_NUL)]


class EventOut(ResponseModel):
    event_id: str
    type: str = Field(examples=["order.held"])
    timestamp: dt.datetime
    customer_id: str | None
    data: dict[str, Any] = Field(description="The full object as it was when the event "
                                 "happened (the order with its decisions, the alert, the "
                                 "account, the assessment).")


class EventsPage(ResponseModel):
    items: list[EventOut]
    next_after: str | None = Field(description="Pass as `after` for the next page: the last "
                                   "item's event_id (the `after` given, when there was none).")


class WebhookIn(RequestModel):
    url: Url = Field(description="https, resolving to public addresses only (unless "
                     "CREDITGATE_WEBHOOK_ALLOW_PRIVATE=true).",
                     examples=["https://erp.example.com/hooks/creditgate"])
    event_types: list[EventType] = Field(min_length=1, max_length=len(EventType))
    description: Text | None = None

    model_config = {"json_schema_extra": {"examples": [{
        "url": "https://erp.example.com/hooks/creditgate",
        "event_types": ["order.held", "order.released", "alert.raised"],
        "description": "ERP order desk"}]}}

    @field_validator("event_types")
    @classmethod
    def _unique(cls, value: list[EventType]) -> list[EventType]:
        if len(set(value)) != len(value):
            raise ValueError("must not repeat a type")
        return value


class WebhookOut(ResponseModel):
    webhook_id: str
    url: str
    event_types: list[str]
    description: str | None
    status: str = Field(description="active or disabled", examples=["active"])
    disabled_reason: str | None
    created_at: dt.datetime


class WebhookCreated(WebhookOut):
    secret: str = Field(description="The signing secret (whsec_…); shown only now.")


class WebhooksPage(ResponseModel):
    items: list[WebhookOut]


class SecretRotated(ResponseModel):
    webhook_id: str
    secret: str = Field(description="The new signing secret; shown only now.")
    previous_secret_expires_at: dt.datetime = Field(description="Until then deliveries are "
                                                    "signed with the old secret too.")


class AttemptOut(ResponseModel):
    attempt_id: str
    event_id: str
    attempt: int
    attempted_at: dt.datetime
    result: str = Field(description="delivered, retried or failed (given up)")
    status_code: int | None
    duration_ms: int
    response: str | None = Field(description="The first 1 KiB of the answer.")
    error: str | None
    next_attempt_at: dt.datetime | None


class AttemptsPage(ResponseModel):
    items: list[AttemptOut]
    next_cursor: str | None


class RedeliveryOut(ResponseModel):
    webhook_id: str
    event_id: str
    status: str = Field(examples=["pending"])
