"""Bad input for every endpoint leaves no trace.

Every endpoint of DESIGN.md's table that takes a body, a path id or query parameters gets
hostile variants. Each must be answered with the right 4xx as RFC 9457 problem+json (with
the offending field named for validation errors), and nothing may be stored: the content of
every ledger table (and the policies), C1's exposure and its newest credit-file entry are
identical before and after, and what the request would have created (an account, an order)
does not exist.

The fixture world is built once and rebuilt only when a test changed it (or could not prove
it did not), so a test that catches a stored bad request does not spoil the tests after it.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from tests.api import Api
from tests.cleanup import MUTABLE_TABLES, clean
from tests.helpers import account, check, days, invoice

PROBLEM_JSON = "application/problem+json"
PROBLEM_FIELDS = ("type", "title", "status", "detail", "code")
# Text that must never reach a client: Python tracebacks, SQL, driver internals.
LEAK_MARKERS = ("Traceback", 'File "', "sqlalchemy", "asyncpg", "psycopg", "SELECT ",
                "INSERT INTO", "UPDATE ", "DELETE FROM", "[SQL:", "DETAIL:", "HINT:",
                "pydantic_core", "Error(", "Exception(")
DIGEST_TABLES = (*MUTABLE_TABLES, "policies")
NO_BODY = object()
UNHANDLED = "x-test-unhandled-exception"
DROP = object()


class Tok:
    """A bare JSON token (NaN, Infinity, a number spelled exactly) inside a body."""

    def __init__(self, token: str) -> None:
        self.token = token


class Raw(bytes):
    """A request body sent byte for byte (malformed JSON and friends)."""


def encode(body: Any) -> bytes:
    if isinstance(body, bytes):
        return bytes(body)
    tokens: list[str] = []

    def placeholder(value: object) -> str:
        if not isinstance(value, Tok):
            raise TypeError(repr(value))
        tokens.append(value.token)
        return f"@@TOKEN{len(tokens) - 1}@@"

    out = json.dumps(body, default=placeholder, ensure_ascii=False)
    for i, token in enumerate(tokens):
        out = out.replace(f'"@@TOKEN{i}@@"', token)
    return out.encode()


# ---------------------------------------------------------------- the world

async def build_world(api: Api) -> None:
    """C1 (EUR, limit 10000): invoices I1 and I3 (I3 invoices part of O1), approved O1,
    shipped S1, held H1, security S1 (valid from in 10 days). C2 (EUR, limit 5000): invoice
    I2, approved O2; C2 is a member of credit group G1 (EUR); group GU is in USD."""
    for group_id, currency in (("G1", "EUR"), ("GU", "USD")):
        r = await api.put(f"/v1/groups/{group_id}", {"name": f"Group {group_id}",
                                                     "currency": currency,
                                                     "credit_limit": "100000"})
        assert r.status_code == 201, r.text
    await account(api, "C1", "10000")
    await account(api, "C2", "5000", group_id="G1")
    await invoice(api, "I1", "1000", "C1")
    await invoice(api, "I2", "200", "C2")
    assert (await check(api, "O1", "2000", "C1"))["outcome"] == "approve"
    await invoice(api, "I3", "500", "C1", order_id="O1")
    assert (await check(api, "S1", "100", "C1"))["outcome"] == "approve"
    r = await api.post("/v1/orders/S1/dispatch-check", role="warehouse")
    assert r.status_code == 200 and r.json()["outcome"] == "approve", r.text
    assert (await check(api, "H1", "7500", "C1"))["outcome"] == "hold"
    assert (await check(api, "O2", "100", "C2"))["outcome"] == "approve"
    r = await api.put("/v1/customers/C1/securities/S1", {  # not valid yet: no headroom
        "kind": "bank_guarantee", "amount": "1000", "currency": "EUR",
        "valid_from": days(10), "valid_until": days(100)}, role="controller")
    assert r.status_code == 201, r.text


async def table_digest(db: Any) -> dict[str, tuple[int, str]]:
    """Row count and a hash of the full content of every table a request could write."""
    parts = [f"SELECT '{t}', count(*), md5(coalesce(string_agg(x::text, '|' ORDER BY "
             f"x::text), '')) FROM {t} x" for t in DIGEST_TABLES]
    async with db.begin() as conn:
        rows = (await conn.execute(text(" UNION ALL ".join(parts)))).all()
    return {name: (count, digest) for name, count, digest in rows}


async def snapshot(api: Api, db: Any) -> dict[str, Any]:
    """Every table's content, and C1's exposure and credit file as the API shows them."""
    state: dict[str, Any] = {"tables": await table_digest(db)}
    r = await api.get("/v1/customers/C1/exposure")
    assert r.status_code == 200, r.text
    state["exposure"] = r.json()
    r = await api.get("/v1/customers/C1/history", params={"limit": 1})
    assert r.status_code == 200, r.text
    state["newest history entry"] = r.json()["items"][0]["entry_id"]
    return state


_BASELINE: dict[str, Any] = {}  # the world's snapshot, and "intact" after a clean test


@pytest.fixture
async def world(_session_api: Api, db: Any, settings: Any) -> Api:
    """The world above. It is rebuilt unless the last test proved it still holds exactly
    the baseline, or the tables still match it."""
    if not _BASELINE.pop("intact", False) and await table_digest(db) != _BASELINE.get(
            "tables"):
        await clean(db, settings)
        await build_world(_session_api)
        _BASELINE.clear()
        _BASELINE.update(await snapshot(_session_api, db))
    return _session_api


@pytest.fixture
def baseline(world: Api) -> dict[str, Any]:
    """The state of the world before the test's request."""
    return dict(_BASELINE)


async def assert_unchanged(api: Api, db: Any, baseline: dict[str, Any]) -> None:
    """Nothing was stored: every table, C1's exposure and credit file are as before."""
    after = await snapshot(api, db)
    assert after == baseline, "the refused request changed stored state"
    _BASELINE["intact"] = True


# ---------------------------------------------------------------- assertions

def assert_no_leak(body: str) -> None:
    for marker in LEAK_MARKERS:
        assert marker not in body, f"error body leaks {marker!r}: {body[:500]}"


def assert_problem(r: Any, status: int | tuple[int, ...], code: str | tuple[str, ...],
                   fields: tuple[str, ...] = ()) -> dict[str, Any]:
    statuses = status if isinstance(status, tuple) else (status,)
    codes = code if isinstance(code, tuple) else (code,)
    assert r.status_code in statuses, f"{r.status_code} {r.text[:500]}"
    media = r.headers.get("content-type", "").split(";")[0].strip()
    assert media == PROBLEM_JSON, f"content-type {media!r}: {r.text[:300]}"
    assert_no_leak(r.text)
    body = r.json()
    assert isinstance(body, dict)
    missing = [k for k in PROBLEM_FIELDS if k not in body]
    assert not missing, f"problem lacks {missing}: {body}"
    assert body["status"] == r.status_code
    assert body["code"] in codes, body
    for key in ("type", "title", "detail"):
        assert isinstance(body[key], str) and body[key], body
    if fields:
        named = [e.get("field") for e in body.get("errors", [])]
        for name in fields:
            assert name in named, f"{name} not in errors[].field {named}: {body}"
    return dict(body)


