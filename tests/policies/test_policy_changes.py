"""Risk-class policies: reading and changing one, and the checks deciding at that moment
(none lands under the old policy)."""

from __future__ import annotations

import asyncio

import pytest

from app import clock
from app.auth.roles import Caller, Role
from app.credit import sql
from app.credit.repository import load_locked
from app.policies.schemas import PolicyIn
from app.policies.service import put_policy
from tests.helpers import account, check, exposure, order

PREPAY_ALL = {"prepay_required": True, "hold_band": "0.20", "max_days_past_due": 30,
              "prepay_days_past_due": 90, "overdue_tolerance": "0", "reason": "freeze"}
CONTROLLER = Caller("k-test", "test-controller", Role.CONTROLLER)


async def test_a_check_decided_before_a_policy_change_cannot_land_after_it(api, monkeypatch):
    """The policy changes between the check's read and its write: the write must not land
    under the old parameters; the check decides again, under the new ones."""
    await account(api, limit="1000")
    original = sql.write
    changed = []

    async def change_policy_first(pg, w, **kw):
        if not changed:
            r = await api.put("/v1/policies/unrated", PREPAY_ALL, role="controller")
            assert r.status_code == 200, r.text
            changed.append(r.json())
        return await original(pg, w, **kw)

    monkeypatch.setattr(sql, "write", change_policy_first)
    decision = await check(api, "O1", "100")
    assert changed, "the policy changed while the check was deciding"
    assert decision["outcome"] == "prepay"
    assert [r["code"] for r in decision["reasons"]] == ["RISK_CLASS_PREPAY"]
    assert (await order(api, "O1"))["reserved"] == "0.00"
    assert (await exposure(api))["open_orders"] == "0.00"


async def test_a_policy_change_waits_for_checks_holding_the_account_lock(api, db):
    await account(api, limit="1000")
    async with db.begin() as conn:
        assert await load_locked(conn, "C1", clock.today()) is not None
        change = asyncio.create_task(put_policy(db, "unrated", PolicyIn(**PREPAY_ALL),
                                                CONTROLLER))
        await asyncio.sleep(0.3)
        assert not change.done(), "the change waits for the decision under the lock"
    await asyncio.wait_for(change, 5)
    assert (await api.get("/v1/policies/unrated", role="controller")).json()[
        "prepay_required"] is True


@pytest.mark.parametrize("risk_class", ["unrated", "BB"])
async def test_every_change_moves_the_version_the_guard_compares(api, db, risk_class):
    await account(api, limit="1000", risk_class=risk_class)
    async with db.begin() as conn:
        before = (await load_locked(conn, "C1", clock.today())).policy_version
    for _ in range(2):
        r = await api.put(f"/v1/policies/{risk_class}", PREPAY_ALL, role="controller")
        assert r.status_code == 200, r.text
        assert r.json()["prepay_required"] is True and r.json()["updated_by"] == "test-controller"
    async with db.begin() as conn:
        assert (await load_locked(conn, "C1", clock.today())).policy_version == before + 2
    changes = (await api.get(f"/v1/policies/{risk_class}/history", role="controller")).json()
    assert len(changes) == 2, "each PUT is on the policy's history, as the version says"


async def test_a_policy_change_gives_up_rather_than_stall_order_entry(api, db):
    """A long transaction holding account locks (an import): the change answers 503 busy
    within its lock wait and changes nothing, so checks queued behind it are not held up."""
    await account(api, limit="1000")
    async with db.begin() as conn:
        assert await load_locked(conn, "C1", clock.today()) is not None
        started = asyncio.get_running_loop().time()
        r = await api.put("/v1/policies/unrated", PREPAY_ALL, role="controller")
        waited = asyncio.get_running_loop().time() - started
    assert r.status_code == 503, r.text
    assert r.json()["code"] == "busy" and r.headers["Retry-After"] == "1"
    assert waited < 5
    policy = (await api.get("/v1/policies/unrated", role="controller")).json()
    assert policy["prepay_required"] is False
    history = (await api.get("/v1/policies/unrated/history", role="controller")).json()
    assert history == []
    assert (await check(api, "O1", "100"))["outcome"] == "approve"


async def test_policy_read_and_change_affects_decisions(api):
    got = (await api.get("/v1/policies/BB")).json()
    assert (got["hold_band"], got["max_days_past_due"], got["prepay_days_past_due"]) == \
        ("0.2", 30, 90)
    await account(api, limit="1000", risk_class="BB")
    assert (await check(api, "O1", "1100"))["outcome"] == "hold"
    r = await api.put("/v1/policies/BB", {"prepay_required": False, "hold_band": "0.05",
                                          "max_days_past_due": 10, "prepay_days_past_due": 60,
                                          "overdue_tolerance": "0", "reason": "tighten"})
    assert r.status_code == 200, r.text
    assert r.json()["updated_by"] == "test-admin"
    assert (await check(api, "O2", "1100"))["outcome"] == "prepay"
    assert (await api.get("/v1/policies/ZZZ")).status_code == 404
