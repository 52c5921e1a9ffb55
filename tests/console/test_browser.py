"""The console in a real browser (Debian's Chromium through Playwright) against a real
server process: a controller's day, the refusal of a role that may not sign in, and on every
screen no CSP violation, no request to another origin, and no sideways scrolling at 1280x800
or on a narrow window."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from tests.console.browser import ARGS, CHROMIUM, REPORT_CSP, Watcher, chromium_missing
from tests.server import serve

MISSING = chromium_missing()
if MISSING:
    print(f"\n*** SKIPPING the console's browser tests: {MISSING} ***\n")
pytestmark = [pytest.mark.slow, pytest.mark.skipif(MISSING is not None, reason=MISSING or "")]

WIDE = {"width": 1280, "height": 800}
NARROW = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def server(database_url: str) -> Iterator[str]:
    # No webhook dispatcher in the server: its polling would deadlock with the TRUNCATE that
    # empties the database between tests (tests/cleanup.py).
    with serve(database_url, workers=1, env={"CREDITGATE_WEBHOOK_POLL_SECONDS": "0"}) as base:
        yield base


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        chromium = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        await chromium.close()


async def new_page(browser: Any, base: str, viewport: dict[str, int] = WIDE
                   ) -> tuple[Any, Watcher]:
    context = await browser.new_context(viewport=viewport, base_url=base)
    await context.add_init_script(REPORT_CSP)
    page = await context.new_page()
    watcher = Watcher(base)
    watcher.attach(page)
    return page, watcher


def seed(base: str, keys: dict[str, str]) -> None:
    """Two held orders and an alert, through the API of the server under test."""
    with httpx.Client(base_url=base, timeout=10) as http:
        def call(method: str, path: str, body: dict[str, Any], role: str = "controller") -> Any:
            r = http.request(method, path, json=body,
                             headers={"Authorization": f"Bearer {keys[role]}"})
            assert r.status_code in (200, 201), r.text
            return r.json()

        for cid, name in (("C1", "Acme Tools GmbH"), ("C2", "Initech Ltd")):
            call("PUT", f"/v1/customers/{cid}", {"name": name, "currency": "EUR",
                                                 "credit_limit": "1000"})
        start = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=10)  # no headroom yet
        call("PUT", "/v1/customers/C1/securities/BG-1", {
            "kind": "bank_guarantee", "amount": "5000", "currency": "EUR",
            "valid_from": start.isoformat(),
            "valid_until": (start + dt.timedelta(days=365)).isoformat()})
        for oid, amount in (("O1", "1100"), ("O2", "1150")):
            decided = call("POST", "/v1/credit-checks", {
                "order_id": oid, "customer_id": "C1", "amount": amount, "currency": "EUR"},
                role="order-entry")
            assert decided["outcome"] == "hold"
        call("POST", "/v1/credit-checks", {"order_id": "O3", "customer_id": "C2",
                                           "amount": "950", "currency": "EUR"},
             role="order-entry")


async def no_sideways_scroll(page: Any) -> bool:
    return bool(await page.evaluate(
        "document.documentElement.scrollWidth <= window.innerWidth + 1"))


async def sign_in(page: Any, key: str) -> None:
    await page.goto("/console/")
    assert page.url.endswith("/console/sign-in")
    await page.get_by_label("API key").fill(key)
    await page.get_by_label("API key").press("Enter")  # by keyboard


async def test_a_controllers_day_in_the_console(api: Any, server: str, browser: Any,
                                                keys: dict[str, str]) -> None:
    seed(server, keys)
    page, watcher = await new_page(browser, server)
    await sign_in(page, keys["controller"])
    await page.wait_for_url("**/console/")
    assert await page.locator("#holds-open").inner_text() == "2"

    # The exposure bar before: nothing reserved (held orders reserve nothing).
    await page.goto("/console/customers/C1")
    bar = page.locator("svg.exposure-bar")
    assert await bar.get_attribute("data-exposure") == "0.0000"
    assert "Held (not reserved) 2,250.00 EUR" in await page.locator("#exposure").inner_text()
    security = await page.locator("#security-BG-1").inner_text()
    assert "Bank guarantee" in security and "not yet valid" in security
    assert "Not in a credit group." in await page.locator("#group").inner_text()

    # Release both held orders in one action.
    await page.get_by_role("link", name="Holds").click()
    await page.wait_for_url("**/console/holds")
    await page.get_by_label("Select order O1").check()
    await page.get_by_label("Select order O2").check()
    await page.get_by_label("Reason (kept in each credit file)").fill("CFO approved")
    await page.get_by_role("button", name="Release selected").click()
    notice = page.locator("#queue .notice")
    await notice.wait_for()
    assert await notice.inner_text() == "Released 2 orders: O1, O2."
    assert await page.get_by_label("Select order O1").count() == 0

    # The exposure bar after.
    await page.get_by_label("Customer id", exact=True).first.fill("C1")
    await page.get_by_role("button", name="Open").click()
    await page.wait_for_url("**/console/customers/C1")
    bar = page.locator("svg.exposure-bar")
    assert await bar.get_attribute("data-exposure") == "2250.0000"
    assert await bar.get_attribute("data-over-limit") == "true"
    assert "Manual release" in await page.locator("#timeline").inner_text()

    # Acknowledge an alert.
    await page.get_by_role("link", name="Alerts").click()
    await page.wait_for_url("**/console/alerts")
    row = page.locator("tr", has_text="C2").filter(has_text="Utilisation high")
    await row.get_by_label("Note").fill("called their CFO")
    await row.get_by_role("button", name="Acknowledge").click()
    await page.locator(".notice", has_text="Acknowledged UTILISATION_HIGH of C2.").wait_for()

    # Apply an assessment: evidence, the score build-up, apply.
    await page.goto("/console/customers/C2/assess")
    await page.get_by_label("Assessment id (your reference)").fill("A-C2-1")
    await page.get_by_label("Current assets").fill("500000")
    await page.get_by_label("Current liabilities").fill("250000")
    await page.get_by_label("Equity").fill("800000")
    await page.get_by_label("External score (0\u2013100)").fill("72")
    await page.get_by_label("Years in business").fill("14")
    await page.get_by_label("Industry risk").select_option("medium")
    await page.get_by_role("button", name="Score it").click()
    await page.wait_for_url("**/console/customers/C2/assess/A-C2-1")
    grade = await page.locator("#grade").inner_text()
    assert re.fullmatch(r"A{1,3}|B{1,3}|CCC", grade)
    assert await page.locator("svg.score").count() == 1
    await page.get_by_label("Reason (kept in the credit file)").fill("annual review")
    await page.get_by_label("Limit override (blank: suggested)").fill("20000")
    await page.get_by_role("button", name="Apply to the account").click()
    await page.locator(".notice", has_text="Applied: limit 20,000.00 EUR").wait_for()
    async with httpx.AsyncClient(base_url=server) as http:
        acct = (await http.get("/v1/customers/C2", headers={
            "Authorization": f"Bearer {keys['controller']}"})).json()
    assert acct["credit_limit"] == "20000.00" and acct["risk_class"] == grade

    # Simulate a policy change, then save it.
    await page.goto("/console/policies/unrated")
    await page.get_by_label("Hold band (fraction above the limit that holds, e.g. 0.20)"
                            ).fill("0.10")
    await page.get_by_role("button", name="Simulate").click()
    await page.locator("#simulation").wait_for()
    assert "1 would change" in await page.locator("#sim-h").inner_text()
    await page.get_by_label("Reason (kept in the policy's audit trail)").fill("tighter")
    await page.get_by_role("button", name="Save policy").click()
    await page.locator(".notice", has_text="Saved the unrated policy").wait_for()

    # Every screen, wide and narrow: no CSP violation, nothing from another origin, no
    # sideways scrolling.
    screens = ["/console/", "/console/holds", "/console/customers/C1", "/console/alerts",
               "/console/reviews", "/console/policies", "/console/policies/BBB",
               "/console/customers/C2/assess", "/console/customers/C2/assess/A-C2-1"]
    narrow, narrow_watch = await new_page(browser, server, NARROW)
    await narrow.context.add_cookies(await page.context.cookies())
    for path in screens:
        for p in (page, narrow):
            response = await p.goto(path)
            assert response.status == 200, path
            assert await no_sideways_scroll(p), (path, p.viewport_size)

    # Sign out: the session is gone, on the server too.
    await page.get_by_role("button", name="Sign out").click()
    await page.wait_for_url("**/console/sign-in?signed_out=true")
    assert "You are signed out." in await page.locator("main").inner_text()
    await narrow.goto("/console/holds")
    assert narrow.url.endswith("/console/sign-in")

    for w in (watcher, narrow_watch):
        assert w.failed == []
        assert w.problems == []
        assert w.foreign == []
    assert any(u.endswith("/console/static/htmx.min.js") for u in watcher.requests)


async def test_a_role_that_may_not_sign_in_is_refused(api: Any, server: str, browser: Any,
                                                      keys: dict[str, str]) -> None:
    page, watcher = await new_page(browser, server)
    for role in ("order-entry", "warehouse", "ledger"):
        await sign_in(page, keys[role])
        error = page.locator("#api_key-error")
        await error.wait_for()
        assert await error.inner_text() == (f"A {role} key cannot sign in to the console: "
                                            "only controller and admin keys can.")
        assert page.url.endswith("/console/sign-in")
        assert not [c for c in await page.context.cookies()
                    if c["name"] == "creditgate_console"]
    # 403 answers show up as console errors ("Failed to load resource"): only those.
    assert all("status of 40" in p for p in watcher.problems), watcher.problems
    assert watcher.foreign == []


async def test_the_admin_webhooks_screen(api: Any, server: str, browser: Any,
                                         keys: dict[str, str]) -> None:
    for viewport in (WIDE, NARROW):
        page, watcher = await new_page(browser, server, viewport)
        await sign_in(page, keys["admin"])
        await page.wait_for_url("**/console/")
        await page.get_by_role("link", name="Webhooks").click()
        await page.wait_for_url("**/console/webhooks")
        await page.get_by_label("URL (https)").fill("https://example.invalid/hook")
        await page.get_by_label("order.held").check()
        await page.get_by_role("button", name="Create endpoint").click()
        error = page.locator("#url-error")  # no such host: refused, next to the field
        await error.wait_for()
        assert await no_sideways_scroll(page)
        assert watcher.problems == ["console error: Failed to load resource: the server "
                                    "responded with a status of 422 (Unprocessable Entity)"]
        assert watcher.foreign == []
        await page.context.close()