# ---------------------------------------------------------------- the cases

@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    body: Any
    role: str
    absent: tuple[str, ...] = ()  # GET paths that must stay 404


TEMP = {"amount": "500", "expires_on": days(30)}
ITEM = {"invoice_id": "I9", "amount": "300", "currency": "EUR", "due_on": days(20)}
ENDPOINTS = {
    "put-customer-new": Endpoint(
        "PUT", "/v1/customers/NEW", {"name": "New GmbH", "currency": "EUR",
                                     "credit_limit": "1000", "temporary_limit": TEMP},
        "controller", absent=("/v1/customers/NEW",)),
    "put-customer-replace": Endpoint(
        "PUT", "/v1/customers/C1", {"name": "Customer C1", "currency": "EUR",
                                    "credit_limit": "20000", "risk_class": "A",
                                    "payment_terms_days": 45, "blocked": False}, "controller"),
    "patch-customer": Endpoint(
        "PATCH", "/v1/customers/C1", {"credit_limit": "20000", "temporary_limit": TEMP,
                                      "reason": "annual review"}, "controller"),
    "open-items": Endpoint("PUT", "/v1/customers/C1/open-items", {"items": [ITEM]}, "ledger"),
    "invoice": Endpoint(
        "POST", "/v1/invoices", {"invoice_id": "I9", "customer_id": "C1", "amount": "300",
                                 "currency": "EUR", "due_on": days(30),
                                 "issued_on": days(0), "order_id": "O1"}, "ledger"),
    "payment": Endpoint(
        "POST", "/v1/payments", {"payment_id": "P9", "customer_id": "C1", "amount": "300",
                                 "currency": "EUR", "invoice_id": "I1",
                                 "received_on": days(0)}, "ledger"),
    "credit-check": Endpoint(
        "POST", "/v1/credit-checks", {"order_id": "O9", "customer_id": "C1", "amount": "300",
                                      "currency": "EUR", "channel": "webshop"},
        "order-entry", absent=("/v1/orders/O9",)),
    "amend": Endpoint("PATCH", "/v1/orders/O1", {"amount": "1500"}, "order-entry"),
    "cancel": Endpoint("POST", "/v1/orders/O1/cancel", {"reason": "withdrawn"},
                       "order-entry"),
    "release": Endpoint("POST", "/v1/orders/H1/release", {"reason": "CFO ok"}, "controller"),
    "reject": Endpoint("POST", "/v1/orders/H1/reject", {"reason": "too risky"},
                       "controller"),
    "policy": Endpoint(
        "PUT", "/v1/policies/A", {"prepay_required": False, "hold_band": "0.10",
                                  "max_days_past_due": 20, "prepay_days_past_due": 60,
                                  "overdue_tolerance": "50", "reason": "committee"},
        "controller"),
    "dispatch": Endpoint("POST", "/v1/orders/O1/dispatch-check", NO_BODY, "warehouse"),
    "fx-rate": Endpoint("PUT", "/v1/fx-rates/USD/EUR", {"rate": "0.92", "as_of": days(0)},
                        "controller"),
}
REQUIRED = {
    "put-customer-new": ("name", "currency", "credit_limit"),
    "open-items": ("items", "items.0.invoice_id", "items.0.amount", "items.0.currency",
                   "items.0.due_on"),
    "invoice": ("invoice_id", "customer_id", "amount", "currency", "due_on"),
    "payment": ("payment_id", "customer_id", "amount", "currency"),
    "credit-check": ("order_id", "customer_id", "amount", "currency"),
    "amend": ("amount",),
    "release": ("reason",),
    "reject": ("reason",),
    "policy": ("prepay_required", "hold_band", "max_days_past_due", "prepay_days_past_due",
               "overdue_tolerance"),
    "fx-rate": ("rate", "as_of"),
}


@dataclass(frozen=True)
class Case:
    method: str
    path: str
    body: Any = NO_BODY
    role: str = "admin"
    status: int | tuple[int, ...] = 422
    code: str | tuple[str, ...] = "validation_error"
    fields: tuple[str, ...] = ()
    absent: tuple[str, ...] = ()
    headers: dict[str, str] = field(default_factory=dict)


def mutate(body: Any, dotted: str, value: Any) -> Any:
    """A deep copy of body with the dotted field set to value (DROP removes it)."""
    out = json.loads(json.dumps(body))
    *parents, last = dotted.split(".")
    node = out
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    key: Any = int(last) if isinstance(node, list) else last
    if value is DROP:
        del node[key]
    else:
        node[key] = value
    return out


def on(name: str, body: Any = NO_BODY, **kw: Any) -> Case:
    """A case against a named endpoint: its method, path, role and what must stay absent."""
    ep = ENDPOINTS[name]
    kw.setdefault("absent", ep.absent)
    return Case(ep.method, kw.pop("path", ep.path), ep.body if body is NO_BODY else body,
                kw.pop("role", ep.role), **kw)


def field_case(name: str, dotted: str, value: Any, **kw: Any) -> Case:
    body = mutate(ENDPOINTS[name].body, dotted, value)
    if isinstance(value, Tok) and value.token in ("NaN", "Infinity", "-Infinity"):
        return on(name, body, status=400, code="invalid_json", **kw)
    kw.setdefault("fields", (f"body.{dotted}",))
    return on(name, body, **kw)


CASES: list[Any] = []


def add(case_id: str, case: Case) -> None:
    CASES.append(pytest.param(case, id=case_id))


# Amounts. Every spelling that is not an exact decimal, bounded, with at most 4 decimals:
# all of them where money moves in, a core set elsewhere.
CORE_BAD_AMOUNTS: list[tuple[str, Any]] = [
    ("nan-token", Tok("NaN")), ("infinity-token", Tok("Infinity")), ("nan-string", "NaN"),
    ("infinity-string", "Infinity"), ("1e20-number", 1e20), ("1e20-string", "1e20"),
    ("5-decimals-string", "1.00001"), ("5-decimals-number", 1.00001), ("true", True),
    ("null", None), ("word", "ten"), ("fullwidth-digit", "\uff15")]
