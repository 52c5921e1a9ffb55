"""Decisions as credit-file entries: one row shape for every kind of decision."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from app.credit.policy import Decision, Exposure
from app.money import ZERO


class Event:
    """The `event` of a credit-file entry."""

    CREDIT_CHECK = "credit_check"
    DISPATCH_CHECK = "dispatch_check"
    AMENDMENT = "amendment"
    MANUAL_RELEASE = "manual_release"
    AUTO_RELEASE = "auto_release"
    ACCOUNT_CREATED = "account_created"
    ACCOUNT_CHANGED = "account_changed"
    INVOICE_POSTED = "invoice_posted"
    PAYMENT_RECEIVED = "payment_received"
    OPEN_ITEMS_REPLACED = "open_items_replaced"
    ORDER_CANCELLED = "order_cancelled"
    ORDER_REJECTED = "order_rejected"
    ORDER_EXPIRED = "order_expired"
    AMOUNT_DECREASED = "amount_decreased"
    ALERT_RAISED = "alert_raised"
    ALERT_ACKNOWLEDGED = "alert_acknowledged"
    ALERT_RESOLVED = "alert_resolved"


DECISION_EVENTS = frozenset({Event.CREDIT_CHECK, Event.DISPATCH_CHECK, Event.AMENDMENT,
                             Event.MANUAL_RELEASE, Event.AUTO_RELEASE})


def decision_entry(
    *,
    entry_id: str,
    at: dt.datetime,
    event: str,
    actor: str,
    customer_id: str,
    order_id: str,
    decision: Decision,
    amount: Decimal,
    currency: str,
    exposure: Exposure,
    reserved: Decimal,
    expires_at: dt.datetime | None = None,
    note: str | None = None,
    payment_index: int | None = None,
    inputs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The credit-file row of a decision; `reserved` is what it adds to open orders."""
    limit = decision.effective_limit if decision.effective_limit is not None else ZERO
    return {
        "customer_id": customer_id,
        "entry_id": entry_id,
        "at": at,
        "event": event,
        "actor": actor,
        "order_id": order_id,
        "outcome": decision.outcome.value,
        "reasons": [{"code": r.code.value, "message": r.message} for r in decision.reasons],
        "amount": amount,
        "currency": currency,
        "open_receivables": exposure.open_receivables,
        "open_orders": exposure.open_orders,
        "effective_limit": limit,
        "available": exposure.available(limit, reserved),
        "expires_at": expires_at,
        "details": None,
        "note": note,
        "payment_index": payment_index,
        "inputs": inputs,
    }


def event_entry(*, entry_id: str, at: dt.datetime, event: str, actor: str, customer_id: str,
                order_id: str | None = None, details: dict[str, Any] | None = None,
                note: str | None = None) -> dict[str, Any]:
    """The credit-file row of anything that is not a decision."""
    return {
        "customer_id": customer_id, "entry_id": entry_id, "at": at, "event": event,
        "actor": actor, "order_id": order_id, "outcome": None, "reasons": None, "amount": None,
        "currency": None, "open_receivables": None, "open_orders": None,
        "effective_limit": None, "available": None, "expires_at": None,
        "details": details, "note": note, "payment_index": None, "inputs": None,
    }
