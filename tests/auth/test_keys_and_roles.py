"""Who may call what: every endpoint x every kind of credential, and the key CLI.

DESIGN.md: missing or invalid key -> 401 (with WWW-Authenticate), wrong role -> 403;
controller and admin may call every endpoint; exposure is open to any role; reading an
order is for order-entry and warehouse. A refused request changes nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
import subprocess
import sys
from typing import Any

import pytest
from sqlalchemy import text

from tests.api import Api
from tests.cleanup import MUTABLE_TABLES, clean
from tests.conftest import ROOT
from tests.helpers import account, check, days

PROBLEM_JSON = "application/problem+json"
ROLES = ("order-entry", "warehouse", "ledger", "controller", "admin")
SUPER = {"controller", "admin"}
POLICY = {"prepay_required": False, "hold_band": "0.10", "max_days_past_due": 20,
          "prepay_days_past_due": 60, "overdue_tolerance": "0"}

# method, path, body, the narrow roles DESIGN.md names (controller and admin are added)
ENDPOINTS: list[tuple[str, str, Any, set[str]]] = [
    ("PUT", "/v1/customers/C9", {"name": "Nine", "currency": "EUR", "credit_limit": "100"},
     set()),
    ("PATCH", "/v1/customers/C1", {"credit_limit": "12000"}, set()),
    ("GET", "/v1/customers/C1", None, set()),
    ("GET", "/v1/customers/C1/exposure", None, set(ROLES)),
    ("GET", "/v1/customers/C1/history", None, set()),
    ("PUT", "/v1/customers/C1/open-items", {"items": [
        {"invoice_id": "I1", "amount": "100", "currency": "EUR", "due_on": days(30)}]},
     {"ledger"}),
    ("POST", "/v1/invoices", {"invoice_id": "I2", "customer_id": "C1", "amount": "100",
                              "currency": "EUR", "due_on": days(30)}, {"ledger"}),
    ("POST", "/v1/payments", {"payment_id": "P1", "customer_id": "C1", "amount": "50",
                              "currency": "EUR"}, {"ledger"}),
    ("POST", "/v1/credit-checks", {"order_id": "O9", "customer_id": "C1", "amount": "10",
                                   "currency": "EUR"}, {"order-entry"}),
    ("GET", "/v1/orders/O1", None, {"order-entry", "warehouse"}),
    ("PATCH", "/v1/orders/O1", {"amount": "500"}, {"order-entry"}),
    ("POST", "/v1/orders/O1/dispatch-check", None, {"warehouse"}),
    ("POST", "/v1/orders/O1/cancel", None, {"order-entry"}),
    ("GET", "/v1/holds", None, set()),
    ("POST", "/v1/orders/H1/release", {"reason": "CFO ok"}, set()),
    ("POST", "/v1/orders/H1/reject", {"reason": "too risky"}, set()),
    ("GET", "/v1/policies/A", None, set()),
    ("GET", "/v1/policies/A/history", None, set()),
    ("PUT", "/v1/policies/A", POLICY, set()),
]
# What goes in the Authorization header; {key} is the admin key, None sends no header.
BAD_CREDENTIALS: list[tuple[str, str | None]] = [
    ("no-header", None),
    ("basic", "Basic xyz"),
    ("bearer-nothing", "Bearer"),
    ("bearer-blank", "Bearer    "),
    ("unknown-key", "Bearer cg_" + "A" * 43),
    ("key-without-scheme", "{key}"),
    ("other-scheme", "Token {key}"),
    ("key-with-suffix", "Bearer {key}x"),
    ("revoked-key", "Bearer {revoked}"),
]


def _cases() -> list[Any]:
    out = []
    for method, path, body, narrow in ENDPOINTS:
        allowed = narrow | SUPER
        name = f"{method} {path}"
        for label, header in BAD_CREDENTIALS:
            out.append(pytest.param(method, path, body, header, 401, id=f"{name}-{label}"))
        for role in ROLES:
            expect = 200 if role in allowed else 403
            out.append(pytest.param(method, path, body, role, expect, id=f"{name}-{role}"))
        out.append(pytest.param(method, path, body, "bearer {key}", 200,
                                id=f"{name}-lowercase-scheme"))
    return out


async def build_world(api: Api) -> None:
    """C1 (EUR, limit 10000) with approved order O1 and held order H1."""
    await account(api, "C1", "10000")
    assert (await check(api, "O1", "1000"))["outcome"] == "approve"
    assert (await check(api, "H1", "9500"))["outcome"] == "hold"


async def table_digest(db: Any) -> dict[str, tuple[int, str]]:
    parts = [f"SELECT '{t}', count(*), md5(coalesce(string_agg(x::text, '|' ORDER BY "
             f"x::text), '')) FROM {t} x" for t in (*MUTABLE_TABLES, "policies")]
    async with db.begin() as conn:
        rows = (await conn.execute(text(" UNION ALL ".join(parts)))).all()
    return {name: (count, digest) for name, count, digest in rows}


_STATE: dict[str, Any] = {}


@pytest.fixture
async def world(_session_api: Api, db: Any, settings: Any) -> Api:
    """The world above, rebuilt unless the last test proved it unchanged."""
    if not _STATE.pop("intact", False) and await table_digest(db) != _STATE.get("digest"):
        await clean(db, settings)
        await build_world(_session_api)
        _STATE["digest"] = await table_digest(db)
    return _session_api


def assert_problem(r: Any, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, f"{r.status_code} {r.text[:300]}"
    assert r.headers.get("content-type", "").split(";")[0] == PROBLEM_JSON, r.headers
    body = r.json()
    for key in ("type", "title", "status", "detail", "code"):
        assert key in body, body
    assert body["status"] == status and body["code"] == code, body
    return dict(body)


@pytest.mark.parametrize(("method", "path", "body", "credential", "expect"), _cases())
async def test_authorisation_matrix(world, db, keys, method, path, body, credential, expect):
    if credential in ROLES:
        headers = {"Authorization": f"Bearer {keys[credential]}"}
    elif credential is None:
        headers = {}
    else:
        headers = {"Authorization": credential.format(key=keys["admin"],
                                                      revoked=keys["revoked"])}
    r = await world.request(method, path, role=None, headers=headers,
                            **({"json": body} if body is not None else {}))
    if expect == 200:
        assert r.status_code in (200, 201), f"{r.status_code} {r.text[:300]}"
        return
    if expect == 401:
        problem = assert_problem(r, 401, "unauthorized")
        assert r.headers.get("www-authenticate", "").lower().startswith("bearer"), r.headers
        assert keys["admin"] not in r.text and "A" * 43 not in problem["detail"]
    else:
        assert_problem(r, 403, "forbidden")
        assert "www-authenticate" not in r.headers
    assert await table_digest(db) == _STATE["digest"], "a refused request changed state"
    _STATE["intact"] = True


@pytest.mark.parametrize("path", ["/livez", "/readyz", "/metrics"])
@pytest.mark.parametrize("header", [None, "Basic xyz", "Bearer nonsense"])
async def test_ops_endpoints_need_no_key(_session_api, path, header):
    headers = {"Authorization": header} if header else {}
    r = await _session_api.get(path, role=None, headers=headers)
    assert r.status_code == 200, r.text
    if path == "/metrics":
        assert r.headers["content-type"].startswith("text/plain")
        assert "creditgate_http_requests_total" in r.text
    else:
        assert r.json()["status"] == "ok"


BROKEN_BODIES = [
    pytest.param("POST", "/v1/credit-checks", b'{"order_id": "O9", "amount": "-1"}',
                 id="credit-check-invalid-body"),
    pytest.param("POST", "/v1/credit-checks", b'{"order_id": ', id="credit-check-malformed"),
    pytest.param("POST", "/v1/invoices", b"[]", id="invoice-non-object"),
    pytest.param("POST", "/v1/invoices", b"{nope", id="invoice-malformed"),
    pytest.param("PUT", "/v1/customers/bad%20id", b'{"name": "x"}', id="customer-bad-path"),
    pytest.param("PUT", "/v1/policies/A", b"NaN", id="policy-nan-body"),
]


@pytest.mark.parametrize(("method", "path", "content"), BROKEN_BODIES)
@pytest.mark.parametrize(("credential", "status", "code"), [
    pytest.param(None, 401, "unauthorized", id="no-key"),
    pytest.param("warehouse", 403, "forbidden", id="wrong-role")])
async def test_authorisation_is_decided_before_the_body_is_read(
        world, db, keys, method, path, content, credential, status, code):
    """A caller without a key (or with the wrong role) learns nothing about the body: the
    answer is 401/403, not 400/422."""
    headers = {"content-type": "application/json"}
    if credential:
        headers["Authorization"] = f"Bearer {keys[credential]}"
    r = await world.request(method, path, role=None, headers=headers, content=content)
    assert_problem(r, status, code)
    assert await table_digest(db) == _STATE["digest"]
    _STATE["intact"] = True


def run_cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url}
    return subprocess.run([sys.executable, "-m", "app.cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60, check=False)


async def test_cli_key_lifecycle(api, db, database_url):
    name = f"cli-ledger-{secrets.token_hex(4)}"
    done = await asyncio.to_thread(run_cli, database_url, "keys", "create", "--role", "ledger",
                                   "--name", name)
    assert done.returncode == 0, done.stderr
    assert done.stdout.endswith("\n")
    key = done.stdout.splitlines()[-1]
    assert key and key == key.strip() and " " not in key, done.stdout
    assert len(key) >= 32

    async with db.begin() as conn:
        row = (await conn.execute(text(
            "SELECT key_hash, role, revoked_at FROM api_keys WHERE name = :name"),
            {"name": name})).one()
        leaked = await conn.scalar(text(
            "SELECT count(*) FROM api_keys k WHERE position(:key in k::text) > 0"),
            {"key": key})
    assert row.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert row.role == "ledger" and row.revoked_at is None
    assert leaked == 0, "the key itself is stored"

    auth = {"Authorization": f"Bearer {key}"}
    await account(api, "C1", "1000")
    r = await api.post("/v1/invoices", {"invoice_id": "I1", "customer_id": "C1",
                                        "amount": "10", "currency": "EUR",
                                        "due_on": days(30)}, role=None, headers=auth)
    assert r.status_code == 201, r.text
    r = await api.get("/v1/holds", role=None, headers=auth)
    assert_problem(r, 403, "forbidden")

    listed = await asyncio.to_thread(run_cli, database_url, "keys", "list")
    assert listed.returncode == 0, listed.stderr
    assert name in listed.stdout and key not in listed.stdout

    revoked = await asyncio.to_thread(run_cli, database_url, "keys", "revoke", name)
    assert revoked.returncode == 0, revoked.stderr
    r = await api.get("/v1/customers/C1/exposure", role=None, headers=auth)
    assert_problem(r, 401, "unauthorized")
    assert r.headers.get("www-authenticate", "").lower().startswith("bearer")
    r = await api.post("/v1/payments", {"payment_id": "P1", "customer_id": "C1",
                                        "amount": "10", "currency": "EUR"},
                       role=None, headers=auth)
    assert_problem(r, 401, "unauthorized")
    assert (await api.get("/v1/customers/C1/exposure")).json()["open_receivables"] == "10.00"
