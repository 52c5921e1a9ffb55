"""The approve / hold / prepay rules, as a pure function of plain values.

No database, no web framework: everything a decision depends on is passed in,
so every rule and boundary is testable in microseconds.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from decimal import Decimal
from enum import StrEnum

from app.money import ZERO, format_amount


class Outcome(StrEnum):
    APPROVE = "approve"
    HOLD = "hold"
    PREPAY = "prepay"


_SEVERITY = {Outcome.APPROVE: 0, Outcome.HOLD: 1, Outcome.PREPAY: 2}


class ReasonCode(StrEnum):
    UNKNOWN_CUSTOMER = "UNKNOWN_CUSTOMER"
    CUSTOMER_BLOCKED = "CUSTOMER_BLOCKED"
    RISK_CLASS_PREPAY = "RISK_CLASS_PREPAY"
    NO_CREDIT_LIMIT = "NO_CREDIT_LIMIT"
    OVER_LIMIT_BEYOND_TOLERANCE = "OVER_LIMIT_BEYOND_TOLERANCE"
    OVER_LIMIT = "OVER_LIMIT"
    SEVERELY_OVERDUE = "SEVERELY_OVERDUE"
    OVERDUE_RECEIVABLES = "OVERDUE_RECEIVABLES"
    ORDER_ABOVE_MAXIMUM = "ORDER_ABOVE_MAXIMUM"
    SLOW_PAYER = "SLOW_PAYER"
    REVIEW_OVERDUE = "REVIEW_OVERDUE"
    GROUP_BLOCKED = "GROUP_BLOCKED"
    GROUP_OVER_LIMIT_BEYOND_TOLERANCE = "GROUP_OVER_LIMIT_BEYOND_TOLERANCE"
    GROUP_OVER_LIMIT = "GROUP_OVER_LIMIT"
    WITHIN_LIMIT = "WITHIN_LIMIT"
    MANUAL_RELEASE = "MANUAL_RELEASE"
    AUTO_RELEASE = "AUTO_RELEASE"


RISK_CLASSES = ("AAA", "AA", "A", "BBB", "BB", "B", "CCC", "unrated")


@dataclass(frozen=True)
class PolicyParams:
    """Decision parameters of one risk class."""

    prepay_required: bool = False
    hold_band: Decimal = Decimal("0.20")
    max_days_past_due: int = 30
    prepay_days_past_due: int = 90
    overdue_tolerance: Decimal = ZERO
    min_payment_index: int | None = None  # None: the SLOW_PAYER rule is off
    review_grace_days: int | None = None  # None: the REVIEW_OVERDUE rule is off
    alert_utilisation: Decimal = Decimal("0.90")
    alert_payment_index: int = 50


def default_policy(risk_class: str) -> PolicyParams:
    """The shipped defaults: the same for every class, except that CCC must prepay."""
    return PolicyParams(prepay_required=risk_class == "CCC")


@dataclass(frozen=True)
class TemporaryLimit:
    amount: Decimal
    expires_on: dt.date


@dataclass(frozen=True)
class Security:
    """A security (insurance, guarantee, letter of credit, collateral) as it counts in the
    account's currency: it adds to the effective limit from valid_from to valid_until."""

    amount: Decimal
    valid_from: dt.date
    valid_until: dt.date

    def valid(self, today: dt.date) -> bool:
        return self.valid_from <= today <= self.valid_until


@dataclass(frozen=True)
class AccountTerms:
    """What a decision needs to know about the credit account."""

    currency: str
    credit_limit: Decimal
    risk_class: str = "unrated"
    blocked: bool = False
    block_reason: str | None = None
    temporary_limit: TemporaryLimit | None = None
    max_order_amount: Decimal | None = None
    review_due_on: dt.date | None = None
    securities: tuple[Security, ...] = ()

    def secured(self, today: dt.date) -> Decimal:
        """What the securities valid today add to the limit."""
        return sum((s.amount for s in self.securities if s.valid(today)), ZERO)

    def effective_limit(self, today: dt.date) -> Decimal:
        """Credit limit, plus a temporary limit that has not expired (inclusive of its last
        day), plus the securities valid today."""
        limit = self.credit_limit + self.secured(today)
        extra = self.temporary_limit
        if extra is not None and today <= extra.expires_on:
            return limit + extra.amount
        return limit


@dataclass(frozen=True)
class Exposure:
    open_receivables: Decimal
    open_orders: Decimal

    @property
    def total(self) -> Decimal:
        return self.open_receivables + self.open_orders

    def available(self, limit: Decimal, adding: Decimal = ZERO) -> Decimal:
        """What is left of `limit` once this exposure, and what `adding` reserves, count."""
        return limit - self.total - adding

    def with_orders(self, change: Decimal) -> Exposure:
        """This exposure with open orders moved by `change` (an order counted, or left out)."""
        return Exposure(self.open_receivables, self.open_orders + change)


