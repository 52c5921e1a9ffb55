"""Response bodies of the credit file."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import Field

from app.credit.schemas import DecisionOut
from app.fields import AmountOut, RateOut, ResponseModel


class HistoryEntryOut(ResponseModel):
    entry_id: str
    at: dt.datetime
    event: str
    actor: str
    order_id: str | None
    decision: DecisionOut | None
    amount: AmountOut | None = Field(
        default=None, description="A decision's or ledger document's amount, as sent.")
    currency: str | None = None
    converted_amount: AmountOut | None = Field(
        default=None, description="`amount` in the account's currency.")
    fx_rate: RateOut | None = Field(
        default=None, description="What 1 unit of `currency` counted for in the account's "
                                  "currency; null when it is the account's.")
    details: dict[str, Any] | None
    note: str | None


class HistoryPage(ResponseModel):
    items: list[HistoryEntryOut]
    next_cursor: str | None
