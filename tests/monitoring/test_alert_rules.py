"""The alert conditions as pure functions: every kind, every boundary."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from app.monitoring.alerts import (
    Facts,
    Kind,
    LimitExpiry,
    OpenAlert,
    conditions,
    event_still_holds,
    grade_downgrade,
    order_spike,
    plan,
)

TODAY = dt.date(2026, 3, 10)
NOW = dt.datetime(2026, 3, 10, 12, tzinfo=dt.UTC)


def facts(**changes: object) -> Facts:
    base: dict[str, object] = dict(
        exposure=Decimal("100"), effective_limit=Decimal("1000"),
        alert_utilisation=Decimal("0.90"), alert_payment_index=50, max_days_past_due=30,
        oldest_overdue_days=None, overdue_amount=Decimal(0), payment_index=None,
        review_due_on=None, today=TODAY)
    return Facts(**(base | changes))  # type: ignore[arg-type]


def test_a_healthy_account_has_no_alert():
    assert conditions(facts()) == {}


def test_utilisation_high_from_the_threshold_on_and_only_with_a_limit():
    assert Kind.UTILISATION_HIGH not in conditions(facts(exposure=Decimal("899.9999")))
    held = conditions(facts(exposure=Decimal("900")))
    assert held[Kind.UTILISATION_HIGH] == {"exposure": "900.00", "effective_limit": "1000.00",
                                           "utilisation": "0.9000", "alert_utilisation": "0.9000"}
    assert Kind.LIMIT_EXCEEDED not in held
    zero_limit = conditions(facts(exposure=Decimal("5"), effective_limit=Decimal(0)))
    assert Kind.UTILISATION_HIGH not in zero_limit
    assert zero_limit[Kind.LIMIT_EXCEEDED]["excess"] == "5.00"


def test_limit_exceeded_only_above_the_limit():
    assert Kind.LIMIT_EXCEEDED not in conditions(facts(exposure=Decimal("1000")))
    held = conditions(facts(exposure=Decimal("1000.01")))
    assert held[Kind.LIMIT_EXCEEDED]["excess"] == "0.01"
    assert Kind.UTILISATION_HIGH in held
    assert conditions(facts(exposure=Decimal("0"), effective_limit=Decimal(0))) == {}


def test_overdue_beyond_the_class_days():
    assert conditions(facts(oldest_overdue_days=30, overdue_amount=Decimal(5))) == {}
    held = conditions(facts(oldest_overdue_days=31, overdue_amount=Decimal(5)))
    assert held == {Kind.OVERDUE: {"oldest_overdue_days": 31, "overdue_amount": "5.00",
                                   "max_days_past_due": 30}}


def test_payment_index_low_below_the_threshold_never_when_null():
    assert conditions(facts(payment_index=None)) == {}
    assert conditions(facts(payment_index=50)) == {}
    assert conditions(facts(payment_index=49)) == {
        Kind.PAYMENT_INDEX_LOW: {"payment_index": 49, "alert_payment_index": 50}}


def test_review_due_within_14_days_inclusive_or_past():
    assert conditions(facts(review_due_on=TODAY + dt.timedelta(days=15))) == {}
    assert conditions(facts(review_due_on=TODAY + dt.timedelta(days=14)))[
        Kind.REVIEW_DUE] == {"review_due_on": "2026-03-24", "days_left": 14}
    assert conditions(facts(review_due_on=TODAY - dt.timedelta(days=400)))[
        Kind.REVIEW_DUE]["days_left"] == -400


def test_limit_expiring_within_14_days_inclusive_not_once_expired():
    def expiring(days: int) -> dict[Kind, dict[str, object]]:
        return conditions(facts(expiries=(
            LimitExpiry("temporary_limit", Decimal(500), TODAY + dt.timedelta(days=days)),)))

    assert expiring(15) == {}
    assert expiring(-1) == {}
    assert expiring(0)[Kind.LIMIT_EXPIRING]["days_left"] == 0
    assert expiring(14)[Kind.LIMIT_EXPIRING] == {
        "expires_on": "2026-03-24", "days_left": 14,
        "expiring": [{"source": "temporary_limit", "amount": "500.00",
                      "expires_on": "2026-03-24"}]}


def test_order_spike_needs_five_previous_checks_and_more_than_three_times_the_average():
    assert order_spike(Decimal("1000"), 4, Decimal("400")) is None  # too few to compare
    assert order_spike(Decimal("300"), 5, Decimal("500")) is None  # exactly 3 x: no spike
    spike = order_spike(Decimal("300.01"), 5, Decimal("500"))
    assert spike is not None
    assert spike["average"] == "100.00" and spike["previous_checks"] == 5
    assert spike["amount"] == "300.01" and spike["factor"] == "3.0001"
    assert order_spike(Decimal("1"), 0, Decimal(0)) is None


def test_grade_downgrade_only_from_a_grade_to_a_worse_one():
    assert grade_downgrade("A", "BBB") == {"from_class": "A", "to_class": "BBB"}
    assert grade_downgrade("BBB", "A") is None
    assert grade_downgrade("A", "A") is None
    assert grade_downgrade("unrated", "CCC") is None


def test_grade_downgrade_stands_until_the_class_is_restored():
    details = {"from_class": "A", "to_class": "BB"}
    assert event_still_holds(Kind.GRADE_DOWNGRADE, details, NOW, "BB", NOW)
    assert event_still_holds(Kind.GRADE_DOWNGRADE, details, NOW, "BBB", NOW)
    assert not event_still_holds(Kind.GRADE_DOWNGRADE, details, NOW, "A", NOW)
    assert not event_still_holds(Kind.GRADE_DOWNGRADE, details, NOW, "AAA", NOW)
    assert not event_still_holds(Kind.GRADE_DOWNGRADE, details, NOW, "unrated", NOW)


def test_order_spike_stands_for_30_days():
    assert event_still_holds(Kind.ORDER_SPIKE, {}, NOW - dt.timedelta(days=29), "A", NOW)
    assert not event_still_holds(Kind.ORDER_SPIKE, {}, NOW - dt.timedelta(days=30), "A", NOW)


def test_plan_raises_what_is_new_and_resolves_what_went():
    open_alerts = [OpenAlert("1", "OVERDUE", NOW, {}), OpenAlert("2", "UTILISATION_HIGH", NOW, {}),
                   OpenAlert("3", "GRADE_DOWNGRADE", NOW, {"from_class": "A"})]
    p = plan(facts(exposure=Decimal("950"), payment_index=10, risk_class="BB"), open_alerts, NOW)
    assert set(p.raise_) == {Kind.PAYMENT_INDEX_LOW}  # UTILISATION_HIGH is open already
    assert [a.alert_id for a in p.resolve] == ["1"]
