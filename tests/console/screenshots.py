"""`make screenshots`: a screenshot of every console screen, at 1280x800, on the demo data.

    python -m tests.console.screenshots OUTDIR

Creates a throwaway database on the local PostgreSQL (CREDITGATE_TEST_PG, as the tests do),
loads `creditgate demo` plus a few held orders, an assessment and a webhook endpoint, serves
it with a real server, and drives Debian's Chromium through every screen. The dashboard and
hold-queue pictures are the README's (docs/console-dashboard.png, docs/console-holds.png).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
from pathlib import Path
from typing import Any

import httpx

from app.auth.keys import create_key
from app.auth.roles import Role
from app.db.engine import Database
from app.demo import load_demo
from app.settings import Settings
from tests.conftest import _admin, _server_url, migrate
from tests.console.browser import ARGS, CHROMIUM, chromium_missing
from tests.server import serve

SCREENS = [
    ("dashboard", "/console/"),
    ("holds", "/console/holds"),
    ("customer", "/console/customers/ACME-001"),
    ("alerts", "/console/alerts"),
    ("reviews", "/console/reviews"),
    ("policies", "/console/policies"),
    ("policy-simulation", "/console/policies/A"),
    ("assess", "/console/customers/INITECH-002/assess"),
    ("assessment", "/console/customers/ACME-001/assess/A-2026-ACME"),
    ("webhooks", "/console/webhooks"),
]


async def _prepare(url: str) -> dict[str, str]:
    db = Database(Settings(database_url=url))
    try:
        await load_demo(db)
        async with db.begin() as conn:
            _n, admin = await create_key(conn, Role.ADMIN, "screenshots-admin")
            _n, entry = await create_key(conn, Role.ORDER_ENTRY, "screenshots-erp")
    finally:
        await db.dispose()
    return {"admin": admin, "order-entry": entry}


def _seed(base: str, keys: dict[str, str]) -> None:
    with httpx.Client(base_url=base, timeout=15) as http:
        def call(path: str, body: dict[str, Any], role: str = "admin") -> None:
            r = http.post(path, json=body, headers={"Authorization": f"Bearer {keys[role]}"})
            assert r.status_code in (200, 201), r.text

        for order_id, customer_id, amount in (
                ("SO-1001", "ACME-001", "9000"), ("SO-1002", "ACME-001", "12000"),
                ("SO-2001", "INITECH-002", "1500"), ("SO-2002", "INITECH-002", "800"),
                ("SO-1003", "ACME-001", "2400"), ("SO-6001", "STARK-006", "5000")):
            call("/v1/credit-checks", {"order_id": order_id, "customer_id": customer_id,
                                       "amount": amount, "currency": "EUR",
                                       "channel": "erp"}, role="order-entry")
        call("/v1/customers/ACME-001/assessments", {
            "assessment_id": "A-2026-ACME",
            "financials": {"current_assets": "820000", "current_liabilities": "410000",
                           "inventory": "150000", "total_assets": "2100000",
                           "total_liabilities": "1200000", "equity": "900000",
                           "revenue": "5400000", "net_income": "260000",
                           "operating_income": "400000", "interest_expense": "60000"},
            "external_score": {"provider": "bureau", "score": 71},
            "years_in_business": 23, "industry_risk": "medium",
            "expected_monthly_purchases": "30000"})
        call("/v1/webhooks", {"url": "http://127.0.0.1:9/erp-hook",
                              "event_types": ["order.held", "order.released"],
                              "description": "ERP credit desk"})


async def _shoot(base: str, key: str, out: Path) -> list[Path]:
    from playwright.async_api import async_playwright

    written = []
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = await browser.new_page(viewport={"width": 1280, "height": 800}, base_url=base)
        await page.goto("/console/sign-in")
        await page.get_by_label("API key").fill(key)
        await page.get_by_role("button", name="Sign in").click()
        await page.wait_for_url("**/console/")
        for name, path in SCREENS:
            await page.goto(path)
            if name == "policy-simulation":
                await page.get_by_label("Hold band (fraction above the limit that holds, "
                                        "e.g. 0.20)").fill("0.05")
                await page.get_by_role("button", name="Simulate").click()
                await page.locator("#simulation").wait_for()
            target = out / f"console-{name}.png"
            await page.screenshot(path=str(target), full_page=name not in ("dashboard",
                                                                           "holds"))
            written.append(target)
        await browser.close()
    return written


def main(argv: list[str]) -> int:
    missing = chromium_missing()
    if missing:
        print(f"cannot take screenshots: {missing}", file=sys.stderr)
        return 1
    out = Path(argv[1] if len(argv) > 1 else "docs")
    out.mkdir(parents=True, exist_ok=True)
    name = f"creditgate_screens_{os.getpid()}_{secrets.token_hex(3)}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    url = _server_url(name)
    try:
        migrate(url)
        keys = asyncio.run(_prepare(url))
        with serve(url, workers=1,
                   env={"CREDITGATE_WEBHOOK_ALLOW_PRIVATE": "true",
                        "CREDITGATE_WEBHOOK_POLL_SECONDS": "0"}) as base:
            _seed(base, keys)
            for path in asyncio.run(_shoot(base, keys["admin"], out)):
                print(path)
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
