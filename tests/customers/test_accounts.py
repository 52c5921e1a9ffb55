"""Credit accounts: create, replace, patch, temporary limits, history."""

from __future__ import annotations

from tests.helpers import account, check, days, exposure, invoice


async def test_put_creates_then_replaces(api):
    body = {"name": "Acme", "currency": "EUR", "credit_limit": "5000"}
    created = await api.put("/v1/customers/ACME", body)
    assert created.status_code == 201
    acct = created.json()
    assert acct["risk_class"] == "unrated" and acct["payment_terms_days"] == 30
    assert acct["effective_limit"] == "5000.00" and acct["blocked"] is False
    replaced = await api.put("/v1/customers/ACME", {**body, "credit_limit": "6000",
                                                    "risk_class": "A"})
    assert replaced.status_code == 200 and replaced.json()["credit_limit"] == "6000.00"
    got = (await api.get("/v1/customers/ACME")).json()
    assert got["risk_class"] == "A"


async def test_replacing_keeps_the_ledger(api):
    await account(api, limit="5000")
    await invoice(api, "I1", "1000")
    await check(api, "O1", "500")
    await account(api, limit="7000")
    ex = await exposure(api)
    assert (ex["open_receivables"], ex["open_orders"]) == ("1000.00", "500.00")


async def test_patch_changes_only_what_is_given(api):
    await account(api, limit="5000", risk_class="BB", payment_terms_days=45)
    r = await api.patch("/v1/customers/C1", {"credit_limit": "8000", "reason": "review"})
    assert r.status_code == 200
    acct = r.json()
    assert (acct["credit_limit"], acct["risk_class"], acct["payment_terms_days"]) == \
        ("8000.00", "BB", 45)
    assert (await api.patch("/v1/customers/NOPE", {"credit_limit": "1"})).status_code == 404


async def test_temporary_limit_adds_until_it_expires(api):
    await account(api, limit="1000")
    r = await api.patch("/v1/customers/C1", {"temporary_limit": {"amount": "500",
                                                                 "expires_on": days(0)}})
    acct = r.json()
    assert acct["effective_limit"] == "1500.00" and acct["temporary_limit"]["active"] is True
    assert (await check(api, "O1", "1500"))["outcome"] == "approve"
    r = await api.patch("/v1/customers/C1", {"temporary_limit": {"amount": "500",
                                                                 "expires_on": days(-1)}})
    assert r.json()["effective_limit"] == "1000.00"
    assert r.json()["temporary_limit"]["active"] is False
    r = await api.patch("/v1/customers/C1", {"temporary_limit": None})
    assert r.json()["temporary_limit"] is None


async def test_currency_cannot_change_while_there_is_exposure(api):
    await account(api, limit="1000")
    await invoice(api, "I1", "10")
    r = await api.patch("/v1/customers/C1", {"currency": "USD"})
    assert r.status_code == 409 and r.json()["code"] == "currency_change"


async def test_history_newest_first_with_who_and_why(api):
    await account(api, limit="1000")
    await api.patch("/v1/customers/C1", {"credit_limit": "2000", "reason": "annual review"})
    await check(api, "O1", "100")
    items = (await api.get("/v1/customers/C1/history")).json()["items"]
    assert [i["event"] for i in items] == ["credit_check", "account_changed", "account_created"]
    change = items[1]
    assert change["actor"] == "test-admin" and change["note"] == "annual review"
    assert change["details"]["changes"]["credit_limit"] == {"old": "1000.00",
                                                            "new": "2000.00"}
    assert items[0]["decision"]["outcome"] == "approve"
    assert items[0]["actor"] == "test-order-entry"


async def test_history_pages_with_a_cursor(api):
    await account(api, limit="100000")
    for i in range(7):
        await check(api, f"O{i}", "1")
    seen, cursor = [], None
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = (await api.get("/v1/customers/C1/history", params=params)).json()
        seen += [i["order_id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"O{i}" for i in reversed(range(7))] + [None]


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
