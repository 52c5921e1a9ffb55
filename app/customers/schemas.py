"""Request and response bodies of credit accounts, exposure and the credit file."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    StrictBool,
    StringConstraints,
    field_validator,
)

from app.fields import (
    NO_NUL,
    AmountOut,
    Currency,
    Days,
    Id,
    IsoDate,
    NonNegativeAmount,
    PositiveAmount,
    RequestModel,
    ResponseModel,
    Text,
)

RiskClass = Literal["AAA", "AA", "A", "BBB", "BB", "B", "CCC", "unrated"]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200, strict=True,
                                        pattern=NO_NUL)]


GROUP_ID = ("The credit group whose limit it shares (PUT /v1/groups/{group_id}); the "
            "group must exist and be in the account's currency.")


class TemporaryLimitIn(RequestModel):
    amount: PositiveAmount
    expires_on: IsoDate = Field(description="Last day (UTC) on which it counts.")


class AccountIn(RequestModel):
    """A whole credit account (PUT creates or replaces it)."""

    name: Name
    currency: Currency
    credit_limit: NonNegativeAmount
    risk_class: RiskClass = "unrated"
    payment_terms_days: Days = 30
    blocked: StrictBool = False
    block_reason: Text | None = None
    temporary_limit: TemporaryLimitIn | None = None
    review_due_on: IsoDate | None = Field(
        default=None, description="When the account's credit review is due.")
    max_order_amount: PositiveAmount | None = Field(
        default=None, description="Larger orders are held (ORDER_ABOVE_MAXIMUM).")
    group_id: Id | None = Field(default=None, description=GROUP_ID)
    reason: Text | None = Field(default=None, description="Why; kept in the credit file.")

    model_config = {"json_schema_extra": {"examples": [{
        "name": "Acme Tools GmbH", "currency": "EUR", "credit_limit": "50000.00",
        "risk_class": "A", "payment_terms_days": 30}]}}


NOT_NULL = ("name", "currency", "credit_limit", "risk_class", "payment_terms_days", "blocked")


def _no_null(schema: dict[str, Any], names: tuple[str, ...]) -> None:
    """Publish these optional fields as non-nullable: leaving one out is fine, null is not."""
    for name in names:
        prop = schema["properties"][name]
        kept = [s for s in prop.pop("anyOf", []) if s != {"type": "null"}]
        if len(kept) == 1:
            prop.update(kept[0])
        elif kept:
            prop["anyOf"] = kept
        prop.pop("default", None)


class AccountPatch(RequestModel):
    """Some fields of an account; `temporary_limit: null` removes the temporary limit."""

    name: Name | None = None
    currency: Currency | None = None
    credit_limit: NonNegativeAmount | None = None
    risk_class: RiskClass | None = None
    payment_terms_days: Days | None = None
    blocked: StrictBool | None = None
    block_reason: Text | None = None
    temporary_limit: TemporaryLimitIn | None = None
    review_due_on: IsoDate | None = None
    max_order_amount: PositiveAmount | None = None
    group_id: Id | None = Field(default=None, description=GROUP_ID + " null leaves it.")
    reason: Text | None = Field(default=None, description="Why; kept in the credit file.")

    @field_validator(*NOT_NULL, mode="before")
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("may be left out, but not set to null")
        return value

    model_config = {"json_schema_extra": lambda schema: _patch_schema(schema)}


PATCH_EXAMPLES = [
    {"credit_limit": "75000.00", "reason": "annual review"},
    {"blocked": True, "block_reason": "insolvency filing"},
    {"temporary_limit": {"amount": "10000.00", "expires_on": "2026-12-31"}},
]


def _patch_schema(schema: dict[str, Any]) -> None:
    _no_null(schema, NOT_NULL)
    schema["examples"] = PATCH_EXAMPLES


class TemporaryLimitOut(ResponseModel):
    amount: AmountOut
    expires_on: dt.date
    active: bool


class AccountOut(ResponseModel):
    customer_id: str
    name: str
    currency: str
    credit_limit: AmountOut
    effective_limit: AmountOut
    risk_class: str
    payment_terms_days: int
    blocked: bool
    block_reason: str | None
    temporary_limit: TemporaryLimitOut | None
    review_due_on: dt.date | None
    max_order_amount: AmountOut | None
    group_id: str | None = Field(description="The credit group it belongs to, if any.")
    created_at: dt.datetime
    updated_at: dt.datetime


class ExposureOut(ResponseModel):
    customer_id: str
    currency: str
    credit_limit: AmountOut
    effective_limit: AmountOut
    secured: AmountOut = Field(description="What the securities valid today add to the "
                                           "effective limit (in the account's currency).")
    open_receivables: AmountOut
    open_orders: AmountOut
    exposure: AmountOut
    available: AmountOut
    overdue_amount: AmountOut
    oldest_overdue_days: int | None
    held_orders: AmountOut = Field(description="Total amount of held orders (not in exposure).")
    held_count: int
    payment_index: int | None = Field(description="1-100 from our own ledger (DESIGN.md "
                                                  "2.2); null without payment history.")

    model_config = {"json_schema_extra": {"examples": [{
        "customer_id": "ACME-001", "currency": "EUR", "credit_limit": "50000.00",
        "effective_limit": "50000.00", "secured": "0.00", "open_receivables": "31250.00",
        "open_orders": "5000.00", "exposure": "36250.00", "available": "13750.00",
        "overdue_amount": "1200.00", "oldest_overdue_days": 12, "held_orders": "16000.00",
        "held_count": 1, "payment_index": 78}]}}
