"""Request and response bodies of the order endpoints."""

from __future__ import annotations

import datetime as dt

from pydantic import Field

from app.credit.schemas import DecisionOut
from app.fields import AmountOut, PositiveAmount, RateOut, RequestModel, ResponseModel, Text


class AmendIn(RequestModel):
    amount: PositiveAmount = Field(description="The order's new total amount.")

    model_config = {"json_schema_extra": {"examples": [{"amount": "5200.00"}]}}


class ReasonIn(RequestModel):
    reason: Text = Field(description="Why; kept in the credit file.")

    model_config = {"json_schema_extra": {"examples": [{"reason": "CFO approved, see #4711"}]}}


class CancelIn(RequestModel):
    reason: Text | None = None

    model_config = {"json_schema_extra": {"examples": [{"reason": "customer withdrew the order"}]}}


class OrderOut(ResponseModel):
    order_id: str
    customer_id: str
    status: str = Field(examples=["approved"], description="approved, held, prepay, shipped, "
                        "invoiced, cancelled, rejected or expired")
    amount: AmountOut
    currency: str
    converted_amount: AmountOut = Field(description="The amount in the account's currency.")
    fx_rate: RateOut | None = Field(
        default=None, description="The rate it was converted at; null when the order is in "
                                  "the account's currency.")
    channel: str | None
    reserved: AmountOut = Field(description="In the account's currency, like invoiced.")
    invoiced: AmountOut
    released: bool = Field(description="Approved by a controller's release.")
    expires_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime
    decisions: list[DecisionOut]


class AmendOut(ResponseModel):
    order: OrderOut
    decision: DecisionOut | None = Field(
        description="The evaluation of an increase; null for a decrease or no change.")


class HoldsPage(ResponseModel):
    items: list[OrderOut]
    next_cursor: str | None
