"""Securities (DESIGN.md 2.6): the API, what they add to the effective limit and exposure,
their lapse, other currencies, and LIMIT_EXPIRING."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import text

from app import clock
from app.db.engine import Database
from app.monitoring.sweep import sweep
from tests.api import Api
from tests.helpers import account, check, days, events, exposure, history, order

PATH = "/v1/customers/C1/securities"


def body(amount: str = "500", valid_from: int = -10, valid_until: int = 100, **extra: Any
         ) -> dict[str, Any]:
    return {"kind": "credit_insurance", "amount": amount, "currency": "EUR",
            "valid_from": days(valid_from), "valid_until": days(valid_until), **extra}


async def put(api: Api, security_id: str = "S1", expect: int | None = 201, **kw: Any
              ) -> dict[str, Any]:
    r = await api.put(f"{PATH}/{security_id}", body(**kw), role="controller")
    if expect is not None:
        assert r.status_code == expect, r.text
    return dict(r.json())


def move_clock(monkeypatch: pytest.MonkeyPatch) -> Callable[[int], None]:
    real = clock.now

    def to(days_ahead: int) -> None:
        monkeypatch.setattr(clock, "now", lambda: real() + dt.timedelta(days=days_ahead))

    return to


async def rate(db: Database, from_: str, to: str, as_of: dt.date, value: str) -> None:
    async with db.begin() as conn:
        await conn.execute(text(
            "INSERT INTO fx_rates (from_currency, to_currency, as_of, rate, actor, updated_at)"
            " VALUES (:f, :t, :d, :r, 'test', now())"),
            {"f": from_, "t": to, "d": as_of, "r": Decimal(value)})


async def open_kinds(api: Api) -> list[str]:
    r = await api.get("/v1/alerts", params={"customer_id": "C1", "limit": 200})
    assert r.status_code == 200, r.text
    return sorted(a["kind"] for a in r.json()["items"] if a["status"] != "resolved")


# ---- the API ----------------------------------------------------------------------------------

async def test_create_replace_read_and_delete(api, db):
    await account(api, limit="1000")
    created = await put(api, provider="Allianz Trade", reference="POL-1", reason="new cover")
    assert created == {
        "customer_id": "C1", "security_id": "S1", "kind": "credit_insurance",
        "amount": "500.00", "currency": "EUR", "valid_from": days(-10),
        "valid_until": days(100), "provider": "Allianz Trade", "reference": "POL-1",
        "converted_amount": "500.00", "fx_rate": None, "valid_today": True,
        "created_at": created["created_at"], "updated_at": created["updated_at"]}
    async with db.autocommit() as conn:
        version = await conn.scalar(text(
            "SELECT terms_version FROM accounts WHERE customer_id = 'C1'"))
    # The same security again, spelled otherwise: 200, and nothing is written.
    again = await put(api, expect=200, amount="500.0000", provider="Allianz Trade",
                      reference="POL-1")
    assert again == created
    assert (await events(api)).count("security_added") == 1
    changed = await put(api, expect=200, amount="800", provider="Allianz Trade")
    assert changed["amount"] == "800.00" and changed["reference"] is None
    [entry] = [e for e in await history(api) if e["event"] == "security_changed"]
    assert entry["details"] == {"security_id": "S1", "changes": {
        "amount": {"old": "500.00", "new": "800.00"}, "reference": {"old": "POL-1",
                                                                    "new": None}}}
    async with db.autocommit() as conn:
        assert await conn.scalar(text(
            "SELECT terms_version FROM accounts WHERE customer_id = 'C1'")) == version + 1
    await put(api, "S0", kind="bank_guarantee")
    listed = (await api.get(PATH, role="controller")).json()
    assert [s["security_id"] for s in listed] == ["S0", "S1"]
    assert listed[0]["kind"] == "bank_guarantee"
    one = await api.get(f"{PATH}/S1", role="controller")
    assert one.status_code == 200 and one.json() == changed
    r = await api.request("DELETE", f"{PATH}/S1", role="controller")
    assert r.status_code == 204 and r.content == b""
    r = await api.get(f"{PATH}/S1", role="controller")
    assert r.status_code == 404 and r.json()["code"] == "security_not_found"
    r = await api.request("DELETE", f"{PATH}/S1", role="controller")
    assert r.status_code == 404 and r.json()["code"] == "security_not_found"
    file = await history(api)
    [removed] = [e for e in file if e["event"] == "security_removed"]
    assert removed["details"]["amount"] == "800.00" and removed["actor"] == "test-controller"
    [added] = [e for e in file if e["event"] == "security_added"
               and e["details"]["security_id"] == "S1"]
    assert added["note"] == "new cover" and added["details"]["converted_amount"] == "500.00"


async def test_unknown_customer_and_roles(api):
    r = await api.put("/v1/customers/NOPE/securities/S1", body())
    assert r.status_code == 404 and r.json()["code"] == "customer_not_found"
    for path in ("/v1/customers/NOPE/securities", "/v1/customers/NOPE/securities/S1"):
        r = await api.get(path)
        assert r.status_code == 404 and r.json()["code"] == "customer_not_found"
    r = await api.request("DELETE", "/v1/customers/NOPE/securities/S1")
    assert r.status_code == 404 and r.json()["code"] == "customer_not_found"
    await account(api)
    for role in ("order-entry", "warehouse", "ledger"):
        r = await api.put(f"{PATH}/S1", body(), role=role)
        assert r.status_code == 403, role
        assert (await api.get(PATH, role=role)).status_code == 403
        assert (await api.request("DELETE", f"{PATH}/S1", role=role)).status_code == 403
    assert (await api.get(PATH, role="controller")).json() == []
    await put(api)  # a controller may; an admin too
    assert (await api.get(f"{PATH}/S1", role="admin")).status_code == 200


@pytest.mark.parametrize(("change", "field"), [
    ({"valid_until": days(-11)}, "body.valid_until"),
    ({"kind": "pledge"}, "body.kind"),
    ({"amount": "0"}, "body.amount"),
    ({"amount": "-5"}, "body.amount"),
    ({"currency": "eur"}, "body.currency"),
    ({"valid_from": "2026-02-30"}, "body.valid_from"),
    ({"provider": ""}, "body.provider"),
    ({"extra": 1}, "body.extra"),
])
async def test_bad_bodies_are_refused(api, change, field):
    await account(api)
    r = await api.put(f"{PATH}/S1", {**body(), **change})
    assert r.status_code == 422, r.text
    assert field in [e["field"] for e in r.json()["errors"]]
    assert (await api.get(PATH)).json() == []


async def test_a_security_may_last_one_day(api):
    await account(api, limit="1000")
    one_day = await put(api, valid_from=0, valid_until=0)
    assert one_day["valid_today"] is True
    assert (await exposure(api))["secured"] == "500.00"


# ---- what it adds -----------------------------------------------------------------------------

async def test_effective_limit_and_exposure_count_the_valid_ones(api):
    await account(api, limit="1000")
    before = await exposure(api)  # cached now: the PUT below must retire it
    assert before["secured"] == "0.00" and before["effective_limit"] == "1000.00"
    await put(api, "S1", amount="500")
    await put(api, "S2", amount="300", valid_from=1)  # not yet valid
    await put(api, "S3", amount="200", valid_from=-30, valid_until=-1)  # lapsed
    shown = await exposure(api)
    assert (shown["credit_limit"], shown["secured"], shown["effective_limit"],
            shown["available"]) == ("1000.00", "500.00", "1500.00", "1500.00")
    acct = (await api.get("/v1/customers/C1")).json()
    assert acct["credit_limit"] == "1000.00" and acct["effective_limit"] == "1500.00"
    listed = {s["security_id"]: s["valid_today"]
              for s in (await api.get(PATH)).json()}
    assert listed == {"S1": True, "S2": False, "S3": False}
    r = await api.patch("/v1/customers/C1", {"credit_limit": "2000"})
    assert r.json()["effective_limit"] == "2500.00"


async def test_a_check_approves_thanks_to_a_security(api):
    await account(api, limit="1000")
    await put(api, amount="500")
    decided = await check(api, "O1", "1400")
    assert decided["outcome"] == "approve", decided
    assert decided["effective_limit"] == "1500.00" and decided["available"] == "100.00"
    assert (await check(api, "O2", "150"))["outcome"] == "hold"  # 1550 > 1500


async def test_a_new_security_releases_held_orders_that_now_fit(api):
    await account(api, limit="1000")
    assert (await check(api, "H1", "1100"))["outcome"] == "hold"
    await put(api, amount="500")
    released = await order(api, "H1")
    assert released["status"] == "approved"
    assert released["decisions"][-1]["reasons"][0]["code"] == "AUTO_RELEASE"
    assert (await exposure(api))["open_orders"] == "1100.00"


async def test_changes_of_todays_limit_are_events(api):
    await account(api, limit="1000")
    await put(api, "S1", amount="500")
    await put(api, "S2", amount="300", valid_from=5)  # not counting today: no event
    assert (await api.request("DELETE", f"{PATH}/S1")).status_code == 204
    items = (await api.get("/v1/events", params={"type": "account.limit_changed",
                                                 "limit": 100})).json()["items"]
    assert [e["data"]["effective_limit"] for e in items] == ["1500.00", "1000.00"]


# ---- time --------------------------------------------------------------------------------------

async def test_valid_on_its_last_day_and_gone_the_day_after(api, monkeypatch):
    await account(api, limit="1000")
    await put(api, amount="500", valid_until=2)
    assert (await check(api, "O1", "1100"))["outcome"] == "approve"
    to = move_clock(monkeypatch)
    to(2)
    assert (await exposure(api))["secured"] == "500.00"
    assert (await api.get(f"{PATH}/S1")).json()["valid_today"] is True
    to(3)
    lapsed = await exposure(api)
    # The lapse frees no reservation: O1 stays approved; the limit is smaller.
    assert (lapsed["secured"], lapsed["effective_limit"], lapsed["open_orders"],
            lapsed["available"]) == ("0.00", "1000.00", "1100.00", "-100.00")
    assert (await order(api, "O1"))["status"] == "approved"
    assert (await api.get(f"{PATH}/S1")).json()["valid_today"] is False
    assert (await api.get("/v1/customers/C1")).json()["effective_limit"] == "1000.00"
    decided = await check(api, "O2", "50")  # 1150 > 1000, within the hold band
    assert decided["outcome"] == "hold" and decided["effective_limit"] == "1000.00"


async def test_another_currency_counts_at_each_days_latest_rate(api, db, monkeypatch):
    await account(api, limit="1000")
    r = await api.put(f"{PATH}/S1", {**body(amount="1000"), "currency": "USD"})
    assert r.status_code == 422 and r.json()["code"] == "fx_rate_missing", r.text
    today = clock.today()
    await rate(db, "USD", "EUR", today + dt.timedelta(days=1), "0.9")  # not used before its day
    r = await api.put(f"{PATH}/S1", {**body(amount="1000"), "currency": "USD"})
    assert r.status_code == 422 and r.json()["code"] == "fx_rate_missing", r.text
    await rate(db, "EUR", "USD", today, "1.1")  # the inverse pair is never used
    r = await api.put(f"{PATH}/S1", {**body(amount="1000"), "currency": "USD"})
    assert r.status_code == 422 and r.json()["code"] == "fx_rate_missing", r.text
    await rate(db, "USD", "EUR", today - dt.timedelta(days=3), "0.8")
    await rate(db, "USD", "EUR", today - dt.timedelta(days=1), "0.85555")
    r = await api.put(f"{PATH}/S1", {**body(amount="1000.25"), "currency": "USD"})
    assert r.status_code == 201, r.text
    # 1000.25 x 0.85555 = 855.763887..., half-even to 4 decimals
    assert (r.json()["converted_amount"], r.json()["fx_rate"]) == ("855.7639", "0.85555")
    shown = await exposure(api)
    assert (shown["secured"], shown["effective_limit"]) == ("855.7639", "1855.7639")
    assert (await check(api, "O1", "1855.7639"))["outcome"] == "approve"
    to = move_clock(monkeypatch)
    to(1)
    shown = await exposure(api)
    assert (shown["secured"], shown["effective_limit"]) == ("900.225", "1900.225")
    assert (await api.get(f"{PATH}/S1")).json()["fx_rate"] == "0.9"


# ---- LIMIT_EXPIRING ----------------------------------------------------------------------------

async def test_limit_expiring_is_raised_14_days_ahead_by_the_sweep(api, db, monkeypatch):
    await account(api, limit="1000")
    await put(api, amount="500", valid_until=20)
    assert await open_kinds(api) == []
    assert (await sweep(db)).raised == 0
    to = move_clock(monkeypatch)
    to(5)  # 15 days left
    assert (await sweep(db)).raised == 0
    to(6)  # 14 days left: inclusive
    assert (await sweep(db)).raised == 1
    r = await api.get("/v1/alerts", params={"customer_id": "C1", "kind": "LIMIT_EXPIRING"})
    [alert] = r.json()["items"]
    assert alert["details"] == {
        "expires_on": days(14), "days_left": 14,
        "expiring": [{"source": "security:S1", "amount": "500.00", "expires_on": days(14)}]}
    to(20)  # the last day: still expiring
    await sweep(db)
    assert await open_kinds(api) == ["LIMIT_EXPIRING"]
    to(21)  # lapsed: nothing expires any more
    assert (await sweep(db)).resolved == 1
    assert await open_kinds(api) == []


async def test_a_security_put_close_to_its_end_warns_at_once(api):
    await account(api, limit="1000")
    await put(api, amount="500", valid_until=14)
    assert await open_kinds(api) == ["LIMIT_EXPIRING"]
    await put(api, expect=200, amount="500", valid_until=60)  # extended
    assert await open_kinds(api) == []


async def test_removing_a_security_can_exceed_the_limit(api):
    await account(api, limit="1000")
    await put(api, amount="500")
    assert (await check(api, "O1", "1200"))["outcome"] == "approve"
    assert await open_kinds(api) == []  # 80 % of 1500
    assert (await api.request("DELETE", f"{PATH}/S1")).status_code == 204
    assert await open_kinds(api) == ["LIMIT_EXCEEDED", "UTILISATION_HIGH"]
    assert (await order(api, "O1"))["status"] == "approved"


async def test_the_sweep_sees_a_limit_made_of_securities_alone(api, db, monkeypatch):
    await account(api, limit="0")
    await put(api, "S1", amount="1000")
    await put(api, "S2", amount="100", valid_until=1)
    assert (await check(api, "O1", "950"))["outcome"] == "approve"  # 86 % of 1100
    assert await open_kinds(api) == ["LIMIT_EXPIRING"]
    move_clock(monkeypatch)(2)  # S2 lapsed: 95 % of 1000
    await sweep(db)
    assert await open_kinds(api) == ["UTILISATION_HIGH"]
