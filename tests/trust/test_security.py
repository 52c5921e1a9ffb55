"""Security promises: resource limits, rate limits, mass assignment, an append-only audit."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from app.main import create_app
from tests.helpers import account, check, days, exposure

PROBLEM = "application/problem+json"


async def test_bodies_over_64_kib_are_refused(api):
    await account(api, limit="1000")
    big = {"order_id": "O1", "customer_id": "C1", "amount": "1", "currency": "EUR",
           "channel": "x" * (65 * 1024)}
    r = await api.post("/v1/credit-checks", big)
    assert r.status_code == 413
    assert r.headers["content-type"] == PROBLEM and r.json()["code"] == "payload_too_large"
    assert (await api.get("/v1/orders/O1")).status_code == 404


async def test_chunked_bodies_are_counted_too(api):
    async def chunks():
        yield b'{"order_id": "O1", "customer_id": "C1", "amount": "1", "currency": "EUR", '
        for _ in range(100):
            yield b'"x": "' + b"y" * 1000 + b'", '
        yield b'"z": 1}'

    r = await api.request("POST", "/v1/credit-checks", content=chunks(),
                          headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["code"] == "payload_too_large"


async def test_snapshots_may_be_larger_but_are_bounded(api):
    await account(api, limit="1000000")
    items = [{"invoice_id": f"INV-{i:06d}", "amount": "1.25", "currency": "EUR",
              "due_on": days(30)} for i in range(2000)]
    r = await api.put("/v1/customers/C1/open-items", {"items": items}, role="ledger")
    assert r.status_code == 200, r.text
    assert (await exposure(api))["open_receivables"] == "2500.00"
    huge = b'{"items": [' + b" " * (17 * 1024 * 1024) + b"]}"
    r = await api.request("PUT", "/v1/customers/C1/open-items", role="ledger", content=huge,
                          headers={"content-type": "application/json"})
    assert r.status_code == 413


async def test_page_sizes_are_capped(api):
    assert (await api.get("/v1/holds", params={"limit": 201})).status_code == 422
    await account(api)
    r = await api.get("/v1/customers/C1/history", params={"limit": 1000})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "query.limit"


@pytest.mark.parametrize(("path", "method", "field", "body"), [
    ("/v1/credit-checks", "POST", "status",
     {"order_id": "O1", "customer_id": "C1", "amount": "1", "currency": "EUR",
      "status": "approved"}),
    ("/v1/credit-checks", "POST", "reserved",
     {"order_id": "O1", "customer_id": "C1", "amount": "1", "currency": "EUR",
      "reserved": "0"}),
    ("/v1/credit-checks", "POST", "decision_id",
     {"order_id": "O1", "customer_id": "C1", "amount": "1", "currency": "EUR",
      "decision_id": "X", "outcome": "approve"}),
    ("/v1/customers/C1", "PATCH", "open_orders", {"open_orders": "0"}),
    ("/v1/customers/C1", "PATCH", "effective_limit", {"effective_limit": "1000000"}),
    ("/v1/orders/O0", "PATCH", "status", {"amount": "1", "status": "shipped"}),
    ("/v1/orders/O0", "PATCH", "reserved", {"amount": "1", "reserved": "0"}),
])
async def test_clients_cannot_set_derived_fields(api, path, method, field, body):
    await account(api, limit="1000")
    await check(api, "O0", "10")
    r = await api.request(method, path, json=body)
    assert r.status_code == 422
    assert any(e["field"].endswith(field) for e in r.json()["errors"]), r.json()
    assert (await exposure(api))["open_orders"] == "10.00"


async def test_rate_limit_answers_429_with_retry_after(settings, keys, clean_db):
    app = create_app(settings.model_copy(update={"rate_limit_per_second": 1.0,
                                                 "rate_limit_burst": 3.0}))
    async with app.router.lifespan_context(app):
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
        auth = {"Authorization": f"Bearer {keys['controller']}"}
        statuses = [(await client.get("/v1/holds", headers=auth)).status_code
                    for _ in range(5)]
        assert statuses[:3] == [200, 200, 200] and statuses[3:] == [429, 429]
        r = await client.get("/v1/holds", headers=auth)
        assert r.headers["content-type"] == PROBLEM and r.json()["code"] == "rate_limited"
        assert int(r.headers["Retry-After"]) >= 1
        other = {"Authorization": f"Bearer {keys['admin']}"}
        assert (await client.get("/v1/holds", headers=other)).status_code == 200


async def test_every_change_is_audited_with_who_when_what_and_why(api):
    await account(api, limit="1000")
    await api.patch("/v1/customers/C1", {"credit_limit": "2000", "risk_class": "BB",
                                         "temporary_limit": {"amount": "100",
                                                             "expires_on": days(5)},
                                         "blocked": True, "block_reason": "audit",
                                         "reason": "quarterly review"}, role="controller")
    await api.patch("/v1/customers/C1", {"blocked": False}, role="controller")
    await check(api, "H", "2200")
    await check(api, "H2", "2150")
    await check(api, "A", "10")
    await api.post("/v1/orders/H/release", {"reason": "known customer"}, role="controller")
    await api.post("/v1/orders/H2/reject", {"reason": "too much"}, role="controller")
    await api.post("/v1/orders/A/cancel", {"reason": "customer called"}, role="order-entry")
    # After the checks, so that the effective limit they met is the one set above.
    await api.patch("/v1/customers/C1", {"temporary_limit": {"amount": "250",
                                                             "expires_on": days(9)},
                                         "reason": "peak season"}, role="controller")
    items = (await api.get("/v1/customers/C1/history")).json()["items"]
    by_event = {}
    for item in items:
        by_event.setdefault(item["event"], item)
    review, unblock, extension = reversed(
        [i for i in items if i["event"] == "account_changed"])
    assert review["actor"] == "test-controller" and review["note"] == "quarterly review"
    assert review["details"] == {"changes": {
        "credit_limit": {"old": "1000.00", "new": "2000.00"},
        "risk_class": {"old": "unrated", "new": "BB"},
        "blocked": {"old": False, "new": True},
        "block_reason": {"old": None, "new": "audit"},
        "temp_limit_amount": {"old": None, "new": "100.00"},
        "temp_limit_expires_on": {"old": None, "new": days(5)},
    }}, review
    assert unblock["actor"] == "test-controller" and unblock["note"] is None
    assert unblock["details"] == {"changes": {"blocked": {"old": True, "new": False},
                                              "block_reason": {"old": "audit", "new": None}}}
    assert extension["actor"] == "test-controller" and extension["note"] == "peak season"
    assert extension["details"] == {"changes": {
        "temp_limit_amount": {"old": "100.00", "new": "250.00"},
        "temp_limit_expires_on": {"old": days(5), "new": days(9)},
    }}, extension
    release = by_event["manual_release"]
    assert (release["actor"], release["order_id"], release["note"]) == (
        "test-controller", "H", "known customer")
    assert release["decision"]["outcome"] == "approve"
    assert release["decision"]["reasons"] == [
        {"code": "MANUAL_RELEASE", "message": "released by test-controller: known customer"}]
    reject = by_event["order_rejected"]
    assert (reject["actor"], reject["order_id"], reject["note"]) == (
        "test-controller", "H2", "too much")
    cancel = by_event["order_cancelled"]
    assert (cancel["actor"], cancel["order_id"], cancel["note"]) == (
        "test-order-entry", "A", "customer called")
    assert cancel["details"] == {"old_status": "approved", "released": "10.00"}
    assert all(i["at"] for i in items)


async def test_policy_changes_are_audited(api):
    body = {"prepay_required": False, "hold_band": "0.1", "max_days_past_due": 20,
            "prepay_days_past_due": 60, "overdue_tolerance": "5", "reason": "tighter"}
    assert (await api.put("/v1/policies/A", body, role="controller")).status_code == 200
    history = (await api.get("/v1/policies/A/history")).json()
    assert history[0]["actor"] == "test-controller" and history[0]["note"] == "tighter"
    assert history[0]["old"]["hold_band"].startswith("0.2")
    assert history[0]["new"]["max_days_past_due"] == 20


@pytest.mark.parametrize("statement", [
    "UPDATE credit_file SET note = 'forged'",
    "DELETE FROM credit_file",
    "UPDATE policy_changes SET actor = 'nobody'",
    "DELETE FROM policy_changes",
])
async def test_the_audit_trail_has_no_update_or_delete_path(api, db, statement):
    await account(api, limit="1000")
    await api.put("/v1/policies/B", {"prepay_required": False, "hold_band": "0.2",
                                     "max_days_past_due": 30, "prepay_days_past_due": 90,
                                     "overdue_tolerance": "0"})
    with pytest.raises(DBAPIError, match="append-only"):
        async with db.begin() as conn:
            await conn.execute(text(statement))