@dataclass(frozen=True)
class GroupTerms:
    """The credit group an account belongs to: its limit binds the members together."""

    group_id: str
    currency: str
    credit_limit: Decimal
    blocked: bool
    block_reason: str | None
    exposure: Exposure
    version: int = 0

    def without(self, reserved: Decimal) -> GroupTerms:
        """The group as it would be without `reserved` of open orders (to count one once)."""
        return replace(self, exposure=self.exposure.with_orders(-reserved))


@dataclass(frozen=True)
class Overdue:
    """Facts about overdue open items; oldest_days is None when nothing is overdue."""

    oldest_days: int | None = None
    amount: Decimal = ZERO

    @classmethod
    def from_oldest_due(cls, oldest_due_on: dt.date | None, amount: Decimal, today: dt.date
                        ) -> Overdue:
        if oldest_due_on is None or oldest_due_on >= today:
            return cls()
        return cls((today - oldest_due_on).days, amount)


@dataclass(frozen=True)
class Reason:
    code: ReasonCode
    message: str

    @property
    def outcome(self) -> Outcome:
        return REASON_OUTCOME[self.code]


REASON_OUTCOME = {
    ReasonCode.UNKNOWN_CUSTOMER: Outcome.PREPAY,
    ReasonCode.CUSTOMER_BLOCKED: Outcome.PREPAY,
    ReasonCode.RISK_CLASS_PREPAY: Outcome.PREPAY,
    ReasonCode.NO_CREDIT_LIMIT: Outcome.PREPAY,
    ReasonCode.OVER_LIMIT_BEYOND_TOLERANCE: Outcome.PREPAY,
    ReasonCode.OVER_LIMIT: Outcome.HOLD,
    ReasonCode.SEVERELY_OVERDUE: Outcome.PREPAY,
    ReasonCode.OVERDUE_RECEIVABLES: Outcome.HOLD,
    ReasonCode.ORDER_ABOVE_MAXIMUM: Outcome.HOLD,
    ReasonCode.SLOW_PAYER: Outcome.HOLD,
    ReasonCode.REVIEW_OVERDUE: Outcome.HOLD,
    ReasonCode.GROUP_BLOCKED: Outcome.PREPAY,
    ReasonCode.GROUP_OVER_LIMIT_BEYOND_TOLERANCE: Outcome.PREPAY,
    ReasonCode.GROUP_OVER_LIMIT: Outcome.HOLD,
    ReasonCode.WITHIN_LIMIT: Outcome.APPROVE,
    ReasonCode.MANUAL_RELEASE: Outcome.APPROVE,
    ReasonCode.AUTO_RELEASE: Outcome.APPROVE,
}


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    reasons: tuple[Reason, ...]
    effective_limit: Decimal | None

    @property
    def primary_reason(self) -> ReasonCode:
        """The first listed reason of the worst outcome (what metrics count)."""
        return next(r.code for r in self.reasons if r.outcome == self.outcome)

    @property
    def approved(self) -> bool:
        return self.outcome is Outcome.APPROVE


def unknown_customer() -> Decision:
    """The decision for a customer_id the service has no account for."""
    reason = Reason(ReasonCode.UNKNOWN_CUSTOMER, "no credit account exists for this customer")
    return Decision(Outcome.PREPAY, (reason,), None)