MORE_BAD_AMOUNTS: list[tuple[str, Any]] = [
    ("minus-infinity-token", Tok("-Infinity")), ("nan-lower", "nan"), ("snan", "sNaN"),
    ("inf-string", "-inf"), ("1e400-number", Tok("1e400")),
    ("exponent-beyond-context", Tok("1e999999999")), ("10^14-int", 10**14),
    ("10^14-string", "100000000000000"), ("10^20-int", 10**20),
    ("5-decimals-trailing-zero", "1.00000"), ("tiny-exponent", Tok("1e-5")),
    ("false", False), ("empty", ""), ("blank", " "), ("leading-space", " 5"),
    ("trailing-newline", "5\n"), ("thousands-comma", "1,000.00"), ("decimal-comma", "5,50"),
    ("underscore", "1_000"), ("hex", "0x10"), ("currency-sign", "€5"),
    ("with-currency", "5 EUR"), ("arabic-indic-digit", "\u0665"), ("list", ["5"]),
    ("object", {"value": "5"})]
POSITIVE_BAD = [("zero", 0), ("zero-string", "0"), ("zero-decimals", "0.0000"),
                ("minus-zero", "-0"), ("negative", -5), ("negative-string", "-1"),
                ("negative-tiny", "-0.0001")]
NON_NEGATIVE_BAD = [("negative", -1), ("negative-string", "-0.0001")]
SIGNED_BAD = [("zero", 0), ("zero-string", "0.00")]
RATIO_BAD = [("negative", "-0.1"), ("over-ten", 11), ("over-ten-string", "10.0001")]
AMOUNT_FIELDS = [  # endpoint, field, its own bad values, full battery?
    ("put-customer-new", "credit_limit", NON_NEGATIVE_BAD, False),
    ("put-customer-new", "temporary_limit.amount", POSITIVE_BAD[:4], False),
    ("put-customer-replace", "credit_limit", NON_NEGATIVE_BAD, False),
    ("patch-customer", "credit_limit", NON_NEGATIVE_BAD, False),
    ("patch-customer", "temporary_limit.amount", POSITIVE_BAD[4:], False),
    ("open-items", "items.0.amount", SIGNED_BAD, False),
    ("invoice", "amount", POSITIVE_BAD, False),
    ("payment", "amount", POSITIVE_BAD, False),
    ("credit-check", "amount", POSITIVE_BAD, True),
    ("amend", "amount", POSITIVE_BAD, False),
    ("policy", "overdue_tolerance", NON_NEGATIVE_BAD, False),
    ("policy", "hold_band", RATIO_BAD, False),
]
for _ep, _field, _extra, _full in AMOUNT_FIELDS:
    for _label, _value in CORE_BAD_AMOUNTS + (MORE_BAD_AMOUNTS if _full else []) + _extra:
        if _label == "null" and _ep == "patch-customer":
            continue  # PATCH: null is tested below (non-nullable fields)
        add(f"{_ep}-{_field}-{_label}", field_case(_ep, _field, _value))
# Exchange rates: up to 10 decimals (so 1.00001 is fine), > 0, below 10^9.
RATE_BAD: list[tuple[str, Any]] = [
    ("nan-token", Tok("NaN")), ("infinity-token", Tok("Infinity")), ("nan-string", "NaN"),
    ("1e20-number", 1e20), ("1e3-string", "1e3"), ("11-decimals-string", "1.00000000001"),
    ("11-decimals-number", Tok("1.00000000001")), ("tiny-exponent", Tok("1e-11")),
    ("10^9-int", 10**9), ("10^9-string", "1000000000"),
    ("exponent-beyond-context", Tok("1e999999999")), ("true", True), ("null", None),
    ("word", "ten"), ("fullwidth-digit", "\uff15"), ("empty", ""), ("list", ["1"]),
    ("zero", 0), ("zero-string", "0"), ("zero-decimals", "0.0000000000"), ("negative", -1),
    ("negative-string", "-0.5"), ("leading-space", " 1"), ("decimal-comma", "0,92")]
for _label, _value in RATE_BAD:
    add(f"fx-rate-rate-{_label}", field_case("fx-rate", "rate", _value))

# Currencies: malformed everywhere; a valid code other than the account's where money moves.
BAD_CURRENCIES: list[tuple[str, Any]] = [
    ("lower", "eur"), ("four-letters", "EURO"), ("empty", ""), ("numeric-code", 978),
    ("fullwidth", "\uff25\uff35\uff32"), ("trailing-newline", "EUR\n")]
MORE_BAD_CURRENCIES: list[tuple[str, Any]] = [
    ("two-letters", "EU"), ("digit", "E1R"), ("leading-space", " EUR"), ("accented", "ÉUR"),
    ("true", True), ("null", None), ("list", ["EUR"])]
for _ep, _field, _full in [
        ("put-customer-new", "currency", False), ("put-customer-replace", "currency", False),
        ("patch-customer", "currency", False), ("open-items", "items.0.currency", False),
        ("invoice", "currency", True), ("payment", "currency", False),
        ("credit-check", "currency", True)]:
    for _label, _value in BAD_CURRENCIES + (MORE_BAD_CURRENCIES if _full else []):
        add(f"{_ep}-{_field}-{_label}", field_case(_ep, _field, _value))
# No rate USD/CHF -> EUR is stored: a document in either cannot be converted.
for _ep, _field in [("open-items", "items.0.currency"), ("invoice", "currency"),
                    ("payment", "currency"), ("credit-check", "currency")]:
    for _value in ("USD", "CHF"):
        add(f"{_ep}-{_field}-mismatch-{_value}",
            on(_ep, mutate(ENDPOINTS[_ep].body, _field, _value), code="fx_rate_missing"))

# Ids in bodies.
BAD_IDS: list[tuple[str, Any]] = [
    ("empty", ""), ("65-chars", "x" * 65), ("space", "a b"), ("slash", "a/b"),
    ("unicode", "é"), ("trailing-newline", "C1\n"), ("nul", "a\x00b"), ("int", 12)]
MORE_BAD_IDS: list[tuple[str, Any]] = [
    ("backslash", "a\\b"), ("emoji", "🙂"), ("leading-space", " C1"), ("hash", "a#b"),
    ("quote", "a'b"), ("percent", "a%20b"), ("float", 1.5), ("true", True),
    ("list", ["C1"]), ("null", None)]
ID_FIELDS = [("open-items", "items.0.invoice_id", False), ("invoice", "invoice_id", True),
             ("invoice", "customer_id", False), ("invoice", "order_id", False),
             ("payment", "payment_id", False), ("payment", "customer_id", False),
             ("payment", "invoice_id", False), ("credit-check", "order_id", True),
             ("credit-check", "customer_id", True)]
