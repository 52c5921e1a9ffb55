"""What each use case decides, as pure functions of what was read: no SQL, no I/O.

`policy.evaluate` applies the rules; the functions here say what to evaluate (a new order, the
difference of an amendment, an order at dispatch, held orders as headroom frees) and what the
outcome means for the order and the aggregates. Services load, call these, and persist.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from functools import cached_property
from typing import Any

from app.credit.codec import state_to_doc
from app.credit.policy import (
    AccountTerms,
    Decision,
    Exposure,
    GroupTerms,
    Outcome,
    Overdue,
    PolicyParams,
    ReasonCode,
    Security,
    evaluate,
    release_decision,
    unknown_customer,
)
from app.credit_file.entries import Event, decision_entry, decision_group
from app.customers.models import Account
from app.fx.convert import convert
from app.money import ZERO
from app.monitoring.alerts import Facts, Kind, conditions, order_spike

# The order status each outcome of a credit check leaves the order in.
STATUS_OF = {Outcome.APPROVE: "approved", Outcome.HOLD: "held", Outcome.PREPAY: "prepay"}


@dataclass(frozen=True)
class CreditState:
    """An account with its class policy and overdue facts, as of one read."""

    account: Account
    policy: PolicyParams
    overdue: Overdue
    policy_version: int = 0  # 0: no stored policy row, the shipped defaults apply
    group: GroupTerms | None = None  # the credit group the account belongs to
    securities: tuple[Security, ...] = ()  # converted at the read's day's rates

    @cached_property
    def terms(self) -> AccountTerms:
        # Built once per state: a check asks for it several times (limit, rules, alerts).
        return replace(self.account.terms, securities=self.securities)

    def effective_limit(self, today: dt.date) -> Decimal:
        return self.terms.effective_limit(today)

    def evaluate(self, amount: Decimal, today: dt.date, *, exposure: Exposure | None = None,
                 order_total: Decimal | None = None, limit_rules: bool = True,
                 group: GroupTerms | None = None) -> Decision:
        """The policy decision for `amount` on top of the account's (or the given) exposure
        and the group's (or the given group's)."""
        return evaluate(self.terms, self.policy, exposure or self.account.exposure,
                        self.overdue, amount, today, payment_index=self.account.payment_index,
                        order_total=order_total, limit_rules=limit_rules,
                        group=group or self.group)


@dataclass(frozen=True)
class ExistingOrder:
    """The fields of a stored order that decide whether a request is a replay."""

    customer_id: str
    requested_amount: Decimal
    currency: str
    channel: str | None
    entry_decision_id: str

    def same_request(self, customer_id: str, amount: Decimal, currency: str,
                     channel: str | None) -> bool:
        """Same meaning: amounts compare as numbers, an omitted channel is null."""
        return (self.customer_id, self.requested_amount, self.currency, self.channel) == (
            customer_id, amount, currency, channel)


def decision_inputs(state: CreditState, today: dt.date) -> dict[str, Any]:
    """What a decision is taken on, as JSON (the state as the cache keeps it, and the day):
    a simulation re-decides stored decisions from these."""
    return {**state_to_doc(state), "today": today.isoformat()}


def reservation_expiry(now: dt.datetime, ttl_days: int) -> dt.datetime:
    """When a reservation made now lapses."""
    return now + dt.timedelta(days=ttl_days)


# -- the credit check -------------------------------------------------------------------------


@dataclass(frozen=True)
class Watch:
    """What a check needs to know to raise its own alerts: the customer's open alert kinds
    and the tally of its credit checks of the last 90 days."""

    open_alerts: frozenset[str] = frozenset()
    previous_checks: int = 0
    previous_amount: Decimal = ZERO


def check_alerts(state: CreditState, watch: Watch, decision: Decision, amount: Decimal,
                 today: dt.date) -> dict[str, dict[str, Any]]:
    """The alerts a check raises (DESIGN.md 2.3): UTILISATION_HIGH when its approval takes
    exposure to the class's threshold, ORDER_SPIKE when it is far above the usual order."""
    raised: dict[str, dict[str, Any]] = {}
    if decision.approved and Kind.UTILISATION_HIGH not in watch.open_alerts:
        a = state.account
        facts = Facts(
            exposure=a.exposure.total + amount, effective_limit=state.effective_limit(today),
            alert_utilisation=state.policy.alert_utilisation,
            alert_payment_index=state.policy.alert_payment_index,
            max_days_past_due=state.policy.max_days_past_due, oldest_overdue_days=None,
            overdue_amount=ZERO, payment_index=None, review_due_on=None, today=today)
        held = conditions(facts).get(Kind.UTILISATION_HIGH)
        if held is not None:
            raised[Kind.UTILISATION_HIGH] = held
    if Kind.ORDER_SPIKE not in watch.open_alerts:
        spike = order_spike(amount, watch.previous_checks, watch.previous_amount)
        if spike is not None:
            raised[Kind.ORDER_SPIKE] = spike
    return raised