def evaluate(
    terms: AccountTerms,
    policy: PolicyParams,
    exposure: Exposure,
    overdue: Overdue,
    amount: Decimal,
    today: dt.date,
    *,
    payment_index: int | None = None,
    order_total: Decimal | None = None,
    limit_rules: bool = True,
    group: GroupTerms | None = None,
) -> Decision:
    """Apply every rule to an order of `amount` on top of `exposure`; the worst outcome wins.

    `order_total` is what the order maximum is compared with when `amount` is only part of
    the order (an amendment's increase); by default the amount itself.
    """
    limit = terms.effective_limit(today)
    cur = terms.currency
    reasons: list[Reason] = []
    if terms.blocked:
        why = f": {terms.block_reason}" if terms.block_reason else ""
        reasons.append(Reason(ReasonCode.CUSTOMER_BLOCKED, f"the account is blocked{why}"))
    if policy.prepay_required:
        reasons.append(Reason(ReasonCode.RISK_CLASS_PREPAY,
                              f"risk class {terms.risk_class} requires prepayment"))
    if limit == ZERO:
        reasons.append(Reason(ReasonCode.NO_CREDIT_LIMIT, "the effective credit limit is 0"))
    if limit_rules:
        reasons.extend(_limit_reasons(limit, policy.hold_band, exposure, amount, cur))
    if group is not None:
        reasons.extend(_group_reasons(group, policy.hold_band, amount, limit_rules))
    reasons.extend(_overdue_reasons(policy, overdue, cur))
    total = amount if order_total is None else order_total
    if terms.max_order_amount is not None and total > terms.max_order_amount:
        reasons.append(Reason(ReasonCode.ORDER_ABOVE_MAXIMUM,
                              f"the order ({_money(total, cur)}) is above the account's "
                              f"maximum order amount {_money(terms.max_order_amount, cur)}"))
    if (policy.min_payment_index is not None and payment_index is not None
            and payment_index < policy.min_payment_index):
        reasons.append(Reason(ReasonCode.SLOW_PAYER,
                              f"payment index {payment_index} is below the class minimum "
                              f"{policy.min_payment_index}"))
    if (policy.review_grace_days is not None and terms.review_due_on is not None
            and today > terms.review_due_on + dt.timedelta(days=policy.review_grace_days)):
        reasons.append(Reason(ReasonCode.REVIEW_OVERDUE,
                              f"the credit review was due on {terms.review_due_on.isoformat()}"
                              f" ({policy.review_grace_days} days of grace have passed)"))
    if not reasons:
        reasons.append(Reason(ReasonCode.WITHIN_LIMIT,
                              "the order fits within the available credit"))
    outcome = max((r.outcome for r in reasons), key=_SEVERITY.__getitem__)
    return Decision(outcome, tuple(reasons), limit)


def _limit_reasons(limit: Decimal, band: Decimal, exposure: Exposure, amount: Decimal,
                   cur: str, *, whose: str = "", group: bool = False) -> list[Reason]:
    projected = exposure.total + amount
    if projected <= limit:
        return []
    headline = (f"{whose}exposure {_money(exposure.total, cur)} + order {_money(amount, cur)}"
                f" = {_money(projected, cur)}")
    tolerance = limit * (1 + band)
    what = "group limit" if group else "effective limit"
    if projected > tolerance:
        code = (ReasonCode.GROUP_OVER_LIMIT_BEYOND_TOLERANCE if group
                else ReasonCode.OVER_LIMIT_BEYOND_TOLERANCE)
        return [Reason(code, f"{headline} exceeds the {what} {_money(limit, cur)} plus the "
                             f"{_percent(band)} hold band ({_money(tolerance, cur)})")]
    code = ReasonCode.GROUP_OVER_LIMIT if group else ReasonCode.OVER_LIMIT
    return [Reason(code, f"{headline} exceeds the {what} {_money(limit, cur)} by "
                         f"{_money(projected - limit, cur)}")]


def _group_reasons(group: GroupTerms, band: Decimal, amount: Decimal, limit_rules: bool
                   ) -> list[Reason]:
    """The group's rules, right after the account's limit rules: blocked, then its limit
    with the member's hold band (the limit rules are skipped for a released order)."""
    reasons = []
    if group.blocked:
        why = f": {group.block_reason}" if group.block_reason else ""
        reasons.append(Reason(ReasonCode.GROUP_BLOCKED,
                              f"the credit group {group.group_id} is blocked{why}"))
    if limit_rules:
        reasons.extend(_limit_reasons(group.credit_limit, band, group.exposure, amount,
                                      group.currency, whose=f"group {group.group_id} ",
                                      group=True))
    return reasons


def _overdue_reasons(policy: PolicyParams, overdue: Overdue, cur: str) -> list[Reason]:
    days = overdue.oldest_days
    if days is None:
        return []
    if days > policy.prepay_days_past_due:
        return [Reason(ReasonCode.SEVERELY_OVERDUE,
                       f"the oldest overdue item is {days} days past due "
                       f"(prepay beyond {policy.prepay_days_past_due})")]
    if days > policy.max_days_past_due and overdue.amount > policy.overdue_tolerance:
        return [Reason(ReasonCode.OVERDUE_RECEIVABLES,
                       f"{_money(overdue.amount, cur)} overdue, the oldest item {days} days past"
                       f" due (hold beyond {policy.max_days_past_due})")]
    return []


def release_decision(code: ReasonCode, limit: Decimal | None, note: str) -> Decision:
    """An approval by a controller (MANUAL_RELEASE) or by freed headroom (AUTO_RELEASE)."""
    return Decision(Outcome.APPROVE, (Reason(code, note),), limit)


def _money(value: Decimal, currency: str) -> str:
    return f"{format_amount(value)} {currency}"


def _percent(band: Decimal) -> str:
    return f"{(band * 100).normalize():f}%"
