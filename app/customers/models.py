"""The credit account as the rest of the code sees it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from app.credit.policy import AccountTerms, Exposure, TemporaryLimit


@dataclass(frozen=True)
class Account:
    customer_id: str
    name: str
    currency: str
    credit_limit: Decimal
    risk_class: str
    payment_terms_days: int
    blocked: bool
    block_reason: str | None
    temp_limit_amount: Decimal | None
    temp_limit_expires_on: dt.date | None
    review_due_on: dt.date | None
    max_order_amount: Decimal | None
    payment_index: int | None
    open_receivables: Decimal
    open_orders: Decimal
    held_amount: Decimal
    held_count: int
    terms_version: int
    ledger_version: int
    created_at: dt.datetime
    updated_at: dt.datetime
    group_id: str | None = None  # the credit group whose limit it shares

    @classmethod
    def from_mapping(cls, row: Any) -> Account:
        return cls(**{name: row[name] for name in cls.__dataclass_fields__})

    @property
    def temporary_limit(self) -> TemporaryLimit | None:
        if self.temp_limit_amount is None or self.temp_limit_expires_on is None:
            return None
        return TemporaryLimit(self.temp_limit_amount, self.temp_limit_expires_on)

    @property
    def terms(self) -> AccountTerms:
        return AccountTerms(
            currency=self.currency,
            credit_limit=self.credit_limit,
            risk_class=self.risk_class,
            blocked=self.blocked,
            block_reason=self.block_reason,
            temporary_limit=self.temporary_limit,
            max_order_amount=self.max_order_amount,
            review_due_on=self.review_due_on,
        )

    @property
    def exposure(self) -> Exposure:
        return Exposure(self.open_receivables, self.open_orders)

    def effective_limit(self, today: dt.date) -> Decimal:
        return self.terms.effective_limit(today)