@dataclass(frozen=True)
class Guard:
    """What must still hold when the write lands for the decision to stand.

    An approval stays valid as long as terms, receivables and the class policy are unchanged
    and the order still fits: `within` is the largest exposure + order allowed. Any other
    outcome requires the exact open-orders figure it reported.
    """

    terms_version: int
    ledger_version: int
    policy_version: int
    within: Decimal | None = None
    open_orders: Decimal | None = None
    # An approval that raised no UTILISATION_HIGH stands only if it still raises none:
    # exposure + order stays `below` the threshold, or the open alert it saw is still open.
    below: Decimal | None = None
    alert_open: bool = False
    # A member's group: its terms version, and like the account's, the largest group
    # exposure + order an approval allows, or the exact group figures anything else saw.
    group_id: str | None = None
    group_version: int = 0
    group_within: Decimal | None = None
    group_exposure: Exposure | None = None


@dataclass(frozen=True)
class CheckPlan:
    """Everything a credit check writes, decided from one read."""

    customer_id: str
    order_id: str
    amount: Decimal
    currency: str
    channel: str | None
    actor: str
    at: dt.datetime
    entry_id: str
    decision: Decision
    exposure: Exposure  # as read; the write reports the exposure it actually landed on
    converted_amount: Decimal  # the amount in the account's currency
    fx_rate: Decimal | None  # None: the order is in the account's currency
    group: GroupTerms | None  # as read, like `exposure`
    expires_at: dt.datetime | None
    known: bool  # an account exists
    guard: Guard | None  # None: written under the account's row lock (or no account)
    payment_index: int | None = None
    inputs: dict[str, Any] | None = None
    alerts: dict[str, dict[str, Any]] = field(default_factory=dict)  # kind -> details

    @property
    def status(self) -> str:
        return STATUS_OF[self.decision.outcome]

    @property
    def reserve(self) -> Decimal:
        return self.converted_amount if self.decision.approved else ZERO

    @property
    def held(self) -> Decimal:
        return self.converted_amount if self.decision.outcome is Outcome.HOLD else ZERO

    @property
    def effective_limit(self) -> Decimal:
        return self.decision.effective_limit or ZERO

    def entry(self, exposure: Exposure | None = None, group: Exposure | None = None
              ) -> dict[str, Any]:
        """The credit-file row of the decision, on the exposure (and the group exposure) it
        landed on."""
        terms = self.group
        if terms is not None and group is not None:
            terms = replace(terms, exposure=group)
        return decision_entry(
            entry_id=self.entry_id, at=self.at, event=Event.CREDIT_CHECK, actor=self.actor,
            customer_id=self.customer_id, order_id=self.order_id, decision=self.decision,
            amount=self.amount, currency=self.currency, exposure=exposure or self.exposure,
            reserved=self.reserve, expires_at=self.expires_at,
            payment_index=self.payment_index, inputs=self.inputs,
            converted_amount=self.converted_amount, fx_rate=self.fx_rate,
            group=decision_group(terms, self.reserve))


def plan_check(state: CreditState | None, *, customer_id: str, order_id: str, amount: Decimal,
               currency: str, channel: str | None, actor: str, at: dt.datetime,
               today: dt.date, ttl_days: int, entry_id: str, guarded: bool,
               watch: Watch | None = None, fx_rate: Decimal | None = None) -> CheckPlan:
    """Decide a new order on `state` (None: the customer has no account); an order in
    another currency than the account's is decided on its amount converted at `fx_rate`."""
    converted = amount if fx_rate is None else convert(amount, fx_rate)
    if state is None:
        decision, exposure = unknown_customer(), Exposure(ZERO, ZERO)
    else:
        decision, exposure = state.evaluate(converted, today), state.account.exposure
    watch = watch or Watch()
    alerts = {} if state is None else check_alerts(state, watch, decision, converted, today)
    guard = None
    if guarded and state is not None:
        guard = _guard(state, decision, watch, today)
    return CheckPlan(
        customer_id=customer_id, order_id=order_id, amount=amount, currency=currency,
        channel=channel, actor=actor, at=at, entry_id=entry_id, decision=decision,
        exposure=exposure, converted_amount=converted, fx_rate=fx_rate,
        group=None if state is None else state.group,
        expires_at=reservation_expiry(at, ttl_days) if decision.approved else None,
        known=state is not None, guard=guard,
        payment_index=None if state is None else state.account.payment_index,
        inputs=None if state is None else decision_inputs(state, today), alerts=alerts)


