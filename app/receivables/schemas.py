"""Request and response bodies of invoices, payments and open-item snapshots."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated

from pydantic import Field, PlainSerializer, WithJsonSchema, field_validator

from app.fields import (
    AmountOut,
    Currency,
    Id,
    IsoDate,
    PositiveAmount,
    RateOut,
    RequestModel,
    ResponseModel,
    SignedAmount,
)

MAX_SNAPSHOT_ITEMS = 100_000


class InvoiceIn(RequestModel):
    invoice_id: Id
    customer_id: Id
    amount: PositiveAmount
    currency: Currency
    due_on: IsoDate
    issued_on: IsoDate | None = None
    order_id: Id | None = Field(default=None, description="Consumes this order's reservation.")

    model_config = {"json_schema_extra": {"examples": [{
        "invoice_id": "INV-2026-0042", "customer_id": "ACME-001", "amount": "4800.00",
        "currency": "EUR", "due_on": "2026-12-23", "issued_on": "2026-11-23",
        "order_id": "SO-100231"}]}}


class InvoiceOut(ResponseModel):
    invoice_id: str
    customer_id: str
    amount: AmountOut
    currency: str
    converted_amount: AmountOut = Field(
        description="The amount in the account's currency (the amount itself when it is in it).")
    fx_rate: RateOut | None = Field(
        description="What 1 unit of `currency` counted for in the account's currency; null "
                    "when it is the account's.")
    due_on: dt.date
    issued_on: dt.date | None
    order_id: str | None
    reservation_consumed: AmountOut = Field(
        description="How much of the order's reservation this invoice took over (in the "
                    "account's currency).")
    order_status: str | None
    recorded_at: dt.datetime


class PaymentIn(RequestModel):
    payment_id: Id
    customer_id: Id
    amount: PositiveAmount
    currency: Currency
    invoice_id: Id | None = Field(
        default=None, description="Without it the payment settles the oldest due items first.")
    received_on: IsoDate | None = None

    model_config = {"json_schema_extra": {"examples": [{
        "payment_id": "PAY-88120", "customer_id": "ACME-001", "amount": "12000.00",
        "currency": "EUR"}]}}


class AllocationOut(ResponseModel):
    invoice_id: str
    amount: AmountOut


class PaymentOut(ResponseModel):
    payment_id: str
    customer_id: str
    amount: AmountOut
    currency: str
    converted_amount: AmountOut = Field(
        description="The amount in the account's currency (the amount itself when it is in it).")
    fx_rate: RateOut | None = Field(
        description="What 1 unit of `currency` counted for in the account's currency; null "
                    "when it is the account's.")
    invoice_id: str | None
    received_on: dt.date
    applied: list[AllocationOut] = Field(description="In the account's currency.")
    unapplied: AmountOut = Field(description="Overpayment kept as credit; it lowers exposure "
                                             "(in the account's currency).")
    recorded_at: dt.datetime


class OpenItemIn(RequestModel):
    invoice_id: Id
    amount: SignedAmount = Field(description="Open amount; negative for a credit item.")
    currency: Currency
    due_on: IsoDate


class OpenItemsIn(RequestModel):
    items: list[OpenItemIn] = Field(max_length=MAX_SNAPSHOT_ITEMS)

    @field_validator("items")
    @classmethod
    def _unique_ids(cls, items: list[OpenItemIn]) -> list[OpenItemIn]:
        seen: set[str] = set()
        for item in items:
            if item.invoice_id in seen:
                raise ValueError(f"invoice_id {item.invoice_id} appears twice")
            seen.add(item.invoice_id)
        return items

    model_config = {"json_schema_extra": {"examples": [{"items": [
        {"invoice_id": "INV-2026-0042", "amount": "4800.00", "currency": "EUR",
         "due_on": "2026-12-23"},
        {"invoice_id": "CN-2026-0007", "amount": "-250.00", "currency": "EUR",
         "due_on": "2026-11-30"}]}]}}


class ConvertedItemOut(ResponseModel):
    invoice_id: str
    amount: AmountOut
    currency: str
    converted_amount: AmountOut
    fx_rate: RateOut


class SnapshotOut(ResponseModel):
    customer_id: str
    open_receivables_before: AmountOut
    open_receivables_after: AmountOut
    added: list[str]
    changed: list[str]
    removed: list[str]
    unchanged: int
    unapplied_credit_cleared: AmountOut = Field(
        description="Unapplied payment credit replaced by the snapshot's own credit items.")
    converted: list[ConvertedItemOut] = Field(
        default_factory=list, description="The items not in the account's currency, as they "
                                          "count in it.")


def _fixed(places: int) -> PlainSerializer:
    quantum = Decimal(1).scaleb(-places)
    return PlainSerializer(lambda d: str(d.quantize(quantum)), return_type=str)


DaysOut = Annotated[Decimal, _fixed(2), WithJsonSchema({"type": "string", "examples": ["12.50"]})]
ShareOut = Annotated[Decimal, _fixed(4),
                     WithJsonSchema({"type": "string", "examples": ["0.8125"]})]


class PaymentBehaviourOut(ResponseModel):
    """DESIGN 2.2, as of today: applications of the last 365 days by received_on, open
    items as they are now, invoiced sales by invoice date."""

    payment_index: int | None = Field(description="1-100 from days_beyond_terms; null with "
                                                  "nothing to weigh.")
    days_beyond_terms: DaysOut | None = Field(
        description="Amount-weighted days past due of applications and open overdue items; "
                    "negative = early.")
    average_days_to_pay: DaysOut | None
    paid_on_time_share: ShareOut | None
    max_days_late: DaysOut
    amount_paid_365d: AmountOut
    dso_days: DaysOut | None
    best_possible_dso_days: DaysOut | None
    average_days_delinquent: DaysOut | None
    invoiced_90d: AmountOut
    invoiced_365d: AmountOut
    highest_monthly_invoiced: AmountOut = Field(
        description="The largest calendar month of invoiced sales within the 365 days.")
