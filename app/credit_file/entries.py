"""Decisions as credit-file entries: one row shape for every kind of decision."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from app.credit.policy import Decision, Exposure, GroupTerms
from app.money import ZERO, format_amount


class Event:
    """The `event` of a credit-file entry."""

    CREDIT_CHECK = "credit_check"
    DISPATCH_CHECK = "dispatch_check"
    AMENDMENT = "amendment"
    MANUAL_RELEASE = "manual_release"
    AUTO_RELEASE = "auto_release"
    ACCOUNT_CREATED = "account_created"
    ACCOUNT_CHANGED = "account_changed"
    GROUP_CHANGED = "group_changed"  # in every member's file
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
    SECURITY_ADDED = "security_added"
    SECURITY_CHANGED = "security_changed"
    SECURITY_REMOVED = "security_removed"


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
    converted_amount: Decimal | None = None,
    fx_rate: Decimal | None = None,
    group: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The credit-file row of a decision; `reserved` is what it adds to open orders (in the
    account's currency, like `converted_amount`, which defaults to `amount`); `group` is
    the member's group figures as the decision saw them (decision_group)."""
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
        "converted_amount": amount if converted_amount is None else converted_amount,
        "fx_rate": fx_rate,
        "open_receivables": exposure.open_receivables,
        "open_orders": exposure.open_orders,
        "effective_limit": limit,
        "available": exposure.available(limit, reserved),
        "expires_at": expires_at,
        "details": None if group is None else {"group": group},
        "note": note,
        "payment_index": payment_index,
        "inputs": inputs,
    }


def decision_group(group: GroupTerms | None, reserved: Decimal) -> dict[str, Any] | None:
    """A member's group figures in its decision: exposure before the order, the group's
    limit, and what is available once the order's reservation counts."""
    if group is None:
        return None
    exposure = group.exposure
    return {"group_id": group.group_id, "open_receivables": str(exposure.open_receivables),
            "open_orders": str(exposure.open_orders),
            "effective_limit": str(group.credit_limit),
            "available": str(exposure.available(group.credit_limit, reserved))}


def event_entry(*, entry_id: str, at: dt.datetime, event: str, actor: str, customer_id: str,
                order_id: str | None = None, details: dict[str, Any] | None = None,
                note: str | None = None, amount: Decimal | None = None,
                currency: str | None = None, converted_amount: Decimal | None = None,
                fx_rate: Decimal | None = None) -> dict[str, Any]:
    """The credit-file row of anything that is not a decision; a ledger document's `amount`
    and `currency` are as sent, `converted_amount` is it in the account's currency and
    `fx_rate` what it was converted at (None: the same currency)."""
    return {
        "customer_id": customer_id, "entry_id": entry_id, "at": at, "event": event,
        "actor": actor, "order_id": order_id, "outcome": None, "reasons": None,
        "amount": amount, "currency": currency, "converted_amount": converted_amount,
        "fx_rate": fx_rate,
        "open_receivables": None, "open_orders": None,
        "effective_limit": None, "available": None, "expires_at": None,
        "details": details, "note": note, "payment_index": None, "inputs": None,
    }


def recorded(value: Any) -> Any:
    """A changed value as the credit file records it (old -> new): amounts as exact decimal
    text, dates in ISO form, the rest as it is."""
    if isinstance(value, Decimal):
        return format_amount(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return value
