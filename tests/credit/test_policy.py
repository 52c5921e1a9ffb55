"""The decision rules as a pure function: every reason code, every boundary, no database."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

import pytest

from app.credit.policy import (
    AccountTerms,
    Exposure,
    Outcome,
    Overdue,
    PolicyParams,
    ReasonCode,
    TemporaryLimit,
    default_policy,
    evaluate,
    unknown_customer,
)

TODAY = dt.date(2026, 11, 23)
TERMS = AccountTerms(currency="EUR", credit_limit=D("10000"))
POLICY = PolicyParams()
NO_EXPOSURE = Exposure(D(0), D(0))


def decide(amount: str, *, terms: AccountTerms = TERMS, policy: PolicyParams = POLICY,
           exposure: Exposure = NO_EXPOSURE, overdue: Overdue | None = None,
           limit_rules: bool = True):
    return evaluate(terms, policy, exposure, overdue or Overdue(), D(amount), TODAY,
                    limit_rules=limit_rules)


def codes(decision) -> list[str]:
    return [r.code.value for r in decision.reasons]


CASES = [
    # name, amount, exposure (recv, orders), overdue (days, amount), outcome, reasons
    ("fits", "1000", ("0", "0"), None, "approve", ["WITHIN_LIMIT"]),
    ("exactly the limit approves", "4000", ("5000", "1000"), None, "approve", ["WITHIN_LIMIT"]),
    ("one cent over holds", "4000.01", ("5000", "1000"), None, "hold", ["OVER_LIMIT"]),
    ("one ten-thousandth over holds", "4000.0001", ("5000", "1000"), None, "hold",
     ["OVER_LIMIT"]),
    ("band edge holds", "12000", ("0", "0"), None, "hold", ["OVER_LIMIT"]),
    ("one cent past the band prepays", "12000.01", ("0", "0"), None, "prepay",
     ["OVER_LIMIT_BEYOND_TOLERANCE"]),
    ("negative receivables add headroom", "10500", ("-500", "0"), None, "approve",
     ["WITHIN_LIMIT"]),
    ("30 days past due is not yet overdue", "1", ("0", "0"), (30, "100"), "approve",
     ["WITHIN_LIMIT"]),
    ("31 days past due holds", "1", ("0", "0"), (31, "100"), "hold", ["OVERDUE_RECEIVABLES"]),
    ("90 days past due still only holds", "1", ("0", "0"), (90, "100"), "hold",
     ["OVERDUE_RECEIVABLES"]),
    ("91 days past due prepays", "1", ("0", "0"), (91, "100"), "prepay", ["SEVERELY_OVERDUE"]),
    ("over limit and overdue: both listed, worst wins", "11000", ("0", "0"), (95, "50"),
     "prepay", ["OVER_LIMIT", "SEVERELY_OVERDUE"]),
]


@pytest.mark.parametrize(("name", "amount", "exposure", "overdue", "outcome", "reasons"), CASES,
                         ids=[c[0] for c in CASES])
def test_rule_table(name, amount, exposure, overdue, outcome, reasons):
    over = Overdue(overdue[0], D(overdue[1])) if overdue else None
    decision = decide(amount, exposure=Exposure(D(exposure[0]), D(exposure[1])), overdue=over)
    assert decision.outcome == Outcome(outcome)
    assert codes(decision) == reasons


def test_unknown_customer_prepays():
    decision = unknown_customer()
    assert decision.outcome is Outcome.PREPAY
    assert codes(decision) == ["UNKNOWN_CUSTOMER"]
    assert decision.primary_reason is ReasonCode.UNKNOWN_CUSTOMER


def test_blocked_account_prepays_with_its_reason():
    decision = decide("1", terms=AccountTerms("EUR", D("10000"), blocked=True,
                                              block_reason="insolvency"))
    assert decision.outcome is Outcome.PREPAY
    assert codes(decision) == ["CUSTOMER_BLOCKED"]
    assert "insolvency" in decision.reasons[0].message


def test_prepay_risk_class():
    decision = decide("1", terms=AccountTerms("EUR", D("10000"), risk_class="CCC"),
                      policy=default_policy("CCC"))
    assert decision.outcome is Outcome.PREPAY
    assert codes(decision) == ["RISK_CLASS_PREPAY"]


def test_zero_limit_prepays_and_lists_the_limit_breach_too():
    decision = decide("1", terms=AccountTerms("EUR", D("0")))
    assert decision.outcome is Outcome.PREPAY
    assert codes(decision) == ["NO_CREDIT_LIMIT", "OVER_LIMIT_BEYOND_TOLERANCE"]
    assert decision.primary_reason is ReasonCode.NO_CREDIT_LIMIT


def test_every_applicable_reason_in_table_order():
    terms = AccountTerms("EUR", D("0"), risk_class="CCC", blocked=True)
    decision = decide("5", terms=terms, policy=default_policy("CCC"), overdue=Overdue(200, D(9)))
    assert codes(decision) == ["CUSTOMER_BLOCKED", "RISK_CLASS_PREPAY", "NO_CREDIT_LIMIT",
                               "OVER_LIMIT_BEYOND_TOLERANCE", "SEVERELY_OVERDUE"]
    assert decision.primary_reason is ReasonCode.CUSTOMER_BLOCKED


def test_primary_reason_is_first_of_the_worst_outcome():
    decision = decide("11000", overdue=Overdue(95, D(1)))
    assert decision.primary_reason is ReasonCode.SEVERELY_OVERDUE


def test_overdue_within_tolerance_does_not_hold():
    policy = PolicyParams(overdue_tolerance=D("100"))
    assert decide("1", policy=policy, overdue=Overdue(45, D("100"))).outcome is Outcome.APPROVE
    held = decide("1", policy=policy, overdue=Overdue(45, D("100.01")))
    assert codes(held) == ["OVERDUE_RECEIVABLES"]


def test_severely_overdue_ignores_the_tolerance():
    policy = PolicyParams(overdue_tolerance=D("1000000"))
    assert codes(decide("1", policy=policy, overdue=Overdue(91, D(1)))) == ["SEVERELY_OVERDUE"]


def test_temporary_limit_counts_through_its_last_day():
    temp = TemporaryLimit(D("5000"), TODAY)
    terms = AccountTerms("EUR", D("10000"), temporary_limit=temp)
    assert terms.effective_limit(TODAY) == D("15000")
    assert terms.effective_limit(TODAY + dt.timedelta(days=1)) == D("10000")
    assert decide("15000", terms=terms).outcome is Outcome.APPROVE
    assert decide("15000.01", terms=terms).outcome is Outcome.HOLD


def test_custom_hold_band():
    policy = PolicyParams(hold_band=D("0.05"))
    assert decide("10500", policy=policy).outcome is Outcome.HOLD
    assert decide("10500.01", policy=policy).outcome is Outcome.PREPAY


def test_zero_hold_band_prepays_anything_over():
    assert decide("10000.01", policy=PolicyParams(hold_band=D(0))).outcome is Outcome.PREPAY


def test_limit_rules_can_be_skipped_for_released_orders():
    decision = decide("50000", limit_rules=False)
    assert decision.outcome is Outcome.APPROVE
    blocked = AccountTerms("EUR", D("10000"), blocked=True)
    assert decide("50000", terms=blocked, limit_rules=False).outcome is Outcome.PREPAY


def test_overdue_facts_from_due_date():
    assert Overdue.from_oldest_due(None, D(0), TODAY) == Overdue()
    assert Overdue.from_oldest_due(TODAY, D(5), TODAY) == Overdue()
    assert Overdue.from_oldest_due(TODAY - dt.timedelta(days=31), D(5), TODAY) == \
        Overdue(31, D(5))


def test_messages_explain_the_numbers():
    message = decide("4000.01", exposure=Exposure(D("5000"), D("1000"))).reasons[0].message
    assert "10000.01 EUR" in message and "10000.00 EUR" in message and "0.01 EUR" in message
    message = decide("12000.01").reasons[0].message
    assert "20% hold band" in message and "12000.00 EUR" in message


def test_defaults_match_the_design():
    for risk_class in ("AAA", "AA", "A", "BBB", "BB", "B", "unrated"):
        assert default_policy(risk_class) == PolicyParams(
            prepay_required=False, hold_band=D("0.20"), max_days_past_due=30,
            prepay_days_past_due=90, overdue_tolerance=D(0))
    assert default_policy("CCC").prepay_required
