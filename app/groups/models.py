"""The credit group as the rest of the code sees it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from app.credit.policy import Exposure


@dataclass(frozen=True)
class Group:
    group_id: str
    name: str
    currency: str
    credit_limit: Decimal
    blocked: bool
    block_reason: str | None
    open_receivables: Decimal
    open_orders: Decimal
    member_count: int
    version: int
    created_at: dt.datetime
    updated_at: dt.datetime

    @classmethod
    def from_mapping(cls, row: Any) -> Group:
        return cls(**{name: row[name] for name in cls.__dataclass_fields__})

    @property
    def exposure(self) -> Exposure:
        return Exposure(self.open_receivables, self.open_orders)

    @property
    def effective_limit(self) -> Decimal:
        """Groups have no temporary limits or securities (DESIGN.md 2.9)."""
        return self.credit_limit


@dataclass(frozen=True)
class Member:
    customer_id: str
    open_receivables: Decimal
    open_orders: Decimal

    @property
    def exposure(self) -> Exposure:
        return Exposure(self.open_receivables, self.open_orders)
