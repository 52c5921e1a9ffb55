"""Credit accounts: create, replace, patch, temporary limits."""

from __future__ import annotations

from tests.helpers import account, check, days, events, exposure, history, invoice


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
    assert got["risk_class"] == "A" and got["effective_limit"] == "6000.00"
    assert got["created_at"] == acct["created_at"], "replaced, not created again"
    assert (await exposure(api, "ACME"))["available"] == "6000.00"
    assert await events(api, "ACME") == ["account_changed", "account_created"]


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
    got = (await api.get("/v1/customers/C1")).json()
    assert (got["credit_limit"], got["risk_class"], got["payment_terms_days"]) == \
        ("8000.00", "BB", 45)
    change = (await history(api))[0]
    assert change["event"] == "account_changed" and change["note"] == "review"
    assert set(change["details"]["changes"]) == {"credit_limit"}
    missing = await api.patch("/v1/customers/NOPE", {"credit_limit": "1"})
    assert missing.status_code == 404 and missing.json()["code"] == "customer_not_found"
    assert (await api.get("/v1/customers/NOPE")).status_code == 404, "a PATCH creates nothing"


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
    assert (await api.get("/v1/customers/C1")).json()["currency"] == "EUR"
    ex = await exposure(api)
    assert ex["currency"] == "EUR" and ex["open_receivables"] == "10.00"
    assert "account_changed" not in await events(api)
