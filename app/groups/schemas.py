"""Request and response bodies of credit groups and their exposure."""

from __future__ import annotations

import datetime as dt

from pydantic import Field, StrictBool

from app.customers.schemas import Name
from app.fields import AmountOut, Currency, NonNegativeAmount, RequestModel, ResponseModel, Text


class GroupIn(RequestModel):
    """A whole credit group (PUT creates or replaces it; its exposure is kept)."""

    name: Name
    currency: Currency = Field(description="Every member's currency.")
    credit_limit: NonNegativeAmount = Field(description="What the members may owe together.")
    blocked: StrictBool = False
    block_reason: Text | None = None
    reason: Text | None = Field(default=None,
                                description="Why; kept in every member's credit file.")

    model_config = {"json_schema_extra": {"examples": [{
        "name": "Acme Holding", "currency": "EUR", "credit_limit": "120000.00"}]}}


class GroupOut(ResponseModel):
    group_id: str
    name: str
    currency: str
    credit_limit: AmountOut
    effective_limit: AmountOut = Field(description="The credit limit: groups have no "
                                                   "temporary limits or securities.")
    blocked: bool
    block_reason: str | None
    member_count: int
    created_at: dt.datetime
    updated_at: dt.datetime


class MemberExposureOut(ResponseModel):
    customer_id: str
    open_receivables: AmountOut
    open_orders: AmountOut
    exposure: AmountOut


class GroupExposureOut(ResponseModel):
    group_id: str
    currency: str
    credit_limit: AmountOut
    effective_limit: AmountOut
    open_receivables: AmountOut
    open_orders: AmountOut
    exposure: AmountOut = Field(description="The sum of the members' exposure.")
    available: AmountOut
    members: list[MemberExposureOut] = Field(description="Every member, by customer_id.")

    model_config = {"json_schema_extra": {"examples": [{
        "group_id": "ACME-GROUP", "currency": "EUR", "credit_limit": "120000.00",
        "effective_limit": "120000.00", "open_receivables": "61250.00",
        "open_orders": "9000.00", "exposure": "70250.00", "available": "49750.00",
        "members": [
            {"customer_id": "ACME-001", "open_receivables": "31250.00",
             "open_orders": "5000.00", "exposure": "36250.00"},
            {"customer_id": "ACME-002", "open_receivables": "30000.00",
             "open_orders": "4000.00", "exposure": "34000.00"}]}]}}
