"""The console over HTTP (in-process): sign-in rules, sessions, CSRF, and that every action
goes through the services the API uses (same results, same credit-file entries)."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import text

from app.auth.keys import create_key, revoke_key
from app.auth.roles import Role
from tests.console.conftest import Browser
from tests.helpers import account, check, days, exposure, history, invoice, order


async def two_holds(api) -> None:
    await account(api, "C1", "1000")
    assert (await check(api, "O1", "1100"))["outcome"] == "hold"
    assert (await check(api, "O2", "1150"))["outcome"] == "hold"


# ---- signing in ----------------------------------------------------------------------------

@pytest.mark.parametrize("role", ["order-entry", "warehouse", "ledger"])
async def test_narrow_roles_cannot_sign_in(browser: Browser, keys, role):
    r = await browser.sign_in(keys[role])
    assert r.status_code == 403
    assert f"A {role} key cannot sign in to the console" in r.text
    assert "creditgate_console" not in browser.http.cookies
    assert (await browser.get("/console/holds")).headers["location"] == "/console/sign-in"


async def test_unknown_and_revoked_keys_cannot_sign_in(browser: Browser, keys):
    for key in (keys["revoked"], "cg_not-a-key"):
        r = await browser.sign_in(key)
        assert r.status_code == 401
        assert "This key is unknown or revoked." in r.text


async def test_sign_in_needs_the_form_rendered_for_this_browser(browser: Browser, keys):
    r = await browser.post("/console/sign-in", {"api_key": keys["controller"]}, csrf=False)
    assert r.status_code == 403
    assert "This sign-in form is out of date" in r.text
    assert "creditgate_console" not in browser.http.cookies


async def test_the_session_cookie_is_signed_http_only_strict_and_expiring(browser: Browser,
                                                                          keys, settings):
    r = await browser.sign_in(keys["admin"])
    assert r.status_code == 303 and r.headers["location"] == "/console/"
    cookie = next(c for c in r.headers.get_list("set-cookie")
                  if c.startswith("creditgate_console="))
    attrs = {a.strip().split("=")[0].lower(): a for a in cookie.split(";")}
    assert "httponly" in attrs
    assert attrs["samesite"].strip().lower() == "samesite=strict"
    assert attrs["path"].strip() == "Path=/console"
    assert attrs["max-age"].strip() == f"Max-Age={settings.console_session_minutes * 60}"
    # The key itself is never in the cookie; tampering with the cookie ends the session.
    value = browser.http.cookies["creditgate_console"]
    assert keys["admin"] not in value
    browser.http.cookies.set("creditgate_console", value[:-2] + "xx", path="/console")
    assert (await browser.get("/console/")).status_code == 303


async def test_pages_need_a_session_and_carry_a_strict_csp(browser: Browser, keys):
    for path in ("/console/", "/console/holds", "/console/alerts", "/console/policies"):
        r = await browser.get(path)
        assert r.status_code == 303 and r.headers["location"] == "/console/sign-in"
    await browser.sign_in(keys["controller"])
    r = await browser.get("/console/")
    assert r.status_code == 200
    csp = r.headers["content-security-policy"]
    assert csp.startswith("default-src 'self'") and "unsafe" not in csp
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["x-frame-options"] == "DENY"
    # No inline script or style in any page: scripts and styles come from /console/static.
    assert not re.search(r"<script(?![^>]*\bsrc=)", r.text)
    assert "style=" not in r.text and "<style" not in r.text


async def test_sign_out_revokes_the_session_on_the_server(controller: Browser):
    stolen = controller.http.cookies["creditgate_console"]
    r = await controller.post("/console/sign-out", {})
    assert r.status_code == 303 and r.headers["location"].startswith("/console/sign-in")
    controller.http.cookies.set("creditgate_console", stolen, path="/console")
    r = await controller.get("/console/holds")
    assert r.status_code == 303 and r.headers["location"] == "/console/sign-in"


async def test_revoking_the_key_ends_its_console_sessions(api, browser, db):
    async with db.begin() as conn:
        name, key = await create_key(conn, Role.CONTROLLER, None)
    assert (await browser.sign_in(key)).status_code == 303
    assert (await browser.get("/console/")).status_code == 200
    async with db.begin() as conn:
        await revoke_key(conn, name)
    r = await browser.get("/console/")
    assert r.status_code == 303 and r.headers["location"] == "/console/sign-in"
    assert (await browser.sign_in(key)).status_code == 401


async def test_an_expired_session_is_refused(api, controller: Browser, db):
    assert (await controller.get("/console/")).status_code == 200
    async with db.begin() as conn:
        await conn.execute(text("UPDATE console_sessions SET expires_at = now() - "
                                "interval '1 second' WHERE revoked_at IS NULL"))
    assert (await controller.get("/console/")).status_code == 303


# ---- CSRF ------------------------------------------------------------------------------------

async def test_a_state_changing_request_without_the_csrf_token_is_refused(api, controller):
    await two_holds(api)
    form = [("action", "release"), ("order_id", "O1"), ("reason", "ok")]
    r = await controller.post("/console/holds", form, csrf=False)
    assert r.status_code == 403
    assert "security token is missing or wrong" in r.text
    r = await controller.post("/console/holds", [*form, ("csrf_token", "forged")], csrf=False)
    assert r.status_code == 403
    r = await controller.post("/console/holds", form, origin="https://evil.example")
    assert r.status_code == 403
    r = await controller.post("/console/sign-out", {}, csrf=False)
    assert r.status_code == 403
    assert (await order(api, "O1"))["status"] == "held"
    # The token may come as htmx's header instead of the form field.
    r = await controller.http.post(
        "/console/holds", content="action=release&order_id=O1&reason=ok",
        headers={"Content-Type": "application/x-www-form-urlencoded",
                 "X-CSRF-Token": controller.csrf or ""})
    assert r.status_code == 200
    assert (await order(api, "O1"))["status"] == "approved"


async def test_a_csrf_token_of_another_session_is_refused(api, app, keys, controller):
    await two_holds(api)
    other = Browser(app)
    await other.sign_in(keys["admin"])
    controller.csrf = other.csrf
    r = await controller.post("/console/holds", [("action", "release"), ("order_id", "O1"),
                                                 ("reason", "ok")])
    assert r.status_code == 403
    await other.close()


# ---- the hold queue --------------------------------------------------------------------------

async def test_release_two_held_orders_in_one_action(api, controller):
    await two_holds(api)
    page = await controller.get("/console/holds")
    assert 'value="O1"' in page.text and 'value="O2"' in page.text
    before = await exposure(api)
    r = await controller.post("/console/holds", [
        ("action", "release"), ("order_id", "O1"), ("order_id", "O2"),
        ("reason", "CFO approved")])
    assert r.status_code == 200
    assert "Released 2 orders: O1, O2." in r.text
    assert 'value="O1"' not in r.text
    for order_id in ("O1", "O2"):
        found = await order(api, order_id)
        assert found["status"] == "approved" and found["released"] is True
    after = await exposure(api)
    assert before["open_orders"] == "0.00" and after["open_orders"] == "2250.00"
    releases = [e for e in await history(api) if e["event"] == "manual_release"]
    assert {e["order_id"] for e in releases} == {"O1", "O2"}
    assert {(e["actor"], e["note"]) for e in releases} == {("test-controller", "CFO approved")}
    assert releases[0]["decision"]["reasons"][0]["code"] == "MANUAL_RELEASE"


async def test_reject_and_the_refusals_are_sentences_next_to_the_fields(api, controller):
    await two_holds(api)
    r = await controller.post("/console/holds", [("action", "reject"), ("reason", "")])
    assert r.status_code == 422
    assert '<span class="error" id="order_id-error">Choose at least one held order.</span>' \
        in r.text
    assert 'id="reason-error">String should have at least 1 character.</span>' in r.text
    r = await controller.post("/console/holds", [("action", "reject"), ("order_id", "O2"),
                                                 ("order_id", "NOPE"), ("reason", "no")])
    assert r.status_code == 200
    assert "Rejected 1 order: O2." in r.text and "NOPE: no order NOPE" in r.text
    assert (await order(api, "O2"))["status"] == "rejected"
    assert (await order(api, "O1"))["status"] == "held"


async def test_the_hold_queue_filters(api, controller):
    await two_holds(api)
    await account(api, "C2", "500", risk_class="BB")
    await invoice(api, "I2", "100", customer_id="C2", due_in=-40)
    assert (await check(api, "O3", "50", customer_id="C2"))["outcome"] == "hold"
    shown = await controller.get("/console/holds?reason=OVERDUE_RECEIVABLES")
    assert 'value="O3"' in shown.text and 'value="O1"' not in shown.text
    shown = await controller.get("/console/holds?risk_class=unrated&min_amount=1120")
    assert 'value="O2"' in shown.text and 'value="O1"' not in shown.text
    assert 'value="O3"' not in shown.text
    shown = await controller.get("/console/holds?max_amount=1100&customer_id=C1")
    assert 'value="O1"' in shown.text and 'value="O2"' not in shown.text
    shown = await controller.get("/console/holds?min_age_days=1")
    assert "No held orders match these filters." in shown.text
    bad = await controller.get("/console/holds?min_age_days=soon&min_amount=-1")
    assert bad.status_code == 422
    assert 'id="min_age_days-error">Must be a whole number.' in bad.text
    assert 'id="min_amount-error">Must be a decimal number' in bad.text


# ---- dashboard and customer ------------------------------------------------------------------

async def test_dashboard_and_customer_page_show_the_figures(api, controller):
    await two_holds(api)
    await account(api, "C2", "1000")
    await check(api, "O3", "850", customer_id="C2")
    await invoice(api, "I-old", "300", customer_id="C2", due_in=-70)
    board = await controller.get("/console/")
    assert '<span class="figure" id="holds-open">2</span>' in board.text
    assert "2,250.00 EUR" in board.text  # the held amount
    assert "Customer C2" in board.text and "115.0 %" in board.text
    page = await controller.get("/console/customers/C2")
    assert page.status_code == 200
    assert 'data-exposure="1150.0000"' in page.text and 'data-over-limit="true"' in page.text
    assert "Aging of open receivables in EUR: 0\u201330 days 0.00 EUR, 31\u201360 days 0.00 " \
           "EUR, 61\u201390 days 300.00 EUR, 90+ days 0.00 EUR" in page.text
    assert "Invoice posted" in page.text and "Credit check" in page.text
    missing = await controller.get("/console/customers/NOPE")
    assert missing.status_code == 404 and "no credit account NOPE" in missing.text


async def test_the_customer_page_shows_securities_and_the_group(api, controller, db):
    await account(api, "C1", "1000")
    await account(api, "C2", "2000")
    async with db.begin() as conn:
        await conn.execute(text(
            "INSERT INTO credit_groups (group_id, name, currency, credit_limit, blocked,"
            " open_receivables, open_orders, member_count, version, created_at, updated_at)"
            " VALUES ('G1', 'Acme Group', 'EUR', 2500, false, 0, 0, 0, 1, now(), now())"))
        await conn.execute(text(
            "UPDATE accounts SET group_id = 'G1' WHERE customer_id IN ('C1', 'C2')"))
    for sid, start, end in (("S-INS", -5, 60), ("S-LC", 10, 90)):
        r = await api.put(f"/v1/customers/C1/securities/{sid}", {
            "kind": "credit_insurance" if sid == "S-INS" else "letter_of_credit",
            "amount": "500", "currency": "EUR", "valid_from": days(start),
            "valid_until": days(end), "provider": "Allianz Trade"})
        assert r.status_code == 201, r.text
    assert (await check(api, "O1", "300"))["outcome"] == "approve"
    await invoice(api, "I1", "200", customer_id="C2")
    page = await controller.get("/console/customers/C1")
    assert page.status_code == 200
    html = page.text
    insurance = html[html.index('id="security-S-INS"'):html.index('id="security-S-LC"')]
    assert "Credit insurance" in insurance and "500.00 EUR" in insurance
    assert f"{days(-5)} to {days(60)}" in insurance and "<td>valid</td>" in insurance
    credit = html[html.index('id="security-S-LC"'):]
    assert "Letter of credit" in credit and "not yet valid" in credit
    assert "(incl. secured 500.00)" in html  # in the effective limit of 1,500.00
    assert "1,500.00 EUR" in html
    assert '<strong id="group-id">G1</strong> (Acme Group)' in html
    assert "2,500.00 EUR" in html  # the group's limit
    assert '<dd id="group-exposure">500.00 EUR</dd>' in html  # C1's order + C2's invoice
    assert "2,000.00 EUR" in html  # what the group has left
    other = await controller.get("/console/customers/C2")
    assert "No securities." in other.text and "G1" in other.text
    await account(api, "C3", "100")
    alone = await controller.get("/console/customers/C3")
    assert "Not in a credit group." in alone.text


async def test_the_dashboard_counts_securities_in_the_limit(api, controller, db):
    await account(api, "C1", "1000")
    async with db.begin() as conn:
        await conn.execute(text(
            "INSERT INTO fx_rates (from_currency, to_currency, as_of, rate, actor, updated_at)"
            " VALUES ('USD', 'EUR', CURRENT_DATE - 1, 1.5, 'test', now())"))
    for sid, currency, amount in (("S1", "EUR", "500"), ("S2", "USD", "100")):
        r = await api.put(f"/v1/customers/C1/securities/{sid}", {
            "kind": "collateral", "amount": amount, "currency": currency,
            "valid_from": days(-1), "valid_until": days(30)})
        assert r.status_code == 201, r.text
    assert (await check(api, "O1", "1300"))["outcome"] == "approve"  # 1300 of 1650
    board = await controller.get("/console/")
    assert "Nobody is over their limit." in board.text
    top = board.text[board.text.index('id="top-util"'):board.text.index('id="top-exp"')]
    assert "1,650.00 EUR" in top and "78.8 %" in top


# ---- policies --------------------------------------------------------------------------------

POLICY = {"hold_band": "0.10", "max_days_past_due": "30", "prepay_days_past_due": "90",
          "overdue_tolerance": "0", "min_payment_index": "", "review_grace_days": "",
          "alert_utilisation": "0.90", "alert_payment_index": "50", "reason": "tighter band"}


async def test_a_policy_is_saved_only_after_simulating_exactly_it(api, controller):
    POLICY.update({"from": days(-30), "to": days(0)})
    await two_holds(api)  # two holds of class unrated: 1100 and 1150 against 1000 (+20 %)
    page = await controller.get("/console/policies/unrated")
    assert page.status_code == 200
    r = await controller.post("/console/policies/unrated", {**POLICY, "action": "save"})
    assert r.status_code == 422 and "Simulate these parameters before saving them" in r.text
    r = await controller.post("/console/policies/unrated", {**POLICY, "action": "simulate"})
    assert r.status_code == 200
    assert "Simulation: 2 credit checks, 1 would change" in r.text
    token = re.search(r'name="simulated" value="([^"]+)"', r.text).group(1)
    changed = {**POLICY, "hold_band": "0.05", "simulated": token, "action": "save"}
    r = await controller.post("/console/policies/unrated", changed)
    assert r.status_code == 422 and "they changed since the simulation" in r.text
    r = await controller.post("/console/policies/unrated",
                              {**POLICY, "simulated": token, "action": "save"})
    assert r.status_code == 200 and "Saved the unrated policy" in r.text
    saved = (await api.get("/v1/policies/unrated")).json()
    assert saved["hold_band"] == "0.1" and saved["updated_by"] == "test-controller"
    bad = await controller.post("/console/policies/unrated",
                                {**POLICY, "hold_band": "lots", "max_days_past_due": "1.5",
                                 "action": "simulate"})
    assert bad.status_code == 422
    assert 'id="hold_band-error">Must be a decimal number' in bad.text
    assert 'id="max_days_past_due-error">Must be a whole number.' in bad.text
    wide = await controller.post("/console/policies/unrated",
                                 {**POLICY, "from": "2020-01-01", "action": "simulate"})
    assert wide.status_code == 422 and "The window may span at most 366 days." in wide.text


# ---- alerts, reviews, assessment -------------------------------------------------------------

async def test_acknowledge_an_alert(api, controller):
    await account(api, "C1", "1000")
    await check(api, "O1", "950")
    alerts = (await api.get("/v1/alerts", params={"customer_id": "C1"})).json()["items"]
    [alert] = [a for a in alerts if a["kind"] == "UTILISATION_HIGH"]
    page = await controller.get("/console/alerts")
    assert f'id="alert-{alert["alert_id"]}"' in page.text
    path = f"/console/alerts/{alert['alert_id']}/acknowledge"
    r = await controller.post(path, {"note": ""})
    assert r.status_code == 422
    assert f'id="note-{alert["alert_id"]}-error">String should have at least 1 character.' \
        in r.text
    r = await controller.post(path, {"note": "called the CFO"})
    assert r.status_code == 200 and "Acknowledged UTILISATION_HIGH of C1." in r.text
    found = (await api.get("/v1/alerts", params={"customer_id": "C1",
                                                 "status": "acknowledged"})).json()["items"]
    assert [(a["alert_id"], a["note"], a["acknowledged_by"]) for a in found] == [
        (alert["alert_id"], "called the CFO", "test-controller")]
    assert "alert_acknowledged" in [e["event"] for e in await history(api)]


async def test_reviews_due(api, controller):
    await account(api, "C1", "1000", review_due_on=days(3))
    await account(api, "C2", "1000", review_due_on=days(40))
    page = await controller.get("/console/reviews")
    assert "/console/customers/C1" in page.text and "/console/customers/C2" not in page.text
    page = await controller.get(f"/console/reviews?due_before={days(60)}")
    assert "/console/customers/C2" in page.text
    bad = await controller.get("/console/reviews?due_before=tomorrow")
    assert bad.status_code == 422 and "Enter a date as YYYY-MM-DD." in bad.text


async def test_enter_evidence_see_the_score_and_apply(api, controller):
    await account(api, "C1", "1000")
    assert (await check(api, "O1", "1100"))["outcome"] == "hold"
    form = {"assessment_id": "A-1", "currency": "EUR", "current_assets": "500000",
            "current_liabilities": "250000", "equity": "800000", "external_score": "72",
            "years_in_business": "14", "industry_risk": "medium",
            "expected_monthly_purchases": "40000"}
    bad = await controller.post("/console/customers/C1/assess",
                                {**form, "years_in_business": "many", "as_of": "2999-01-01"})
    assert bad.status_code == 422
    assert 'id="years_in_business-error">Must be a whole number.' in bad.text
    r = await controller.post("/console/customers/C1/assess", form)
    assert r.status_code == 303
    page = await controller.get(r.headers["location"])
    proposed = (await api.get("/v1/customers/C1/assessments/A-1")).json()
    assert f'<span id="score">{proposed["score"]}</span>' in page.text
    assert f'<span id="grade">{proposed["grade"]}</span>' in page.text
    assert "Current ratio" in page.text
    r = await controller.post("/console/customers/C1/assess/A-1/apply",
                              {"reason": "annual review", "credit_limit": "50000"})
    assert r.status_code == 200 and "Applied: limit 50,000.00 EUR" in r.text
    acct = (await api.get("/v1/customers/C1")).json()
    assert acct["credit_limit"] == "50000.00" and acct["risk_class"] == proposed["grade"]
    assert (await order(api, "O1"))["status"] == "approved"  # AUTO_RELEASE, as via the API
    events = [e["event"] for e in await history(api)]
    assert "assessment_applied" in events and "assessment_proposed" in events
    again = await controller.post("/console/customers/C1/assess/A-1/apply",
                                  {"reason": "other"})
    assert again.status_code == 409 and "already applied with another body" in again.text


# ---- webhooks (admin) ------------------------------------------------------------------------

async def test_webhooks_are_for_admins(api, controller):
    r = await controller.get("/console/webhooks")
    assert r.status_code == 403
    assert "This screen is for admin keys only" in r.text
    r = await controller.post("/console/webhooks", {"url": "https://example.com/hook",
                                                    "event_types": "order.held"})
    assert r.status_code == 403


async def test_an_admin_creates_rotates_and_deletes_an_endpoint(api, browser, keys, settings,
                                                                 monkeypatch):
    await browser.sign_in(keys["admin"])
    r = await browser.post("/console/webhooks", [("url", "http://127.0.0.1:9/hook"),
                                                 ("event_types", "order.held")])
    assert r.status_code == 422 and 'id="url-error">' in r.text  # private: refused
    r = await browser.post("/console/webhooks", [("url", "https://example.com/h")])
    assert r.status_code == 422 and 'id="event_types-error">List should have at least 1 ' \
        in r.text
    monkeypatch.setattr(settings, "webhook_allow_private", True)
    r = await browser.post("/console/webhooks", [
        ("url", "http://127.0.0.1:9/hook"), ("event_types", "order.held"),
        ("event_types", "order.released"), ("description", "ERP")])
    assert r.status_code == 200
    secret = re.search(r'<p class="secret" id="secret">(whsec_[^<]+)</p>', r.text).group(1)
    [hook] = (await api.get("/v1/webhooks")).json()["items"]
    assert hook["url"] == "http://127.0.0.1:9/hook" and hook["description"] == "ERP"
    assert hook["event_types"] == ["order.held", "order.released"]
    r = await browser.post(f"/console/webhooks/{hook['webhook_id']}/rotate", {})
    rotated = re.search(r'id="secret">(whsec_[^<]+)<', r.text).group(1)
    assert r.status_code == 200 and rotated != secret
    page = await browser.get(f"/console/webhooks/{hook['webhook_id']}")
    assert page.status_code == 200 and "No attempts yet." in page.text
    r = await browser.post(f"/console/webhooks/{hook['webhook_id']}/redeliver",
                           {"event_id": "0" * 26})
    assert r.status_code == 404 and f"No event {'0' * 26}." in r.text
    r = await browser.post(f"/console/webhooks/{hook['webhook_id']}/delete", {})
    assert r.status_code == 200 and "Deleted endpoint" in r.text
    assert (await api.get("/v1/webhooks")).json()["items"] == []


# ---- settings --------------------------------------------------------------------------------

def test_production_never_signs_with_a_default_secret(settings):
    from pydantic import ValidationError

    from app.console.auth import console_secret
    from app.settings import Settings

    url = settings.database_url
    assert console_secret(Settings(env="production", database_url=url)) is None
    secret = "s" * 32
    assert console_secret(Settings(env="production", database_url=url,
                                   console_secret=secret)) == secret.encode()
    assert console_secret(Settings(database_url=url)) is not None  # development
    with pytest.raises(ValidationError, match="at least 32 characters"):
        Settings(database_url=url, console_secret="short")
    with pytest.raises(ValidationError, match="SECURE_COOKIE=false is refused"):
        Settings(env="production", database_url=url, console_secret=secret,
                 console_secure_cookie=False)
