"""Request and response bodies of securities."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, ValidationInfo, field_validator

from app.fields import (
    NO_NUL,
    AmountOut,
    Currency,
    IsoDate,
    PositiveAmount,
    RateOut,
    RequestModel,
    ResponseModel,
    Text,
)

Kind = Literal["credit_insurance", "bank_guarantee", "letter_of_credit", "collateral"]
Provider = Annotated[str, StringConstraints(min_length=1, max_length=200, strict=True,
                                            pattern=NO_NUL)]


class SecurityIn(RequestModel):
    """A whole security (PUT creates or replaces it)."""

    kind: Kind
    amount: PositiveAmount
    currency: Currency = Field(description="Another currency than the account's counts at "
                                           "each day's latest rate into it.")
    valid_from: IsoDate = Field(description="First day (UTC) on which it counts.")
    valid_until: IsoDate = Field(description="Last day (UTC) on which it counts.")
    provider: Provider | None = Field(default=None, description="The insurer, bank, ...")
    reference: Text | None = Field(default=None, description="Policy or guarantee number.")
    reason: Text | None = Field(default=None, description="Why; kept in the credit file.")

    @field_validator("valid_until")
    @classmethod
    def _not_before_start(cls, value: dt.date, info: ValidationInfo) -> dt.date:
        start = info.data.get("valid_from")
        if start is not None and value < start:
            raise ValueError("must not be before valid_from")
        return value

    model_config = {"json_schema_extra": {"examples": [{
        "kind": "credit_insurance", "amount": "25000.00", "currency": "EUR",
        "valid_from": "2026-01-01", "valid_until": "2026-12-31", "provider": "Allianz Trade",
        "reference": "POL-778812"}]}}


class SecurityOut(ResponseModel):
    customer_id: str
    security_id: str
    kind: str
    amount: AmountOut
    currency: str
    valid_from: dt.date
    valid_until: dt.date
    provider: str | None
    reference: str | None
    converted_amount: AmountOut | None = Field(
        description="What it counts for in the account's currency at today's rate (the "
                    "amount itself in the same currency); null when no rate is known yet.")
    fx_rate: RateOut | None = Field(
        description="Today's rate into the account's currency; null in the same currency.")
    valid_today: bool = Field(description="valid_from <= today <= valid_until: it adds to "
                                          "today's effective limit.")
    created_at: dt.datetime
    updated_at: dt.datetime
