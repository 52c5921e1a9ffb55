"""Request and response bodies of credit checks and decisions."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import Field, StrictBool, StringConstraints

from app.fields import (
    AmountOut,
    Currency,
    Id,
    PositiveAmount,
    RateOut,
    RequestModel,
    ResponseModel,
)

Channel = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._-]{1,32}$", strict=True)]


class CreditCheckIn(RequestModel):
    order_id: Id
    customer_id: Id
    amount: PositiveAmount
    currency: Currency
    channel: Channel | None = None
    dry_run: StrictBool = False

    model_config = {"json_schema_extra": {"examples": [{
        "order_id": "SO-100231", "customer_id": "ACME-001", "amount": "4800.00",
        "currency": "EUR", "channel": "webshop"}]}}


class ReasonOut(ResponseModel):
    code: str = Field(examples=["WITHIN_LIMIT"])
    message: str


class DecisionExposureOut(ResponseModel):
    open_receivables: AmountOut
    open_orders: AmountOut
    total: AmountOut


class DecisionGroupOut(ResponseModel):
    group_id: str
    exposure: AmountOut = Field(description="The group's exposure before this order.")
    effective_limit: AmountOut
    available: AmountOut = Field(description="Group limit minus group exposure after this "
                                             "decision.")


class DecisionOut(ResponseModel):
    decision_id: str
    kind: str = Field(description="credit_check, dispatch_check, amendment, manual_release "
                                  "or auto_release")
    order_id: str
    customer_id: str
    outcome: Literal["approve", "hold", "prepay"]
    reasons: list[ReasonOut]
    amount: AmountOut
    currency: str
    converted_amount: AmountOut = Field(description="The amount in the account's currency "
                                                    "(the amount itself when it is in it).")
    fx_rate: RateOut | None = Field(
        default=None, description="What 1 unit of `currency` counted for in the account's "
                                  "currency; null when the same.")
    exposure: DecisionExposureOut = Field(description="Before this order (dispatch: current, this "
                                              "order included).")
    effective_limit: AmountOut
    available: AmountOut = Field(description="Effective limit minus exposure after this "
                                             "decision.")
    decided_at: dt.datetime
    expires_at: dt.datetime | None = Field(
        default=None, description="When the reservation lapses (approvals only).")
    payment_index: int | None = Field(
        default=None, description="The customer's payment index (1-100) the decision saw; "
                                  "null without payment history.")
    group: DecisionGroupOut | None = Field(
        default=None, description="The credit group's figures, for a member of one.")
    dry_run: bool = False
    note: str | None = None
    actor: str | None = None

    model_config = {"json_schema_extra": {"examples": [
        {"decision_id": "01JDQ3V0Y8K2M4N6P8R0T2V4X6", "kind": "credit_check",
         "order_id": "SO-100231", "customer_id": "ACME-001", "outcome": "approve",
         "reasons": [{"code": "WITHIN_LIMIT",
                      "message": "the order fits within the available credit"}],
         "amount": "4800.00", "currency": "EUR", "converted_amount": "4800.00",
         "fx_rate": None,
         "exposure": {"open_receivables": "31250.00", "open_orders": "5000.00",
                      "total": "36250.00"},
         "effective_limit": "50000.00", "available": "8950.00",
         "decided_at": "2026-12-01T09:30:00Z", "expires_at": "2026-12-31T09:30:00Z",
         "dry_run": False, "note": None, "actor": "webshop-prod"},
        {"decision_id": "01JDQ3W1A2B3C4D5E6F7G8H9J0", "kind": "credit_check",
         "order_id": "SO-100232", "customer_id": "ACME-001", "outcome": "hold",
         "reasons": [{"code": "OVER_LIMIT",
                      "message": "exposure 41050.00 EUR + order 16000.00 EUR = 57050.00 EUR "
                                 "exceeds the effective limit 50000.00 EUR by 7050.00 EUR"}],
         "amount": "16000.00", "currency": "EUR", "converted_amount": "16000.00",
         "fx_rate": None,
         "exposure": {"open_receivables": "31250.00", "open_orders": "9800.00",
                      "total": "41050.00"},
         "effective_limit": "50000.00", "available": "8950.00",
         "decided_at": "2026-12-01T09:31:00Z", "expires_at": None,
         "dry_run": False, "note": None, "actor": "webshop-prod"},
    ]}}


def render_decision(entry: Any, *, dry_run: bool = False) -> DecisionOut:
    """The decision body from its credit-file row (fresh and replayed alike)."""
    recv: Decimal = entry["open_receivables"]
    orders: Decimal = entry["open_orders"]
    converted = entry["converted_amount"]
    group = (entry["details"] or {}).get("group")
    return DecisionOut(
        decision_id=entry["entry_id"],
        kind=entry["event"],
        order_id=entry["order_id"],
        customer_id=entry["customer_id"],
        outcome=entry["outcome"],
        reasons=[ReasonOut(**r) for r in entry["reasons"]],
        amount=entry["amount"],
        currency=entry["currency"],
        converted_amount=entry["amount"] if converted is None else converted,
        fx_rate=entry["fx_rate"],
        exposure=DecisionExposureOut(open_receivables=recv, open_orders=orders,
                                     total=recv + orders),
        effective_limit=entry["effective_limit"],
        available=entry["available"],
        decided_at=entry["at"],
        expires_at=entry["expires_at"],
        dry_run=dry_run,
        note=entry["note"],
        actor=entry["actor"],
        payment_index=entry["payment_index"],
        group=None if group is None else _group_out(group),
    )


def _group_out(doc: dict[str, Any]) -> DecisionGroupOut:
    exposure = Decimal(doc["open_receivables"]) + Decimal(doc["open_orders"])
    return DecisionGroupOut(group_id=doc["group_id"], exposure=exposure,
                            effective_limit=Decimal(doc["effective_limit"]),
                            available=Decimal(doc["available"]))
