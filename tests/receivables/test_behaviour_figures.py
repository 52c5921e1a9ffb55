"""The pure payment-behaviour figures (app/receivables/behaviour.py): the payment-index map at
every anchor and between them, exact half-up rounding, and each figure from aggregates."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D
from fractions import Fraction

import pytest

from app.receivables import behaviour as b


@pytest.mark.parametrize(("d", "index"), [
    # the anchors
    ("-30", 100), ("-20", 90), ("0", 80), ("30", 50), ("120", 20), ("180", 1),
    # beyond them
    ("-365", 100), ("-30.01", 100), ("180.01", 1), ("999", 1),
    # between them, exactly on the line
    ("-25", 95), ("-10", 85), ("15", 65), ("45", 45), ("75", 35), ("150", D("10.5")),
    ("135", 15), ("165", 6), ("130", 17), ("-29.99", 100), ("29.99", 50),
    # half-up at the .5 (and just under it)
    ("0.5", 80), ("1.5", 79), ("-1", 81), ("-0.99", 80), ("60", 40), ("90", 30),
])
def test_payment_index_is_the_piecewise_linear_map_rounded_half_up(d, index):
    expected = int(D(index).quantize(D(1), rounding="ROUND_HALF_UP"))
    assert b.payment_index(D(d)) == expected


def test_no_days_beyond_terms_means_no_index():
    assert b.payment_index(None) is None


@pytest.mark.parametrize(("value", "places", "expected"), [
    (Fraction(1, 200), 2, "0.01"), (Fraction(-1, 200), 2, "-0.01"),
    (Fraction(1, 3), 2, "0.33"), (Fraction(2, 3), 4, "0.6667"),
    (Fraction(49999, 10**7), 2, "0.00"), (D("10.5"), 0, "11"), (7, 2, "7.00"),
])
def test_half_up_is_exact(value, places, expected):
    assert b.half_up(value, places) == D(expected)
    assert str(b.half_up(value, places)) == expected


def test_an_application_bucket():
    got = b.application(D("40"), dt.date(2026, 3, 21), dt.date(2026, 3, 1), dt.date(2026, 2, 1))
    assert got == b.Applied(amount=D(40), late_days=D(800), on_time=D(0), dated_amount=D(40),
                            dated_days=D(40 * 48), max_days_late=20)
    early = b.application(D("10"), dt.date(2026, 3, 1), dt.date(2026, 3, 1), None)
    assert early == b.Applied(amount=D(10), late_days=D(0), on_time=D(10),
                              dated_amount=D(0), dated_days=D(0), max_days_late=0)
    both = got + early
    assert both.amount == D(50) and both.on_time == D(10) and both.max_days_late == 20
    assert b.Applied() + b.Applied() == b.Applied()


def test_every_figure_from_the_aggregates():
    # 40 paid 20 days late, 50 days after issue; 60 of it still open 20 days past due;
    # 200 not yet due; 300 invoiced in the window, 260 of it in one month.
    applied = b.Applied(amount=D(40), late_days=D(800), on_time=D(0), dated_amount=D(40),
                        dated_days=D(2000), max_days_late=20)
    open_ = b.OpenFacts(positive=D(260), overdue=D(60), overdue_days=D(1200),
                        oldest_overdue_days=20)
    got = b.behaviour(applied, open_, b.Invoiced(D(300), D(300), D(260)))
    assert got == b.PaymentBehaviour(
        payment_index=60, days_beyond_terms=D("20.00"), average_days_to_pay=D("50.00"),
        paid_on_time_share=D("0.0000"), max_days_late=D("20.00"),
        amount_paid_365d=D(40), dso_days=D("78.00"), best_possible_dso_days=D("60.00"),
        average_days_delinquent=D("18.00"), invoiced_90d=D(300), invoiced_365d=D(300),
        highest_monthly_invoiced=D(260))


def test_nothing_to_weigh_and_nothing_invoiced():
    got = b.behaviour(b.Applied(), b.OpenFacts(), b.Invoiced())
    assert got.payment_index is None and got.days_beyond_terms is None
    assert got.average_days_to_pay is None and got.paid_on_time_share is None
    assert got.dso_days is None and got.best_possible_dso_days is None
    assert got.average_days_delinquent is None
    assert got.max_days_late == D("0.00") and got.amount_paid_365d == D(0)


def test_early_payments_weigh_negative_and_late_open_items_count():
    # 100 paid 12 days early; 50 open 30 days past due: (-1200 + 1500) / 150 = 2.00
    applied = b.Applied(amount=D(100), late_days=D(-1200), on_time=D(100), max_days_late=-12)
    open_ = b.OpenFacts(positive=D(50), overdue=D(50), overdue_days=D(1500),
                        oldest_overdue_days=30)
    assert b.days_beyond_terms(applied, open_) == D("2.00")
    assert b.behaviour(applied, open_, b.Invoiced()).max_days_late == D("30.00")
    only_early = b.behaviour(applied, b.OpenFacts(), b.Invoiced())
    assert only_early.days_beyond_terms == D("-12.00") and only_early.payment_index == 86
    assert only_early.max_days_late == D("0.00")  # max(0, ...)
    assert only_early.paid_on_time_share == D("1.0000")


def test_days_beyond_terms_rounds_half_up_to_two_decimals():
    # 1 unit 1 day late, 199 units on the due day: 1/200 = 0.005 -> 0.01
    applied = b.Applied(amount=D(200), late_days=D(1), on_time=D(199), max_days_late=1)
    assert b.days_beyond_terms(applied, b.OpenFacts()) == D("0.01")
    # a third: 0.33, and a share of 2/3 at four decimals
    third = b.Applied(amount=D(3), late_days=D(1), on_time=D(2), max_days_late=1)
    assert b.days_beyond_terms(third, b.OpenFacts()) == D("0.33")
    assert b.behaviour(third, b.OpenFacts(), b.Invoiced()).paid_on_time_share == D("0.6667")


def test_the_window_includes_today():
    today = dt.date(2026, 12, 31)
    assert b.window_start(today) == dt.date(2026, 1, 1)
    assert b.window_start(today, 90) == dt.date(2026, 10, 3)