for _ep, _field, _full in ID_FIELDS:
    for _label, _value in BAD_IDS + (MORE_BAD_IDS if _full else []):
        add(f"{_ep}-{_field}-{_label}", field_case(_ep, _field, _value))

# Dates.
BAD_DATES: list[tuple[str, Any]] = [
    ("feb-30", "2026-02-30"), ("compact", "20260101"), ("datetime", "2026-01-01T00:00:00"),
    ("int", 20260101), ("fullwidth", "\uff12\uff10\uff12\uff16-\uff10\uff11-\uff10\uff11")]
MORE_BAD_DATES: list[tuple[str, Any]] = [
    ("month-13", "2026-13-01"), ("empty", ""), ("short-parts", "2026-1-1"),
    ("word", "tomorrow"), ("year-0", "0000-01-01"), ("true", True), ("null", None),
    ("trailing-newline", f"{days(1)}\n")]
DATE_FIELDS = [("open-items", "items.0.due_on", False), ("invoice", "due_on", True),
               ("invoice", "issued_on", False), ("payment", "received_on", False),
               ("put-customer-new", "temporary_limit.expires_on", False),
               ("patch-customer", "temporary_limit.expires_on", False),
               ("fx-rate", "as_of", False)]
for _ep, _field, _full in DATE_FIELDS:
    for _label, _value in BAD_DATES + (MORE_BAD_DATES if _full else []):
        add(f"{_ep}-{_field}-{_label}", field_case(_ep, _field, _value))

# Booleans, integers, enums and texts where they do not belong.
LONG = "x" * 501
OTHER_FIELDS: list[tuple[str, str, list[tuple[str, Any]]]] = [
    ("credit-check", "dry_run", [("string-true", "true"), ("string-false", "false"),
                                 ("one", 1), ("zero", 0), ("null", None)]),
    ("credit-check", "channel", [("empty", ""), ("33-chars", "x" * 33), ("space", "a b"),
                                 ("unicode", "wébshop"), ("int", 5), ("true", True)]),
    ("put-customer-new", "name", [("empty", ""), ("201-chars", "x" * 201), ("int", 5),
                                  ("null", None), ("nul", "a\x00b"), ("list", ["x"])]),
    ("put-customer-new", "risk_class", [("lower", "aaa"), ("unknown", "Z"), ("empty", ""),
                                        ("int", 1), ("null", None)]),
    ("put-customer-new", "payment_terms_days", [
        ("string", "30"), ("fraction", Tok("30.5")), ("true", True), ("too-many", 3651),
        ("huge", 10**30)]),
    ("put-customer-new", "blocked", [("string-true", "true"), ("one", 1), ("yes", "yes"),
                                     ("null", None)]),
    ("put-customer-new", "block_reason", [("empty", ""), ("501-chars", LONG), ("int", 5),
                                          ("nul", "a\x00b")]),
    ("put-customer-new", "reason", [("empty", ""), ("501-chars", LONG), ("nul", "a\x00b")]),
    ("put-customer-new", "temporary_limit", [("string", "500"), ("list", []),
                                             ("number", 500)]),
    ("patch-customer", "risk_class", [("lower", "bbb"), ("unknown", "D")]),
    ("patch-customer", "blocked", [("string-false", "false"), ("zero", 0)]),
    ("patch-customer", "payment_terms_days", [("string", "30"), ("negative", -5)]),
    ("patch-customer", "reason", [("empty", ""), ("501-chars", LONG), ("nul", "a\x00b")]),
    ("open-items", "items", [("object", {}), ("string", "I1"), ("null", None)]),
    ("open-items", "items.0", [("int", 1), ("list", []), ("null", None), ("string", "I9")]),
    ("cancel", "reason", [("empty", ""), ("501-chars", LONG), ("int", 5), ("nul", "a\x00b")]),
    ("release", "reason", [("empty", ""), ("501-chars", LONG), ("int", 5), ("null", None),
                           ("nul", "a\x00b"), ("list", ["ok"])]),
    ("reject", "reason", [("empty", ""), ("501-chars", LONG), ("false", False),
                          ("null", None), ("nul", "a\x00b")]),
    ("policy", "prepay_required", [("string-false", "false"), ("zero", 0), ("null", None)]),
    ("policy", "max_days_past_due", [("string", "30"), ("fraction", Tok("20.5")),
                                     ("negative", -1), ("too-many", 3651), ("true", True),
                                     ("null", None)]),
    ("policy", "prepay_days_past_due", [("string", "60"), ("fraction", 60.5),
                                        ("too-many", 3651), ("null", None)]),
    ("policy", "reason", [("empty", ""), ("501-chars", LONG), ("nul", "a\x00b")]),
]
for _ep, _field, _values in OTHER_FIELDS:
    for _label, _value in _values:
        add(f"{_ep}-{_field}-{_label}", field_case(_ep, _field, _value))

# PATCH: fields that cannot be null are a validation error, not something else.
for _field in ("name", "currency", "credit_limit", "risk_class", "payment_terms_days",
               "blocked"):
    add(f"patch-customer-{_field}-null",
        on("patch-customer", {_field: None}, fields=(f"body.{_field}",)))

# Missing required fields, unknown fields, non-object and malformed bodies.
for _ep, _fields in REQUIRED.items():
    for _field in _fields:
        add(f"{_ep}-missing-{_field}", field_case(_ep, _field, DROP))
BODY_ENDPOINTS = [n for n, ep in ENDPOINTS.items() if ep.body is not NO_BODY]
for _ep in BODY_ENDPOINTS:
    _base = ENDPOINTS[_ep].body
    add(f"{_ep}-unknown-field", on(_ep, {**_base, "bogus": 1}, fields=("body.bogus",)))
    for _label, _value in [("array-of-body", [_base]), ("null", None)]:
        if _ep == "cancel" and _label == "null":
            continue  # cancel's body is optional; null is the same as no body
        add(f"{_ep}-non-object-{_label}", on(_ep, _value, fields=("body",)))
    for _label, _raw in [("truncated", b'{"amount": "1"'), ("invalid-utf8", b'{"a": "\xff"}')]:
        add(f"{_ep}-malformed-{_label}", on(_ep, Raw(_raw), status=400, code="invalid_json"))
    if _ep != "cancel":
        add(f"{_ep}-empty-body", on(_ep, Raw(b""), fields=("body",)))
for _label, _raw in [("single-quotes", b"{'amount': '1'}"), ("nan-top-level", b"NaN"),
                     ("trailing-comma", b'{"amount": "1",}'), ("two-objects", b"{} {}"),
                     ("bare-word", b"amount"), ("comment", b'{"amount": 1 /* x */}'),
                     ("infinity-top-level", b"Infinity")]:
    add(f"invoice-malformed-{_label}", on("invoice", Raw(_raw), status=400,
                                          code="invalid_json"))
