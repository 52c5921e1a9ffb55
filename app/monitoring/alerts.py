"""Which early-warning conditions hold, as pure functions of plain facts: no SQL, no I/O.

States (UTILISATION_HIGH, LIMIT_EXCEEDED, OVERDUE, PAYMENT_INDEX_LOW, REVIEW_DUE,
LIMIT_EXPIRING) hold or not from one read of the account. GRADE_DOWNGRADE and ORDER_SPIKE are
raised by events (an applied assessment, a credit check); `event_still_holds` says when an
open one of those resolves.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from enum import StrEnum
from typing import Any

from app.credit.policy import RISK_CLASSES
from app.money import ZERO, format_amount

WARN_DAYS = 14  # REVIEW_DUE and LIMIT_EXPIRING warn this many days ahead (inclusive)
SPIKE_FACTOR = 3  # ORDER_SPIKE: an order above this many times the average ...
SPIKE_MIN_CHECKS = 5  # ... of at least this many previous credit checks ...
SPIKE_WINDOW_DAYS = 90  # ... of the last 90 days.
SPIKE_OPEN_DAYS = 30  # An ORDER_SPIKE resolves itself this many days after it was raised.
GRADES = RISK_CLASSES[:-1]  # AAA (best) ... CCC (worst); `unrated` is not a grade
_RATIO = Decimal("0.0001")


class Kind(StrEnum):
    UTILISATION_HIGH = "UTILISATION_HIGH"
    LIMIT_EXCEEDED = "LIMIT_EXCEEDED"
    OVERDUE = "OVERDUE"
    PAYMENT_INDEX_LOW = "PAYMENT_INDEX_LOW"
    GRADE_DOWNGRADE = "GRADE_DOWNGRADE"
    REVIEW_DUE = "REVIEW_DUE"
    LIMIT_EXPIRING = "LIMIT_EXPIRING"
    ORDER_SPIKE = "ORDER_SPIKE"


EVENT_KINDS = frozenset({Kind.GRADE_DOWNGRADE, Kind.ORDER_SPIKE})
STATE_KINDS = frozenset(Kind) - EVENT_KINDS


@dataclass(frozen=True)
class LimitExpiry:
    """Something that adds to the effective limit until a day: a temporary limit (a security
    of 2.6 is another source)."""

    source: str  # "temporary_limit", or e.g. "security:<security_id>"
    amount: Decimal
    expires_on: dt.date


@dataclass(frozen=True)
class Facts:
    """What the conditions are decided on, as of one read of the account."""

    exposure: Decimal
    effective_limit: Decimal
    alert_utilisation: Decimal
    alert_payment_index: int
    max_days_past_due: int
    oldest_overdue_days: int | None
    overdue_amount: Decimal
    payment_index: int | None
    review_due_on: dt.date | None
    today: dt.date
    risk_class: str = "unrated"
    expiries: Sequence[LimitExpiry] = field(default_factory=tuple)


def _ratio(value: Decimal) -> str:
    return str(value.quantize(_RATIO, rounding=ROUND_HALF_EVEN))


def conditions(f: Facts) -> dict[Kind, dict[str, Any]]:
    """Every state kind that holds now, with the details an alert of it records."""
    held: dict[Kind, dict[str, Any]] = {}
    limits = {"exposure": format_amount(f.exposure),
              "effective_limit": format_amount(f.effective_limit)}
    if f.effective_limit > ZERO and f.exposure >= f.alert_utilisation * f.effective_limit:
        held[Kind.UTILISATION_HIGH] = {
            **limits, "utilisation": _ratio(f.exposure / f.effective_limit),
            "alert_utilisation": _ratio(f.alert_utilisation)}
    if f.exposure > f.effective_limit:
        held[Kind.LIMIT_EXCEEDED] = {
            **limits, "excess": format_amount(f.exposure - f.effective_limit)}
    if f.oldest_overdue_days is not None and f.oldest_overdue_days > f.max_days_past_due:
        held[Kind.OVERDUE] = {
            "oldest_overdue_days": f.oldest_overdue_days,
            "overdue_amount": format_amount(f.overdue_amount),
            "max_days_past_due": f.max_days_past_due}
    if f.payment_index is not None and f.payment_index < f.alert_payment_index:
        held[Kind.PAYMENT_INDEX_LOW] = {"payment_index": f.payment_index,
                                        "alert_payment_index": f.alert_payment_index}
    if f.review_due_on is not None:
        days_left = (f.review_due_on - f.today).days
        if days_left <= WARN_DAYS:
            held[Kind.REVIEW_DUE] = {"review_due_on": f.review_due_on.isoformat(),
                                     "days_left": days_left}
    expiring = sorted((e for e in f.expiries
                       if 0 <= (e.expires_on - f.today).days <= WARN_DAYS),
                      key=lambda e: (e.expires_on, e.source))
    if expiring:
        held[Kind.LIMIT_EXPIRING] = {
            "expires_on": expiring[0].expires_on.isoformat(),
            "days_left": (expiring[0].expires_on - f.today).days,
            "expiring": [{"source": e.source, "amount": format_amount(e.amount),
                          "expires_on": e.expires_on.isoformat()} for e in expiring]}
    return held


def grade_downgrade(replaced_class: str, new_class: str) -> dict[str, Any] | None:
    """The details of a GRADE_DOWNGRADE when an applied assessment's class is worse than the
    class it replaced; None otherwise (also when the replaced class was not a grade)."""
    if replaced_class not in GRADES or new_class not in GRADES:
        return None
    if GRADES.index(new_class) <= GRADES.index(replaced_class):
        return None
    return {"from_class": replaced_class, "to_class": new_class}


def order_spike(amount: Decimal, previous_count: int, previous_sum: Decimal
                ) -> dict[str, Any] | None:
    """The details of an ORDER_SPIKE when `amount` is above 3 x the average of the previous
    credit checks (at least 5 of them, of the last 90 days); None otherwise."""
    if previous_count < SPIKE_MIN_CHECKS or previous_sum <= ZERO:
        return None
    if amount * previous_count <= SPIKE_FACTOR * previous_sum:  # exact: no division
        return None
    average = previous_sum / previous_count
    return {"amount": format_amount(amount),
            "average": format_amount(average.quantize(_RATIO, rounding=ROUND_HALF_EVEN)),
            "previous_checks": previous_count, "factor": _ratio(amount / average),
            "window_days": SPIKE_WINDOW_DAYS}


def event_still_holds(kind: str, details: Mapping[str, Any], raised_at: dt.datetime,
                      risk_class: str, now: dt.datetime) -> bool:
    """Whether an open event alert still stands.

    GRADE_DOWNGRADE stands while the account's class is worse than the class the downgrade
    replaced (a later assessment, or a controller, restoring that grade or better resolves
    it). ORDER_SPIKE stands for 30 days after it was raised.
    """
    if kind == Kind.ORDER_SPIKE:
        return now - raised_at < dt.timedelta(days=SPIKE_OPEN_DAYS)
    if kind == Kind.GRADE_DOWNGRADE:
        replaced = details.get("from_class")
        if replaced not in GRADES:
            return True  # nothing to compare with: it stays until its class is known
        return risk_class in GRADES and GRADES.index(risk_class) > GRADES.index(replaced)
    return True


@dataclass(frozen=True)
class OpenAlert:
    alert_id: str
    kind: str
    raised_at: dt.datetime
    details: Mapping[str, Any]


@dataclass(frozen=True)
class Plan:
    """What an evaluation changes: kinds to raise (with details), alerts to resolve."""

    raise_: dict[Kind, dict[str, Any]]
    resolve: list[OpenAlert]


def plan(f: Facts, open_alerts: Sequence[OpenAlert], now: dt.datetime) -> Plan:
    """Compare what holds now with the open (or acknowledged) alerts of one customer."""
    held = conditions(f)
    open_kinds = {a.kind for a in open_alerts}
    to_raise = {k: d for k, d in held.items() if k not in open_kinds}
    resolve = []
    for alert in open_alerts:
        if alert.kind in EVENT_KINDS:
            still = event_still_holds(alert.kind, alert.details, alert.raised_at,
                                      f.risk_class, now)
        else:
            still = alert.kind in held
        if not still:
            resolve.append(alert)
    return Plan(to_raise, resolve)
