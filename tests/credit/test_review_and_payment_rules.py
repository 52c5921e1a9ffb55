"""The three rules of Part 2 as a pure function: ORDER_ABOVE_MAXIMUM, SLOW_PAYER and
REVIEW_OVERDUE, each off unless configured, at and around their boundaries."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

import pytest

from app.credit.plans import Decrease, Increase, amendment, dispatch_decision
from app.credit.policy import AccountTerms, Exposure, Outcome, Overdue, PolicyParams, evaluate

TODAY = dt.date(2026, 12, 1)
NONE = Exposure(D(0), D(0))


def decide(amount: str, *, max_order: str | None = None, review_due: dt.date | None = None,
           index: int | None = None, min_index: int | None = None,
           grace: int | None = None, order_total: str | None = None):
    terms = AccountTerms(currency="EUR", credit_limit=D("100000"),
                         max_order_amount=D(max_order) if max_order else None,
                         review_due_on=review_due)
    policy = PolicyParams(min_payment_index=min_index, review_grace_days=grace)
    return evaluate(terms, policy, NONE, Overdue(), D(amount), TODAY, payment_index=index,
                    order_total=D(order_total) if order_total else None)


def codes(decision) -> list[str]:
    return [r.code.value for r in decision.reasons]


@pytest.mark.parametrize(("amount", "max_order", "expected"), [
    ("5000.00", None, ["WITHIN_LIMIT"]),           # off unless set
    ("5000.00", "5000.00", ["WITHIN_LIMIT"]),      # at the maximum: fine
    ("5000.01", "5000.00", ["ORDER_ABOVE_MAXIMUM"]),
])
def test_order_above_maximum(amount, max_order, expected):
    decision = decide(amount, max_order=max_order)
    assert codes(decision) == expected
    assert decision.outcome is (Outcome.HOLD if expected != ["WITHIN_LIMIT"] else Outcome.APPROVE)


def test_an_amendment_compares_the_new_total_with_the_maximum():
    """The increase alone (1,000) is below the maximum; the new total (5,500) is not."""
    assert codes(decide("1000", max_order="5000", order_total="5500")) == ["ORDER_ABOVE_MAXIMUM"]
    assert codes(decide("1000", max_order="5000", order_total="5000")) == ["WITHIN_LIMIT"]


@pytest.mark.parametrize(("index", "min_index", "expected"), [
    (30, None, ["WITHIN_LIMIT"]),      # rule off
    (None, 60, ["WITHIN_LIMIT"]),      # no payment history: no index, no rule
    (60, 60, ["WITHIN_LIMIT"]),        # at the minimum
    (59, 60, ["SLOW_PAYER"]),
    (1, 100, ["SLOW_PAYER"]),
])
def test_slow_payer(index, min_index, expected):
    assert codes(decide("100", index=index, min_index=min_index)) == expected


@pytest.mark.parametrize(("due", "grace", "expected"), [
    (TODAY - dt.timedelta(days=400), None, ["WITHIN_LIMIT"]),   # rule off
    (None, 0, ["WITHIN_LIMIT"]),                                # no review date
    (TODAY, 0, ["WITHIN_LIMIT"]),                               # due today: not overdue
    (TODAY - dt.timedelta(days=1), 0, ["REVIEW_OVERDUE"]),
    (TODAY - dt.timedelta(days=14), 14, ["WITHIN_LIMIT"]),      # last day of grace
    (TODAY - dt.timedelta(days=15), 14, ["REVIEW_OVERDUE"]),
])
def test_review_overdue(due, grace, expected):
    assert codes(decide("100", review_due=due, grace=grace)) == expected


def test_every_rule_reports_in_the_table_order():
    decision = decide("6000", max_order="5000", index=10, min_index=50,
                      review_due=TODAY - dt.timedelta(days=30), grace=7)
    assert codes(decision) == ["ORDER_ABOVE_MAXIMUM", "SLOW_PAYER", "REVIEW_OVERDUE"]
    assert decision.primary_reason.value == "ORDER_ABOVE_MAXIMUM"


def test_amendment_plan():
    assert amendment(D("100"), D("100"), D("100"), D(0)) is None
    assert amendment(D("100"), D("150"), D("100"), D(0)) == Increase(D("50"))
    assert amendment(D("100"), D("40"), D("100"), D(0)) == Decrease(D("60"), D("40"), False)
    # 60 of the 100 already invoiced: lowering to 40 frees the 40 left and ends the order.
    assert amendment(D("100"), D("40"), D("40"), D("60")) == Decrease(D("40"), D("0"), True)


def test_dispatch_counts_the_order_once_and_checks_its_total():
    from app.credit.plans import CreditState
    from tests.credit.test_plans import an_account

    state = CreditState(an_account(limit="1000", open_orders="800", max_order_amount="700"),
                        PolicyParams(), Overdue())
    decision = dispatch_decision(state, D("800"), D("800"), False, TODAY)
    assert codes(decision) == ["ORDER_ABOVE_MAXIMUM"], "800 fits (counted once), 800 > 700"
    released = dispatch_decision(state, D("800"), D("800"), True, TODAY)
    assert codes(released) == ["ORDER_ABOVE_MAXIMUM"], "a release skips only limit rules"
