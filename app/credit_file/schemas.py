"""Response bodies of the credit file."""

from __future__ import annotations

import datetime as dt
from typing import Any

from app.credit.schemas import DecisionOut
from app.fields import ResponseModel


class HistoryEntryOut(ResponseModel):
    entry_id: str
    at: dt.datetime
    event: str
    actor: str
    order_id: str | None
    decision: DecisionOut | None
    details: dict[str, Any] | None
    note: str | None


class HistoryPage(ResponseModel):
    items: list[HistoryEntryOut]
    next_cursor: str | None
