"""An order and its reservation."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    APPROVED = "approved"
    HELD = "held"
    PREPAY = "prepay"
    SHIPPED = "shipped"
    INVOICED = "invoiced"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    EXPIRED = "expired"


# Orders in these states hold a reservation that counts in exposure.
RESERVING = frozenset({Status.APPROVED, Status.SHIPPED})


@dataclass(frozen=True)
class Order:
    customer_id: str
    order_id: str
    status: Status
    amount: Decimal
    requested_amount: Decimal
    currency: str
    converted_amount: Decimal  # amount in the account's currency
    fx_rate: Decimal | None  # what amount was converted at (None: the account's currency)
    channel: str | None
    reserved: Decimal
    invoiced: Decimal
    released: bool
    entry_decision_id: str
    dispatch_decision_id: str | None
    expires_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime

    @classmethod
    def from_mapping(cls, row: Any) -> Order:
        values = {name: row[name] for name in cls.__dataclass_fields__}
        values["status"] = Status(values["status"])
        return cls(**values)