for _label, _value in [("array", []), ("true", True), ("array-of-strings", ["a"]),
                       ("string", "x"), ("number", 1)]:
    add(f"credit-check-non-object-{_label}", on("credit-check", _value, fields=("body",)))
add("credit-check-camel-case-field", on("credit-check", {
    **ENDPOINTS["credit-check"].body, "customerId": "C1"}, fields=("body.customerId",)))
add("put-customer-new-unknown-nested-field",
    field_case("put-customer-new", "temporary_limit.extra", 1))
add("patch-customer-unknown-nested-field",
    field_case("patch-customer", "temporary_limit.extra", 1))
add("open-items-unknown-item-field", field_case("open-items", "items.0.order_id", "O1"))
add("amend-currency-is-unknown", on("amend", {"amount": "1500", "currency": "EUR"},
                                    fields=("body.currency",)))
add("open-items-duplicate-invoice", on("open-items", {"items": [ITEM, ITEM]},
                                       fields=("body.items",)))
add("put-customer-new-surrogate-name", on("put-customer-new", Raw(
    b'{"name": "\\ud800", "currency": "EUR", "credit_limit": "1"}'), status=(400, 422),
    code=("validation_error", "invalid_json")))

# Path ids: invalid spellings are 422 naming the path parameter; no route is 404.
PATH_ENDPOINTS = [  # name, method, path template, role, body
    ("put-customer", "PUT", "/v1/customers/{}", "controller",
     ENDPOINTS["put-customer-new"].body),
    ("patch-customer", "PATCH", "/v1/customers/{}", "controller", {"credit_limit": "1"}),
    ("get-customer", "GET", "/v1/customers/{}", "controller", NO_BODY),
    ("exposure", "GET", "/v1/customers/{}/exposure", "ledger", NO_BODY),
    ("history", "GET", "/v1/customers/{}/history", "controller", NO_BODY),
    ("open-items", "PUT", "/v1/customers/{}/open-items", "ledger", {"items": [ITEM]}),
    ("get-order", "GET", "/v1/orders/{}", "warehouse", NO_BODY),
    ("amend", "PATCH", "/v1/orders/{}", "order-entry", {"amount": "1"}),
    ("dispatch", "POST", "/v1/orders/{}/dispatch-check", "warehouse", NO_BODY),
    ("cancel", "POST", "/v1/orders/{}/cancel", "order-entry", NO_BODY),
    ("release", "POST", "/v1/orders/{}/release", "controller", {"reason": "ok"}),
    ("reject", "POST", "/v1/orders/{}/reject", "controller", {"reason": "no"}),
]
BAD_PATH_IDS = [("65-chars", "x" * 65), ("space", "a%20b"), ("unicode", "%C3%A9"),
                ("newline", "C1%0A"), ("nul", "a%00b")]
MORE_BAD_PATH_IDS = [("emoji", "%F0%9F%99%82"), ("quote", "O1%27%20OR%20%271%27=%271"),
                     ("plus", "a+b"), ("comma", "a,b"), ("tab", "a%09b")]
for _name, _method, _tpl, _role, _body in PATH_ENDPOINTS:
    _param = "path.customer_id" if "customers" in _tpl else "path.order_id"
    _full = _name in ("put-customer", "get-order")
    for _label, _value in BAD_PATH_IDS + (MORE_BAD_PATH_IDS if _full else []):
        add(f"path-{_name}-{_label}", Case(_method, _tpl.format(_value), _body, _role,
                                           fields=(_param,)))
    add(f"path-{_name}-slash", Case(_method, _tpl.format("C1%2FO1"), _body, _role,
                                    status=404, code="not_found"))
    add(f"path-{_name}-empty", Case(_method, _tpl.format(""), _body, _role,
                                    status=(404, 405), code=("not_found",
                                                             "method_not_allowed")))
    _unknown = "customer_not_found" if "customers" in _tpl else "order_not_found"
    if _name != "put-customer":
        add(f"path-{_name}-unknown", Case(_method, _tpl.format("NOPE"), _body, _role,
                                          status=404, code=_unknown,
                                          absent=("/v1/customers/NOPE", "/v1/orders/NOPE")))

# Query parameters of the paginated lists, and the policies' risk class.
BAD_LIMITS = [("zero", "0"), ("negative", "-1"), ("201", "201"), ("10000", "10000"),
              ("word", "ten"), ("fraction", "1.5"), ("huge", "9" * 30)]
for _label, _value in BAD_LIMITS:
    add(f"history-limit-{_label}", Case("GET", f"/v1/customers/C1/history?limit={_value}",
                                        fields=("query.limit",)))
    add(f"holds-limit-{_label}", Case("GET", f"/v1/holds?limit={_value}",
                                      fields=("query.limit",)))
for _label, _value in [("word", "bad"), ("lowercase", "0" * 25 + "a"), ("27-chars", "0" * 27),
                       ("25-chars", "0" * 25), ("sql", "0%27%20OR%201=1")]:
    add(f"history-cursor-{_label}", Case("GET", f"/v1/customers/C1/history?cursor={_value}",
                                         fields=("query.cursor",)))


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode()


for _label, _value in [("punctuation", "!!!!"), ("no-separator", "123"),
                       ("not-a-number", "yesterday~O1"), ("empty-position", "~O1"),
                       ("19-digits", "1" * 19 + "~O1"), ("bad-order-id", "1~a%20b"),
                       ("old-format", b64(b"2026-01-01T00:00:00+00:00|O1"))]:
    add(f"holds-cursor-{_label}", Case("GET", f"/v1/holds?cursor={_value}",
                                       fields=("query.cursor",)))
add("holds-cursor-too-long", Case("GET", f"/v1/holds?cursor={'x' * 201}",
                                  fields=("query.cursor",)))
for _label, _value in [("space", "a%20b"), ("65-chars", "x" * 65), ("unicode", "%C3%A9")]:
    add(f"holds-customer-{_label}", Case("GET", f"/v1/holds?customer_id={_value}",
                                         fields=("query.customer_id",)))
for _label, _value in [("lowercase", "aaa"), ("unknown", "D"), ("quote", "A%27"),
                       ("long", "A" * 300)]:
    for _method, _body in [("GET", NO_BODY), ("PUT", ENDPOINTS["policy"].body)]:
        add(f"policy-{_method.lower()}-class-{_label}",
            Case(_method, f"/v1/policies/{_value}", _body, status=404,
                 code="risk_class_not_found"))
