"""Replays that leave out an optional field agree across the idempotent endpoints.

The rule: an omitted optional field means its default, and a retry is compared with the
original with defaults applied on both sides. `issued_on` (invoices) and `received_on`
(payments) default to the day the request was first recorded — the retry is the same
request, so it resolves against the original's day, even when it is sent the next day.
A credit check's `channel` defaults to null. Every combination either replays (200,
`Idempotent-Replayed: true`, the original body) or is a 409 `conflict` that changes nothing.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import pytest

from app import clock
from tests.api import Api
from tests.helpers import account, check, days, exposure

DEFAULT = object()  # stands for "the field's default, sent explicitly"
OTHER, ANOTHER = days(-3), days(-4)

# (first request's field, retry's field, expected status); None in a slot = field omitted.
COMBINATIONS = [
    pytest.param(OTHER, None, 409, id="given-other-then-omitted"),
    pytest.param(DEFAULT, None, 200, id="given-default-then-omitted"),
    pytest.param(None, DEFAULT, 200, id="omitted-then-given-default"),
    pytest.param(None, "null", 200, id="omitted-then-explicit-null"),
    pytest.param(None, OTHER, 409, id="omitted-then-given-other"),
    pytest.param(None, None, 200, id="omitted-then-omitted"),
    pytest.param(OTHER, OTHER, 200, id="given-then-same"),
    pytest.param(OTHER, ANOTHER, 409, id="given-then-different"),
]

DATED = {
    # kind: (path, key field, date field)
    "invoice": ("/v1/invoices", "invoice_id", "issued_on"),
    "payment": ("/v1/payments", "payment_id", "received_on"),
}


def _recorded_on(body: dict[str, Any]) -> str:
    return dt.datetime.fromisoformat(body["recorded_at"]).astimezone(dt.UTC).date().isoformat()


def _body(kind: str, field: str, value: Any, default: str, due_on: str | None = None
          ) -> dict[str, Any]:
    body: dict[str, Any] = {"customer_id": "C1", "amount": "250", "currency": "EUR"}
    if kind == "invoice":
        body.update(invoice_id="I1", due_on=due_on or days(30))
    else:
        body.update(payment_id="P1")
    if value is DEFAULT:
        body[field] = default
    elif value == "null":
        body[field] = None
    elif value is not None:
        body[field] = value
    return body


async def _assert_outcome(api: Api, r: httpx.Response, expect: int, first: dict[str, Any],
                          before: dict[str, Any]) -> None:
    if expect == 200:
        assert r.status_code == 200, r.text
        assert r.headers.get("idempotent-replayed") == "true"
        assert r.json() == first
    else:
        assert r.status_code == 409, r.text
        assert r.json()["code"] == "conflict"
        assert "idempotent-replayed" not in r.headers
    assert await exposure(api) == before  # a replay and a conflict both change nothing


@pytest.mark.parametrize("kind", sorted(DATED))
@pytest.mark.parametrize(("first_value", "retry_value", "expect"), COMBINATIONS)
async def test_dated_replays(api: Api, kind: str, first_value: Any, retry_value: Any,
                             expect: int) -> None:
    path, _key, field = DATED[kind]
    await account(api)
    today = days(0)
    r = await api.post(path, _body(kind, field, first_value, today), role="ledger")
    assert r.status_code == 201, r.text
    first = r.json()
    if _recorded_on(first) != today:
        pytest.skip("ran across midnight UTC")
    before = await exposure(api)
    r = await api.post(path, _body(kind, field, retry_value, today), role="ledger")
    await _assert_outcome(api, r, expect, first, before)
    # What is stored for an omitted date: invoices keep null, payments the recording day.
    if kind == "invoice":
        assert first["issued_on"] == (None if first_value is None else
                                      today if first_value is DEFAULT else first_value)
    else:
        assert first["received_on"] == (OTHER if first_value is OTHER else today)


@pytest.mark.parametrize("kind", sorted(DATED))
async def test_a_retry_the_next_day_resolves_against_the_original_day(
        api: Api, kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    path, _key, field = DATED[kind]
    await account(api)
    due_on = days(30)  # the retry is the same request: its due date does not move
    r = await api.post(path, _body(kind, field, None, "", due_on), role="ledger")
    assert r.status_code == 201, r.text
    first = r.json()
    recorded_on = _recorded_on(first)
    real_now = clock.now
    monkeypatch.setattr(clock, "now", lambda: real_now() + dt.timedelta(days=1))
    tomorrow = clock.today().isoformat()
    assert tomorrow != recorded_on and days(0) == tomorrow, "helpers follow the clock"
    before = await exposure(api)
    for retry in (None, recorded_on):  # omitted, or the default it stood for, given
        r = await api.post(path, _body(kind, field, retry, "", due_on), role="ledger")
        await _assert_outcome(api, r, 200, first, before)
    # The retry's own day is not what the omitted field meant the first time.
    r = await api.post(path, _body(kind, field, tomorrow, "", due_on), role="ledger")
    await _assert_outcome(api, r, 409, first, before)


@pytest.mark.parametrize(("first_value", "retry_value", "expect"), [
    pytest.param("webshop", None, 409, id="given-then-omitted"),
    pytest.param(None, "null", 200, id="omitted-then-explicit-null"),
    pytest.param(None, "webshop", 409, id="omitted-then-given"),
    pytest.param(None, None, 200, id="omitted-then-omitted"),
    pytest.param("webshop", "webshop", 200, id="given-then-same"),
    pytest.param("webshop", "erp", 409, id="given-then-different"),
])
async def test_credit_check_channel_replays(api: Api, first_value: str | None,
                                            retry_value: str | None, expect: int) -> None:
    await account(api)

    def extra(value: str | None) -> dict[str, Any]:
        if value is None:
            return {}
        return {"channel": None if value == "null" else value}

    first = await check(api, "O1", "400", **extra(first_value))
    before = await exposure(api)
    assert before["open_orders"] == "400.00"
    body = {"order_id": "O1", "customer_id": "C1", "amount": "400", "currency": "EUR",
            **extra(retry_value)}
    r = await api.post("/v1/credit-checks", body, role="order-entry")
    await _assert_outcome(api, r, expect, first, before)


@pytest.mark.parametrize(("first_body", "retry_body"), [
    pytest.param({"reason": "customer withdrew"}, None, id="given-then-omitted"),
    pytest.param(None, {"reason": "customer withdrew"}, id="omitted-then-given"),
    pytest.param(None, None, id="omitted-then-omitted"),
    pytest.param({"reason": "a"}, {"reason": "b"}, id="given-then-different"),
])
async def test_cancelling_again_is_harmless_whatever_the_reason(
        api: Api, first_body: dict[str, str] | None, retry_body: dict[str, str] | None) -> None:
    # DESIGN.md: "repeating it is harmless" — a cancel is keyed by the order's state, not by
    # an idempotency key and its body, so the optional reason never makes a repeat a
    # conflict (nor is a repeat marked Idempotent-Replayed: it is not a keyed replay).
    await account(api)
    await check(api, "O1", "400")
    r = await api.post("/v1/orders/O1/cancel", first_body, role="order-entry")
    assert r.status_code == 200, r.text
    assert "idempotent-replayed" not in r.headers
    first = r.json()
    before = await exposure(api)
    assert before["open_orders"] == "0.00"
    r = await api.post("/v1/orders/O1/cancel", retry_body, role="order-entry")
    assert r.status_code == 200, r.text
    assert r.json() == first
    assert await exposure(api) == before
