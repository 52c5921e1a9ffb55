"""Request and response bodies of the per-class decision parameters."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from pydantic import Field, StrictBool, model_validator

from app.fields import (
    AmountOut,
    Days,
    IsoDate,
    NonNegativeAmount,
    PaymentIndex,
    Ratio,
    RatioOut,
    RequestModel,
    ResponseModel,
    Text,
)


class PolicyIn(RequestModel):
    prepay_required: StrictBool = Field(description="Every order of this class must prepay.")
    hold_band: Ratio = Field(description="Tolerance above the limit that still holds "
                                         "instead of prepay, as a fraction.")
    max_days_past_due: Days
    prepay_days_past_due: Days
    overdue_tolerance: NonNegativeAmount
    min_payment_index: PaymentIndex | None = Field(
        default=None, description="Hold orders of customers whose payment index is lower "
                                  "(SLOW_PAYER); null: off.")
    review_grace_days: Days | None = Field(
        default=None, description="Hold orders once the review is this many days overdue "
                                  "(REVIEW_OVERDUE); null: off.")
    alert_utilisation: Ratio = Field(
        default=Decimal("0.90"), description="UTILISATION_HIGH at this share of the limit.")
    alert_payment_index: PaymentIndex = Field(
        default=50, description="PAYMENT_INDEX_LOW below this payment index.")
    reason: Text | None = None

    model_config = {"json_schema_extra": {"examples": [{
        "prepay_required": False, "hold_band": "0.20", "max_days_past_due": 30,
        "prepay_days_past_due": 90, "overdue_tolerance": "0.00",
        "reason": "credit committee 2026-11"}]}}


class PolicyOut(ResponseModel):
    risk_class: str
    prepay_required: bool
    hold_band: RatioOut
    max_days_past_due: int
    prepay_days_past_due: int
    overdue_tolerance: AmountOut
    min_payment_index: int | None
    review_grace_days: int | None
    alert_utilisation: RatioOut
    alert_payment_index: int
    updated_at: dt.datetime | None
    updated_by: str | None


class PolicyChangeOut(ResponseModel):
    change_id: str
    at: dt.datetime
    actor: str
    old: dict[str, Any] | None
    new: dict[str, Any]
    note: str | None


class SimulateIn(RequestModel):
    """A proposed policy (a whole PUT body) and the window of days to re-decide."""

    policy: PolicyIn
    from_: IsoDate = Field(alias="from", description="First day (UTC), inclusive.")
    to: IsoDate = Field(description="Last day (UTC), inclusive.")

    model_config = {"populate_by_name": True, "json_schema_extra": {"examples": [{
        "policy": {"prepay_required": False, "hold_band": "0.10", "max_days_past_due": 30,
                   "prepay_days_past_due": 90, "overdue_tolerance": "0.00"},
        "from": "2026-11-01", "to": "2026-11-30"}]}}

    @model_validator(mode="after")
    def _window(self) -> SimulateIn:
        if self.to < self.from_:
            raise ValueError("`to` must not be before `from`")
        if (self.to - self.from_).days > MAX_SIMULATION_DAYS:
            raise ValueError(f"the window may span at most {MAX_SIMULATION_DAYS + 1} days")
        return self


MAX_SIMULATION_DAYS = 365


class TallyOut(ResponseModel):
    approve: int
    hold: int
    prepay: int
    amount_approved: AmountOut


class ChangedOut(ResponseModel):
    decision_id: str
    order_id: str
    customer_id: str
    amount: AmountOut
    was: str
    now: str
    reasons: list[dict[str, str]]


class SimulationOut(ResponseModel):
    decisions: int = Field(description="Entry credit checks of the class in the window.")
    current: TallyOut = Field(description="What was decided.")
    proposed: TallyOut = Field(description="What the proposed parameters would decide.")
    changed: list[ChangedOut] = Field(description="Decisions whose outcome differs (at most "
                                                  "100).")
    changed_count: int