# Exchange rates: the pair in the path, the listing's filters.
_RATE = ENDPOINTS["fx-rate"].body
for _label, _value in [("lower", "usd"), ("two-letters", "US"), ("four-letters", "USDX"),
                       ("digit", "U1D"), ("accented", "%C3%89UR"), ("space", "US%20")]:
    add(f"fx-rate-path-from-{_label}", Case("PUT", f"/v1/fx-rates/{_value}/EUR", _RATE,
                                            "controller", fields=("path.from",)))
    add(f"fx-rate-path-to-{_label}", Case("PUT", f"/v1/fx-rates/USD/{_value}", _RATE,
                                          "controller", fields=("path.to",)))
    add(f"fx-rates-from-{_label}", Case("GET", f"/v1/fx-rates?from={_value}",
                                        fields=("query.from",)))
    add(f"fx-rates-to-{_label}", Case("GET", f"/v1/fx-rates?to={_value}",
                                      fields=("query.to",)))
add("fx-rate-same-pair", Case("PUT", "/v1/fx-rates/EUR/EUR", _RATE, "controller",
                              fields=("path.to",)))
add("fx-rate-one-currency", Case("PUT", "/v1/fx-rates/USD", _RATE, "controller", status=404,
                                 code="not_found"))
for _label, _value in [("zero", "0"), ("1001", "1001"), ("word", "ten")]:
    add(f"fx-rates-limit-{_label}", Case("GET", f"/v1/fx-rates?limit={_value}",
                                         fields=("query.limit",)))
for _label, _value in [("word", "bad"), ("lower", "usd:eur:2026-01-01"),
                       ("no-date", "USD:EUR"), ("feb-30", "USD:EUR:2026-02-30")]:
    add(f"fx-rates-cursor-{_label}", Case("GET", f"/v1/fx-rates?cursor={_value}",
                                          code="validation_error"))
add("customers-wrong-method", Case("DELETE", "/v1/customers/C1", status=405,
                                   code="method_not_allowed"))
add("invoices-wrong-method", Case("GET", "/v1/invoices", status=405,
                                  code="method_not_allowed"))
add("unknown-route", Case("GET", "/v1/nothing-here", status=404, code="not_found"))
add("invoice-text-plain", on("invoice", headers={"content-type": "text/plain"},
                             status=(415, 422),
                             code=("unsupported_media_type", "validation_error")))

# Requests that are well-formed but refused by the ledgers' rules.
CONFLICTS = [
    ("credit-check-same-id-other-amount", on("credit-check", mutate(
        ENDPOINTS["credit-check"].body, "order_id", "O1"), status=409, code="conflict")),
    ("credit-check-same-id-other-customer", on("credit-check", {
        **ENDPOINTS["credit-check"].body, "order_id": "O1", "customer_id": "C2",
        "amount": "2000"}, status=409, code="conflict")),
    ("invoice-same-id-other-amount", on("invoice", {
        **ENDPOINTS["invoice"].body, "invoice_id": "I1", "order_id": None}, status=409,
        code="conflict")),
    ("invoice-unknown-customer", on("invoice", {
        **ENDPOINTS["invoice"].body, "customer_id": "NOPE", "order_id": None}, status=404,
        code="customer_not_found", absent=("/v1/customers/NOPE",))),
    ("invoice-order-of-other-customer", on("invoice", {
        **ENDPOINTS["invoice"].body, "order_id": "O2"}, status=409,
        code="order_customer_mismatch")),
    ("payment-unknown-customer", on("payment", {
        **ENDPOINTS["payment"].body, "customer_id": "NOPE", "invoice_id": None}, status=404,
        code="customer_not_found", absent=("/v1/customers/NOPE",))),
    ("payment-invoice-of-other-customer", on("payment", {
        **ENDPOINTS["payment"].body, "invoice_id": "I2"}, status=404,
        code="invoice_not_found")),
    ("payment-unknown-invoice", on("payment", {
        **ENDPOINTS["payment"].body, "invoice_id": "NOPE"}, status=404,
        code="invoice_not_found")),
    ("open-items-invoice-of-other-customer", on("open-items", {"items": [
        {**ITEM, "invoice_id": "I2"}]}, status=409, code="conflict")),
    ("put-customer-currency-change-with-exposure", on("put-customer-replace", {
        **ENDPOINTS["put-customer-replace"].body, "currency": "USD"}, status=409,
        code="currency_change")),
    ("patch-customer-currency-change-with-exposure", on("patch-customer", {"currency": "USD"},
                                                        status=409, code="currency_change")),
    ("amend-below-invoiced", on("amend", {"amount": "400"}, status=409,
                                code="amount_below_invoiced")),
    ("amend-held-order", on("amend", path="/v1/orders/H1", status=409, code="invalid_state")),
    ("amend-shipped-order", on("amend", {"amount": "50"}, path="/v1/orders/S1", status=409,
                               code="invalid_state")),
    ("dispatch-held-order", on("dispatch", path="/v1/orders/H1/dispatch-check", status=409,
                               code="not_dispatchable")),
    ("cancel-shipped-order", on("cancel", path="/v1/orders/S1/cancel", status=409,
                                code="invalid_state")),
    ("release-approved-order", on("release", path="/v1/orders/O1/release", status=409,
                                  code="invalid_state")),
    ("reject-approved-order", on("reject", path="/v1/orders/O1/reject", status=409,
                                 code="invalid_state")),
    ("release-shipped-order", on("release", path="/v1/orders/S1/release", status=409,
                                 code="invalid_state")),
]
for _id, _case in CONFLICTS:
    add(_id, _case)


# Securities: the body's fields, the path ids, and refusals by the rules.
SECURITY = {"kind": "credit_insurance", "amount": "500", "currency": "EUR",
            "valid_from": days(-1), "valid_until": days(30), "provider": "Allianz Trade",
            "reference": "POL-1", "reason": "new cover"}
ENDPOINTS["put-security"] = Endpoint("PUT", "/v1/customers/C1/securities/S9", SECURITY,
                                     "controller", absent=("/v1/customers/C1/securities/S9",))
for _label, _value in CORE_BAD_AMOUNTS + POSITIVE_BAD:
    add(f"put-security-amount-{_label}", field_case("put-security", "amount", _value))
for _label, _value in BAD_CURRENCIES:
    add(f"put-security-currency-{_label}", field_case("put-security", "currency", _value))
for _field in ("valid_from", "valid_until"):
    for _label, _value in [*BAD_DATES, ("null", None)]:
        add(f"put-security-{_field}-{_label}", field_case("put-security", _field, _value))
for _field, _values in [
        ("kind", [("unknown", "pledge"), ("upper", "COLLATERAL"), ("int", 1), ("null", None)]),
        ("provider", [("empty", ""), ("201-chars", "x" * 201), ("nul", "a\x00b"), ("int", 5)]),
        ("reference", [("empty", ""), ("501-chars", LONG), ("nul", "a\x00b")]),
        ("reason", [("empty", ""), ("501-chars", LONG), ("nul", "a\x00b")])]:
    for _label, _value in _values:
        add(f"put-security-{_field}-{_label}", field_case("put-security", _field, _value))
