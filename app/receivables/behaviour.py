"""Payment behaviour (DESIGN 2.2) as pure functions of plain aggregate values.

No database, no web framework: the maintained buckets and the overdue index are summed
elsewhere into the values below; everything here is exact (Decimal in, Fraction inside,
Decimal out, rounded half-up) and testable in microseconds.
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

ZERO = Decimal(0)
WINDOW_DAYS = 365  # applications and invoices: the last 365 days, today included
DSO_DAYS = 90

# (days beyond terms, payment index): anchors of the piecewise-linear map, in order.
ANCHORS: tuple[tuple[int, int], ...] = ((-30, 100), (-20, 90), (0, 80), (30, 50), (120, 20),
                                        (180, 1))


def half_up(value: Fraction | Decimal | int, places: int) -> Decimal:
    """Exact rounding to `places` decimals, halves away from zero."""
    exact = Fraction(value)
    scaled = abs(exact) * 10 ** places
    whole = (scaled.numerator * 2 + scaled.denominator) // (scaled.denominator * 2)
    return Decimal(-whole if exact < 0 else whole).scaleb(-places)


def payment_index(days_beyond_terms: Decimal | None) -> int | None:
    """1-100 from days beyond terms; None when there is nothing to weigh."""
    if days_beyond_terms is None:
        return None
    d = Fraction(days_beyond_terms)
    first, last = ANCHORS[0], ANCHORS[-1]
    if d <= first[0]:
        return first[1]
    if d > last[0]:
        return last[1]
    for (d0, p0), (d1, p1) in itertools.pairwise(ANCHORS):
        if d <= d1:
            value = p0 + (d - d0) * Fraction(p1 - p0, d1 - d0)
            return int(half_up(value, 0))
    raise AssertionError("unreachable: the anchors cover every d")


@dataclass(frozen=True)
class Applied:
    """Applications of payments to invoices, summed (one bucket, or a window of them)."""

    amount: Decimal = ZERO  # applied amount
    late_days: Decimal = ZERO  # sum of amount x (received_on - due_on)
    on_time: Decimal = ZERO  # applied amount with received_on <= due_on
    dated_amount: Decimal = ZERO  # applied amount whose invoice has an issued_on
    dated_days: Decimal = ZERO  # sum of amount x (received_on - issued_on) over those
    max_days_late: int | None = None  # the largest received_on - due_on (None: no rows)

    def __add__(self, other: Applied) -> Applied:
        lates = [m for m in (self.max_days_late, other.max_days_late) if m is not None]
        return Applied(self.amount + other.amount, self.late_days + other.late_days,
                       self.on_time + other.on_time, self.dated_amount + other.dated_amount,
                       self.dated_days + other.dated_days, max(lates) if lates else None)


def application(amount: Decimal, received_on: dt.date, due_on: dt.date,
                issued_on: dt.date | None) -> Applied:
    """What one amount applied to one invoice adds to its received_on bucket."""
    late = (received_on - due_on).days
    dated = issued_on is not None
    to_pay = (received_on - issued_on).days if issued_on is not None else 0
    return Applied(amount=amount, late_days=amount * late,
                   on_time=amount if late <= 0 else ZERO,
                   dated_amount=amount if dated else ZERO,
                   dated_days=amount * to_pay if dated else ZERO, max_days_late=late)


@dataclass(frozen=True)
class OpenFacts:
    """The customer's positive open items as of today (credit items never count)."""

    positive: Decimal = ZERO  # every positive open amount
    overdue: Decimal = ZERO  # the part with due_on < today
    overdue_days: Decimal = ZERO  # sum of open amount x (today - due_on) over that part
    oldest_overdue_days: int | None = None  # today - the oldest overdue due_on

    @property
    def not_due(self) -> Decimal:
        return self.positive - self.overdue


@dataclass(frozen=True)
class Invoiced:
    """Invoiced sales by invoice date (issued_on, else the day posted)."""

    days_90: Decimal = ZERO
    days_365: Decimal = ZERO
    highest_month: Decimal = ZERO  # the largest calendar month within the 365-day window


@dataclass(frozen=True)
class PaymentBehaviour:
    payment_index: int | None
    days_beyond_terms: Decimal | None
    average_days_to_pay: Decimal | None
    paid_on_time_share: Decimal | None
    max_days_late: Decimal
    amount_paid_365d: Decimal
    dso_days: Decimal | None
    best_possible_dso_days: Decimal | None
    average_days_delinquent: Decimal | None
    invoiced_90d: Decimal
    invoiced_365d: Decimal
    highest_monthly_invoiced: Decimal


def days_beyond_terms(applied: Applied, open_: OpenFacts) -> Decimal | None:
    """Amount-weighted days beyond terms of the window's applications and of the open
    overdue items; 2 decimals, negative = early; None with nothing to weigh."""
    weight = applied.amount + open_.overdue
    if weight == ZERO:
        return None
    return half_up(Fraction(applied.late_days + open_.overdue_days) / Fraction(weight), 2)


def _ratio(part: Decimal, whole: Decimal, places: int, scale: int = 1) -> Decimal | None:
    if whole == ZERO:
        return None
    return half_up(Fraction(part) * scale / Fraction(whole), places)


def behaviour(applied: Applied, open_: OpenFacts, invoiced: Invoiced) -> PaymentBehaviour:
    """Every figure of the payment-behaviour response, from the summed aggregates."""
    dbt = days_beyond_terms(applied, open_)
    lates = [m for m in (applied.max_days_late, open_.oldest_overdue_days) if m is not None]
    dso = _ratio(open_.positive, invoiced.days_90, 2, DSO_DAYS)
    best = _ratio(open_.not_due, invoiced.days_90, 2, DSO_DAYS)
    return PaymentBehaviour(
        payment_index=payment_index(dbt),
        days_beyond_terms=dbt,
        average_days_to_pay=_ratio(applied.dated_days, applied.dated_amount, 2),
        paid_on_time_share=_ratio(applied.on_time, applied.amount, 4),
        max_days_late=half_up(max([0, *lates]), 2),
        amount_paid_365d=applied.amount,
        dso_days=dso,
        best_possible_dso_days=best,
        # The difference of the two figures shown, so that the response adds up.
        average_days_delinquent=None if dso is None or best is None else dso - best,
        invoiced_90d=invoiced.days_90,
        invoiced_365d=invoiced.days_365,
        highest_monthly_invoiced=invoiced.highest_month,
    )


def window_start(today: dt.date, days: int = WINDOW_DAYS) -> dt.date:
    """The first day of the last `days` days, today included."""
    return today - dt.timedelta(days=days - 1)
