"""Credit groups, securities and currencies in the pure rules and plans (DESIGN.md 2.6):
no database."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from decimal import Decimal as D

from app.credit.codec import state_from_doc, state_to_doc
from app.credit.plans import (
    CreditState,
    HeldOrder,
    dispatch_decision,
    group_release_plan,
    plan_check,
)
from app.credit.policy import (
    AccountTerms,
    Exposure,
    GroupTerms,
    Overdue,
    PolicyParams,
    Security,
    evaluate,
)
from app.customers.models import Account
from app.fx.convert import Conversion, convert

TODAY = dt.date(2026, 12, 2)
NOW = dt.datetime(2026, 12, 2, 9, 0, tzinfo=dt.UTC)
NONE = Exposure(D(0), D(0))


def group(limit: str = "10000", recv: str = "0", orders: str = "0", *,
          blocked: bool = False) -> GroupTerms:
    return GroupTerms("G1", "EUR", D(limit), blocked, "insolvency of the parent" if blocked
                      else None, Exposure(D(recv), D(orders)), version=4)


def codes(amount: str, g: GroupTerms | None, *, limit: str = "100000",
          limit_rules: bool = True) -> list[str]:
    terms = AccountTerms(currency="EUR", credit_limit=D(limit))
    decision = evaluate(terms, PolicyParams(), NONE, Overdue(), D(amount), TODAY,
                        limit_rules=limit_rules, group=g)
    return [r.code.value for r in decision.reasons]


def test_the_group_limit_binds_with_the_members_hold_band():
    assert codes("4000", group(recv="3000", orders="3000")) == ["WITHIN_LIMIT"]
    assert codes("4000.01", group(recv="3000", orders="3000")) == ["GROUP_OVER_LIMIT"]
    assert codes("12000", group()) == ["GROUP_OVER_LIMIT"]  # the band's edge holds
    assert codes("12000.01", group()) == ["GROUP_OVER_LIMIT_BEYOND_TOLERANCE"]


def test_group_rules_sit_right_after_the_accounts_limit_rules():
    assert codes("12000", group(blocked=True), limit="11000") == [
        "OVER_LIMIT", "GROUP_BLOCKED", "GROUP_OVER_LIMIT"]


def test_a_blocked_group_prepays_even_without_its_limit_rules():
    assert codes("1", group(blocked=True), limit_rules=False) == ["GROUP_BLOCKED"]
    assert codes("50000", group(), limit_rules=False) == ["WITHIN_LIMIT"]


def test_no_group_no_group_rules():
    assert codes("50000", None) == ["WITHIN_LIMIT"]


def account(customer_id: str = "C1", *, limit: str = "5000", orders: str = "0",
            currency: str = "EUR") -> Account:
    return Account(
        customer_id=customer_id, name=customer_id, currency=currency, credit_limit=D(limit),
        risk_class="A", payment_terms_days=30, blocked=False, block_reason=None,
        temp_limit_amount=None, temp_limit_expires_on=None, review_due_on=None,
        max_order_amount=None, payment_index=None, open_receivables=D(0),
        open_orders=D(orders), held_amount=D(0), held_count=1, terms_version=1,
        ledger_version=1, created_at=NOW, updated_at=NOW, group_id="G1")


def member(customer_id: str, g: GroupTerms, **kw: str) -> CreditState:
    return CreditState(account(customer_id, **kw), PolicyParams(), Overdue(), 0, g)


def test_dispatch_counts_the_orders_own_reservation_once_in_the_group_too():
    g = group(limit="1000", orders="1000")  # this order's 600 included
    s = member("C1", g, orders="600")
    assert dispatch_decision(s, D("600"), D("600"), False, TODAY).approved
    assert not dispatch_decision(replace(s, group=group(limit="999.99", orders="1000")),
                                 D("600"), D("600"), False, TODAY).approved


def test_group_release_goes_oldest_first_across_members_each_on_top_of_the_ones_before():
    g = group(limit="1000", orders="200")
    states = {"A": member("A", g), "B": member("B", g)}
    held = [HeldOrder("B1", D("500"), D(0), None, "B"),
            HeldOrder("A1", D("400"), D(0), None, "A"),  # 200+500+400 > 1000
            HeldOrder("A2", D("300"), D(0), None, "A")]  # 200+500+300 fits
    releases = group_release_plan(states, held, TODAY)
    assert [r.order.order_id for r in releases] == ["B1", "A2"]
    assert [r.group.exposure.open_orders for r in releases if r.group] == [D("200"), D("700")]
    assert [r.exposure.open_orders for r in releases] == [D(0), D(0)]


def test_a_guarded_members_approval_carries_the_groups_version_and_limit():
    g = group(limit="1000", orders="100")
    p = plan_check(member("A", g), customer_id="A", order_id="O", amount=D("100"),
                   currency="EUR", channel=None, actor="t", at=NOW, today=TODAY,
                   ttl_days=30, entry_id="E", guarded=True)
    assert p.guard is not None
    assert (p.guard.group_id, p.guard.group_version, p.guard.group_within) == ("G1", 4, D(1000))
    assert p.entry()["details"]["group"] == {
        "group_id": "G1", "open_receivables": "0", "open_orders": "100",
        "effective_limit": "1000", "available": "800"}
    held = plan_check(member("A", g), customer_id="A", order_id="O", amount=D("950"),
                      currency="EUR", channel=None, actor="t", at=NOW, today=TODAY,
                      ttl_days=30, entry_id="E", guarded=True)
    assert held.guard is not None and held.guard.group_exposure == g.exposure


def test_securities_count_from_their_first_to_their_last_day():
    terms = AccountTerms(currency="EUR", credit_limit=D("1000"), securities=(
        Security(D("500"), TODAY, TODAY + dt.timedelta(days=10)),))
    assert terms.effective_limit(TODAY - dt.timedelta(days=1)) == D("1000")
    assert terms.effective_limit(TODAY) == D("1500")
    assert terms.effective_limit(TODAY + dt.timedelta(days=10)) == D("1500")
    assert terms.effective_limit(TODAY + dt.timedelta(days=11)) == D("1000")


def test_conversion_rounds_half_even_to_four_decimals():
    assert convert(D("1.00005"), D("1")) == D("1.0000")   # to even, down
    assert convert(D("1.00015"), D("1")) == D("1.0002")   # to even, up
    assert convert(D("0.25"), D("0.0003")) == D("0.0001")  # 0.000075 -> 0.0001
    assert convert(D("0.25"), D("0.0001")) == D("0.0000")  # 0.000025 -> 0.0000
    same = Conversion.of(D("10"), "EUR", "EUR", None)
    assert (same.converted_amount, same.fx_rate) == (D("10"), None)


def test_an_order_in_another_currency_is_decided_and_reserved_converted():
    s = CreditState(account(limit="1000"), PolicyParams(), Overdue())
    p = plan_check(s, customer_id="C1", order_id="O", amount=D("1000"), currency="USD",
                   channel=None, actor="t", at=NOW, today=TODAY, ttl_days=30, entry_id="E",
                   guarded=True, fx_rate=D("0.92345"))
    assert p.converted_amount == D("923.4500") and p.reserve == D("923.4500")
    assert p.decision.approved
    entry = p.entry()
    assert (entry["amount"], entry["currency"], entry["converted_amount"], entry["fx_rate"]) == (
        D("1000"), "USD", D("923.4500"), D("0.92345"))
    over = plan_check(s, customer_id="C1", order_id="O", amount=D("1100"), currency="USD",
                      channel=None, actor="t", at=NOW, today=TODAY, ttl_days=30,
                      entry_id="E", guarded=True, fx_rate=D("0.92345"))
    assert over.decision.outcome.value == "hold" and over.held == D("1015.7950")


def test_the_cached_state_keeps_group_and_securities():
    s = replace(member("A", group(orders="12.5")),
                securities=(Security(D("700.1234"), TODAY, TODAY),))
    assert state_from_doc(state_to_doc(s)) == s


def test_a_deadlock_is_told_apart_down_the_chain_of_causes():
    from app.errors import is_deadlock

    class Broken(Exception):
        sqlstate = "40P01"

    outer = RuntimeError("wrapped")
    outer.__cause__ = Broken()
    assert is_deadlock(outer) and not is_deadlock(RuntimeError("other"))