for _field in ("kind", "amount", "currency", "valid_from", "valid_until"):
    add(f"put-security-missing-{_field}", field_case("put-security", _field, DROP))
add("put-security-until-before-from", field_case("put-security", "valid_until", days(-2)))
add("put-security-unknown-field", on("put-security", {**SECURITY, "bogus": 1},
                                     fields=("body.bogus",)))
for _label, _value in [("array-of-body", [SECURITY]), ("null", None), ("string", "x")]:
    add(f"put-security-non-object-{_label}", on("put-security", _value, fields=("body",)))
add("put-security-empty-body", on("put-security", Raw(b""), fields=("body",)))
add("put-security-malformed", on("put-security", Raw(b'{"amount": "1"'), status=400,
                                 code="invalid_json"))
add("put-security-no-rate", on("put-security", {**SECURITY, "currency": "USD"},
                               code="fx_rate_missing"))
SECURITY_PATHS = [("put", "PUT", "/v1/customers/{}/securities/{}", SECURITY),
                  ("get", "GET", "/v1/customers/{}/securities/{}", NO_BODY),
                  ("delete", "DELETE", "/v1/customers/{}/securities/{}", NO_BODY)]
for _name, _method, _tpl, _body in SECURITY_PATHS:
    for _label, _value in BAD_PATH_IDS:
        add(f"path-{_name}-security-customer-{_label}", Case(
            _method, _tpl.format(_value, "S1"), _body, "controller",
            fields=("path.customer_id",)))
        add(f"path-{_name}-security-id-{_label}", Case(
            _method, _tpl.format("C1", _value), _body, "controller",
            fields=("path.security_id",)))
    add(f"path-{_name}-security-unknown-customer", Case(
        _method, _tpl.format("NOPE", "S1"), _body, "controller", status=404,
        code="customer_not_found", absent=("/v1/customers/NOPE",)))
    add(f"path-{_name}-security-slash", Case(_method, _tpl.format("C1", "S1%2FX"), _body,
                                             "controller", status=404, code="not_found"))
for _method in ("GET", "DELETE"):
    add(f"{_method.lower()}-unknown-security", Case(
        _method, "/v1/customers/C1/securities/NOPE", status=404, code="security_not_found"))
for _label, _value in BAD_PATH_IDS:
    add(f"path-list-securities-{_label}", Case(
        "GET", f"/v1/customers/{_value}/securities", role="controller",
        fields=("path.customer_id",)))
add("path-list-securities-unknown", Case("GET", "/v1/customers/NOPE/securities",
                                         status=404, code="customer_not_found"))
add("securities-wrong-method", Case("POST", "/v1/customers/C1/securities", SECURITY,
                                    status=405, code="method_not_allowed"))


# Credit groups: the body's fields, the path ids, and membership refused by the rules.
GROUP_BODY = {"name": "New Holding", "currency": "EUR", "credit_limit": "1000",
              "blocked": True, "block_reason": "dispute", "reason": "new group"}
ENDPOINTS["put-group-new"] = Endpoint("PUT", "/v1/groups/NEWG", GROUP_BODY, "controller",
                                      absent=("/v1/groups/NEWG",))
ENDPOINTS["put-group-replace"] = Endpoint("PUT", "/v1/groups/G1", {
    "name": "Group G1", "currency": "EUR", "credit_limit": "200000"}, "controller")
for _ep in ("put-group-new", "put-group-replace"):
    for _label, _value in CORE_BAD_AMOUNTS + NON_NEGATIVE_BAD:
        add(f"{_ep}-credit_limit-{_label}", field_case(_ep, "credit_limit", _value))
    for _label, _value in BAD_CURRENCIES:
        add(f"{_ep}-currency-{_label}", field_case(_ep, "currency", _value))
    for _field in ("name", "currency", "credit_limit"):
        add(f"{_ep}-missing-{_field}", field_case(_ep, _field, DROP))
    add(f"{_ep}-unknown-field", on(_ep, {**ENDPOINTS[_ep].body, "bogus": 1},
                                   fields=("body.bogus",)))
    for _label, _value in [("array-of-body", [GROUP_BODY]), ("null", None), ("string", "x")]:
        add(f"{_ep}-non-object-{_label}", on(_ep, _value, fields=("body",)))
    add(f"{_ep}-empty-body", on(_ep, Raw(b""), fields=("body",)))
    add(f"{_ep}-malformed", on(_ep, Raw(b'{"name": "x"'), status=400, code="invalid_json"))
for _field, _values in [
        ("name", [("empty", ""), ("201-chars", "x" * 201), ("int", 5), ("null", None),
                  ("nul", "a\x00b")]),
        ("blocked", [("string-true", "true"), ("one", 1), ("null", None)]),
        ("block_reason", [("empty", ""), ("501-chars", LONG), ("int", 5), ("nul", "a\x00b")]),
        ("reason", [("empty", ""), ("501-chars", LONG), ("nul", "a\x00b")])]:
    for _label, _value in _values:
        add(f"put-group-new-{_field}-{_label}", field_case("put-group-new", _field, _value))
for _ep in ("put-customer-new", "patch-customer"):
    for _label, _value in BAD_IDS:
        add(f"{_ep}-group_id-{_label}", field_case(_ep, "group_id", _value))
GROUP_PATHS = [("put", "PUT", "/v1/groups/{}", GROUP_BODY),
               ("get", "GET", "/v1/groups/{}", NO_BODY),
               ("exposure", "GET", "/v1/groups/{}/exposure", NO_BODY)]
for _name, _method, _tpl, _body in GROUP_PATHS:
    for _label, _value in BAD_PATH_IDS:
        add(f"path-{_name}-group-{_label}", Case(_method, _tpl.format(_value), _body,
                                                 "controller", fields=("path.group_id",)))
    add(f"path-{_name}-group-slash", Case(_method, _tpl.format("G1%2FX"), _body, "controller",
                                          status=404, code="not_found"))
    if _method == "GET":  # a PUT creates what is unknown
        add(f"path-{_name}-group-unknown", Case(_method, _tpl.format("NOPE"), role="controller",
                                                status=404, code="group_not_found"))
add("groups-wrong-method", Case("DELETE", "/v1/groups/G1", status=405,
                                code="method_not_allowed"))
