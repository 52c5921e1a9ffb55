"""The use cases' pure decisions (app/credit/plans.py): no database, plain values."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

from app.credit.plans import (
    CreditState,
    HeldOrder,
    group_release_plan,
    manual_release,
    plan_check,
    reservation_expiry,
    without_own_reservation,
)
from app.credit.policy import Exposure, Outcome, Overdue, PolicyParams, ReasonCode
from app.customers.models import Account

TODAY = dt.date(2026, 12, 1)
NOW = dt.datetime(2026, 12, 1, 9, 30, tzinfo=dt.UTC)


def an_account(*, limit: str = "1000", receivables: str = "0", open_orders: str = "0",
               max_order_amount: str | None = None, payment_index: int | None = None,
               held_count: int = 0) -> Account:
    return Account(
        customer_id="C1", name="C1", currency="EUR", credit_limit=D(limit), risk_class="A",
        payment_terms_days=30, blocked=False, block_reason=None, temp_limit_amount=None,
        temp_limit_expires_on=None, review_due_on=None,
        max_order_amount=D(max_order_amount) if max_order_amount else None,
        payment_index=payment_index, open_receivables=D(receivables),
        open_orders=D(open_orders), held_amount=D(0), held_count=held_count,
        terms_version=3, ledger_version=5, created_at=NOW, updated_at=NOW)


def state(**kw) -> CreditState:
    return CreditState(an_account(**kw), PolicyParams(), Overdue(), policy_version=7)


def plan(s: CreditState | None, amount: str, *, guarded: bool = True):
    return plan_check(s, customer_id="C1", order_id="O1", amount=D(amount), currency="EUR",
                      channel="erp", actor="tester", at=NOW, today=TODAY, ttl_days=30,
                      entry_id="E1", guarded=guarded)


def test_an_approval_reserves_and_is_guarded_by_the_limit():
    p = plan(state(receivables="300"), "700")
    assert p.decision.outcome is Outcome.APPROVE and p.status == "approved"
    assert (p.reserve, p.held) == (D("700"), D(0))
    assert p.expires_at == NOW + dt.timedelta(days=30)
    assert p.guard is not None
    assert (p.guard.terms_version, p.guard.ledger_version, p.guard.policy_version) == (3, 5, 7)
    assert p.guard.within == D("1000") and p.guard.open_orders is None
    entry = p.entry()
    assert entry["available"] == D("0") and entry["open_receivables"] == D("300")
    assert entry["inputs"]["today"] == TODAY.isoformat()


def test_a_hold_reserves_nothing_and_is_guarded_by_the_open_orders_it_saw():
    p = plan(state(open_orders="900"), "200")
    assert p.decision.outcome is Outcome.HOLD and p.status == "held"
    assert (p.reserve, p.held) == (D(0), D("200"))
    assert p.expires_at is None
    assert p.guard is not None and p.guard.within is None and p.guard.open_orders == D("900")


def test_under_the_row_lock_there_is_no_guard():
    assert plan(state(), "10", guarded=False).guard is None


def test_an_unknown_customer_is_planned_like_any_other_order():
    p = plan(None, "10")
    assert p.status == "prepay" and not p.known and p.guard is None
    assert [r.code for r in p.decision.reasons] == [ReasonCode.UNKNOWN_CUSTOMER]
    assert p.entry()["available"] == D(0) and p.inputs is None


def test_the_entry_reports_the_exposure_the_write_landed_on():
    p = plan(state(open_orders="100"), "200")
    landed = p.entry(Exposure(D(0), D("300")))
    assert landed["open_orders"] == D("300") and landed["available"] == D("500")


def test_auto_release_takes_the_oldest_first_each_on_top_of_the_ones_before():
    s = state(open_orders="500", held_count=3)
    held = [HeldOrder("H1", D("300"), D(0), None, "C1"),
            HeldOrder("H2", D("300"), D(0), "erp", "C1"),   # no longer fits after H1
            HeldOrder("H3", D("150"), D("50"), None, "C1")]  # 100 remaining fits
    releases = group_release_plan({"C1": s}, held, TODAY)
    assert [r.order.order_id for r in releases] == ["H1", "H3"]
    assert [r.exposure.open_orders for r in releases] == [D("500"), D("800")]
    assert all(r.decision.primary_reason is ReasonCode.AUTO_RELEASE for r in releases)


def test_manual_release_names_who_and_why():
    decision = manual_release(state(open_orders="5000"), "ann", "CFO approved", TODAY)
    assert decision.approved and decision.reasons[0].code is ReasonCode.MANUAL_RELEASE
    assert decision.reasons[0].message == "released by ann: CFO approved"


def test_small_helpers():
    assert without_own_reservation(Exposure(D(5), D(100)), D(40)) == Exposure(D(5), D(60))
    assert reservation_expiry(NOW, 2) == NOW + dt.timedelta(days=2)