def _guard(state: CreditState, decision: Decision, watch: Watch, today: dt.date) -> Guard:
    account, group = state.account, state.group
    approved = decision.approved
    alert_open = Kind.UTILISATION_HIGH in watch.open_alerts
    below = None
    if approved and not alert_open:
        below = state.policy.alert_utilisation * state.effective_limit(today)
    return Guard(account.terms_version, account.ledger_version, state.policy_version,
                 within=decision.effective_limit if approved else None,
                 open_orders=None if approved else account.open_orders,
                 below=below, alert_open=alert_open,
                 group_id=None if group is None else group.group_id,
                 group_version=0 if group is None else group.version,
                 group_within=group.credit_limit if group is not None and approved else None,
                 group_exposure=group.exposure if group is not None and not approved else None)


# -- the rest of an order's life ----------------------------------------------------------------


def without_own_reservation(exposure: Exposure, reserved: Decimal) -> Exposure:
    """Exposure as it would be without an order's own reservation (to count it once)."""
    return exposure.with_orders(-reserved)


def dispatch_decision(state: CreditState, reserved: Decimal, order_amount: Decimal,
                      released: bool, today: dt.date) -> Decision:
    """Every rule again, the order's reservation counted once; a controller's release
    accepted the exposure, so its limit rules are skipped."""
    others = without_own_reservation(state.account.exposure, reserved)
    group = None if state.group is None else state.group.without(reserved)
    return state.evaluate(reserved, today, exposure=others, order_total=order_amount,
                          limit_rules=not released, group=group)


@dataclass(frozen=True)
class Decrease:
    """An amendment down: `freed` leaves open orders; `invoiced_in_full` ends the order."""

    freed: Decimal
    reserved: Decimal
    invoiced_in_full: bool


@dataclass(frozen=True)
class Increase:
    """An amendment up: the difference is checked like a new order."""

    difference: Decimal


def amendment(amount: Decimal, new_amount: Decimal, reserved: Decimal, invoiced: Decimal
              ) -> Decrease | Increase | None:
    """What changing an approved order's amount means; None when it does not change."""
    if new_amount == amount:
        return None
    if new_amount > amount:
        return Increase(new_amount - amount)
    freed = min(amount - new_amount, reserved)
    left = reserved - freed
    return Decrease(freed, left, left == ZERO and invoiced >= new_amount)


@dataclass(frozen=True)
class HeldOrder:
    order_id: str
    amount: Decimal  # in the account's currency, like invoiced
    invoiced: Decimal
    channel: str | None
    customer_id: str

    @property
    def remaining(self) -> Decimal:
        """What releasing it reserves: an invoice may already have taken part of it."""
        return self.amount - self.invoiced


@dataclass(frozen=True)
class Release:
    order: HeldOrder
    decision: Decision
    exposure: Exposure  # before this release
    group: GroupTerms | None = None  # before this release


def group_release_plan(states: Mapping[str, CreditState], held: Iterable[HeldOrder],
                       today: dt.date) -> list[Release]:
    """Held orders of the given customers (the members of one group, or one customer), oldest
    first, that now pass every rule, each on top of the ones before: in its own account and
    in the group they share."""
    exposures = {customer_id: s.account.exposure for customer_id, s in states.items()}
    group = next((s.group for s in states.values() if s.group is not None), None)
    releases = []
    for order in held:
        state, exposure = states[order.customer_id], exposures[order.customer_id]
        amount = order.remaining
        if not state.evaluate(amount, today, exposure=exposure, group=group).approved:
            continue
        decision = release_decision(ReasonCode.AUTO_RELEASE, state.effective_limit(today),
                                    "headroom was freed and the order now passes every rule")
        releases.append(Release(order, decision, exposure, group))
        exposures[order.customer_id] = exposure.with_orders(amount)
        if group is not None:
            group = replace(group, exposure=group.exposure.with_orders(amount))
    return releases


def manual_release(state: CreditState, actor: str, reason: str, today: dt.date) -> Decision:
    """A controller's approval of a held order, whatever the limit says."""
    return release_decision(ReasonCode.MANUAL_RELEASE, state.effective_limit(today),
                            f"released by {actor}: {reason}")