for _id, _case in [
        ("put-customer-new-unknown-group", on("put-customer-new", {
            **ENDPOINTS["put-customer-new"].body, "group_id": "NOPE"}, code="unknown_group")),
        ("put-customer-new-group-in-other-currency", on("put-customer-new", {
            **ENDPOINTS["put-customer-new"].body, "group_id": "GU"},
            code="group_currency_mismatch")),
        ("patch-customer-unknown-group", on("patch-customer", {"group_id": "NOPE"},
                                            code="unknown_group")),
        ("patch-customer-group-in-other-currency", on("patch-customer", {"group_id": "GU"},
                                                      code="group_currency_mismatch")),
        ("patch-member-currency-away-from-its-group", on(
            "patch-customer", {"currency": "USD"}, path="/v1/customers/C2",
            status=(409, 422), code=("currency_change", "group_currency_mismatch"))),
        ("put-group-currency-away-from-its-members", on("put-group-replace", {
            **ENDPOINTS["put-group-replace"].body, "currency": "USD"},
            code="group_currency_mismatch"))]:
    add(_id, _case)


async def send(api: Api, case: Case) -> httpx.Response:
    """The request; an exception the app let escape becomes the 500 a client would get."""
    headers = dict(case.headers)
    kwargs: dict[str, Any] = {}
    if case.body is not NO_BODY:
        kwargs["content"] = encode(case.body)
        headers.setdefault("content-type", "application/json")
    try:
        return await api.request(case.method, case.path, role=case.role, headers=headers,
                                 **kwargs)
    except Exception as exc:  # noqa: BLE001 - the test transport re-raises after the 500
        return httpx.Response(500, headers={UNHANDLED: "1"},
                              text=f"unhandled {type(exc).__name__}: {str(exc)[:300]}")


# ---------------------------------------------------------------- the tests

@pytest.mark.parametrize("name", sorted(ENDPOINTS))
async def test_the_unmutated_request_is_accepted(world, name):
    """Each case above differs from an accepted request only in what it breaks."""
    ep = ENDPOINTS[name]
    r = await send(world, Case(ep.method, ep.path, ep.body, ep.role))
    assert r.status_code in (200, 201), r.text


async def test_boundary_values_are_accepted(world):
    """The edges of the rules are inside: 64-char ids, 4 decimals, just below 10^14."""
    long_id = "A" * 32 + "z._:-" + "9" * 27
    assert len(long_id) == 64
    r = await world.put(f"/v1/customers/{long_id}", {
        "name": "x" * 200, "currency": "EUR", "credit_limit": "99999999999999.9999",
        "payment_terms_days": 3650})
    assert r.status_code == 201, r.text
    r = await world.post("/v1/credit-checks", {
        "order_id": long_id, "customer_id": long_id, "amount": "0.0001", "currency": "EUR",
        "channel": "c" * 32}, role="order-entry")
    assert r.status_code == 201 and r.json()["outcome"] == "approve", r.text
    r = await world.post("/v1/invoices", {
        "invoice_id": long_id, "customer_id": long_id, "amount": 1250, "currency": "EUR",
        "due_on": days(30)}, role="ledger")
    assert r.status_code == 201 and r.json()["amount"] == "1250.00", r.text


@pytest.mark.parametrize("case", CASES)
async def test_bad_input_leaves_no_trace(world, baseline, db, case):
    r = await send(world, case)
    assert_problem(r, case.status, case.code, case.fields)
    await assert_unchanged(world, db, baseline)
    for path in case.absent:
        assert (await world.get(path)).status_code == 404, f"{path} exists after the request"


NASTY: list[tuple[str, str, Any]] = [
    ("PUT", "/v1/customers/NEW", {"name": "a\x00b", "currency": "EUR", "credit_limit": "1"}),
    ("PUT", "/v1/customers/NEW", Raw(b'{"name": "\\udfff\\ud800", "currency": "EUR", '
                                     b'"credit_limit": "1"}')),
    ("PUT", "/v1/customers/NEW", {"name": "x" * 1_000_000, "currency": "EUR",
                                  "credit_limit": "1"}),
    ("PUT", "/v1/customers/NEW", Raw(b"[" * 100_000 + b"]" * 100_000)),
    ("PUT", "/v1/customers/NEW", Raw(b'{"credit_limit": 1' + b"0" * 5000 + b"}")),
    ("PUT", "/v1/customers/NEW", Raw(b'{"credit_limit": 0.' + b"0" * 5000 + b"1}")),
    ("PUT", "/v1/customers/NEW", Raw(b'{"credit_limit": 1e999999999}')),
    ("PUT", "/v1/customers/C1", {"name": "C1", "currency": "EUR", "credit_limit": "1",
                                 "block_reason": "a\x00b", "blocked": True}),
    ("POST", "/v1/orders/H1/release", {"reason": "\x00"}),
    ("POST", "/v1/orders/O1/cancel", {"reason": "a\x00"}),
    ("PATCH", "/v1/customers/C1", {"reason": "\x00", "credit_limit": "1"}),
    ("PUT", "/v1/policies/A", {**ENDPOINTS["policy"].body, "reason": "\x00"}),
    ("POST", "/v1/credit-checks", {"order_id": "O9", "customer_id": "C1", "amount": "1",
                                   "currency": "EUR", "channel": "\x00"}),
    ("GET", "/v1/customers/C1%27%3B%20DROP%20TABLE%20accounts%3B--", NO_BODY),
    ("GET", "/v1/policies/A%27%20OR%20%271%27=%271", NO_BODY),
    ("GET", "/v1/policies/%00", NO_BODY),
    ("GET", "/v1/orders/" + "x" * 10_000, NO_BODY),
    ("GET", f"/v1/holds?cursor={b64(b'2026-01-01T00:00:00|O1')}", NO_BODY),
    ("GET", f"/v1/holds?cursor={b64(b'9999-12-31T23:59:59+14:00|' + b'x' * 100)}", NO_BODY),
    ("GET", f"/v1/holds?cursor={b64(b'0001-01-01T00:00:00-12:00|O1')}", NO_BODY),
    ("GET", "/v1/customers/C1/history?cursor=" + "Z" * 26, NO_BODY),
]


async def test_no_error_body_leaks_a_traceback_or_sql(world, baseline, db):
    """Whatever is thrown at the API, no answer shows a traceback, SQL or driver text, none
    is a 500, and nothing is stored (the cursors at the end are valid: 200 is fine)."""
    failures = []
    for method, path, body in NASTY:
        r = await send(world, Case(method, path, body))
        where = f"{method} {path[:60]}"
        if UNHANDLED not in r.headers:
            assert_no_leak(r.text)
        if r.status_code >= 500:
            failures.append(f"{where} -> {r.status_code} {r.text[:160]}")
        elif r.status_code >= 400:
            media = r.headers.get("content-type", "").split(";")[0]
            assert media == PROBLEM_JSON, f"{where}: {media}"
    assert not failures, "\n".join(failures)
    await assert_unchanged(world, db, baseline)
