"""The credit check's fast path (app/credit/fast_path.py) answers exactly as the route does.

Every request is sent twice: to the app as it ships, and to the same app built without the
fast path (the FastAPI route alone). Status, problem code, headers that clients read and the
decision (ids and times aside) must be the same. A spy on the fast path's `check_credit` says
which requests the fast path answered itself, so a fast path that quietly handed everything
on to the route would fail here too.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from app.credit import fast_path
from app.credit.fast_path import CheckFastPath
from app.main import create_app
from app.settings import Settings
from tests.api import Api
from tests.helpers import account

VOLATILE = ("decision_id", "decided_at", "expires_at")


@pytest.fixture
async def route_only(settings: Settings, keys: dict[str, str]) -> AsyncIterator[Api]:
    """The app without its fast path: every check through FastAPI's route."""
    application = create_app(settings)
    application.user_middleware = [m for m in application.user_middleware
                                   if m.cls is not CheckFastPath]
    async with application.router.lifespan_context(application):
        yield Api(application, keys)


@pytest.fixture
def answered(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The order ids the fast path decided itself."""
    seen: list[str] = []
    real = fast_path.check_credit

    async def spy(db: Any, cache: Any, req: Any, caller: Any) -> Any:
        seen.append(req.order_id)
        return await real(db, cache, req, caller)

    monkeypatch.setattr(fast_path, "check_credit", spy)
    return seen


async def _cache_key(api: Api) -> None:
    """Have the app cache the order-entry key (the first request with a key looks it up,
    through the route)."""
    response = await api.get("/v1/customers/C1/exposure", role="order-entry")
    assert response.status_code in (200, 404), response.text


def _comparable(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    if isinstance(body, dict):
        body = {k: v for k, v in body.items() if k not in VOLATILE}
    return {"status": response.status_code, "body": body,
            "content-type": response.headers.get("content-type"),
            "replayed": response.headers.get("idempotent-replayed"),
            "www-authenticate": response.headers.get("www-authenticate"),
            "retry-after": response.headers.get("retry-after"),
            "request-id": "x-request-id" in response.headers}


async def _both(api: Api, route_only: Api, path: str, **kw: Any) -> tuple[dict[str, Any], ...]:
    """The same request to both apps; the route-only app's is about C2 (an account like C1;
    other customers as they are) under an `R-` order id, so each decides on equal ledgers."""
    body = kw.pop("json", None)
    fast = await api.post(path, json=body, **kw)
    if isinstance(body, dict) and "order_id" in body:
        swapped = "C2" if body.get("customer_id") == "C1" else body.get("customer_id")
        body = {**body, "order_id": "R-" + str(body["order_id"]), "customer_id": swapped}
    slow = await route_only.post(path, json=body, **kw)
    a, b = _comparable(fast), _comparable(slow)
    if isinstance(b["body"], dict) and "order_id" in b["body"]:
        b["body"]["order_id"] = str(b["body"]["order_id"]).removeprefix("R-")
        if b["body"].get("customer_id") == "C2":
            b["body"]["customer_id"] = "C1"
    return a, b


async def test_decisions_are_the_routes_and_the_fast_path_makes_them(api, route_only, answered):
    for customer in ("C1", "C2"):
        await account(api, customer, limit="1000")
    await _cache_key(api)
    for order_id, amount in (("A", "100"), ("H", "5000"), ("P", "1300"), ("D", "10"),
                             ("U", "10")):
        body = {"order_id": order_id, "customer_id": "NOBODY" if order_id == "U" else "C1",
                "amount": amount, "currency": "EUR", "channel": "erp",
                "dry_run": order_id == "D"}
        fast, slow = await _both(api, route_only, "/v1/credit-checks", role="order-entry",
                                 json=body)
        assert fast == slow, order_id
    assert answered == ["A", "H", "P", "D", "U"]


async def test_replays_and_conflicts_are_the_routes(api, route_only, answered):
    await account(api, limit="1000")
    await _cache_key(api)
    body = {"order_id": "O1", "customer_id": "C1", "amount": "10", "currency": "EUR"}
    first = await api.post("/v1/credit-checks", json=body, role="order-entry")
    assert first.status_code == 201
    again = await api.post("/v1/credit-checks", json=body, role="order-entry")
    assert again.status_code == 200 and again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    changed = {**body, "amount": "11"}
    conflict = await api.post("/v1/credit-checks", json=changed, role="order-entry")
    via_route = await route_only.post("/v1/credit-checks", json=changed, role="order-entry")
    assert _comparable(conflict) == _comparable(via_route)
    assert conflict.status_code == 409 and conflict.json()["code"] == "conflict"
    assert answered == ["O1", "O1", "O1"]


@pytest.mark.parametrize(("case", "kw"), [
    ("no key", {"role": None, "json": {"order_id": "X", "customer_id": "C1",
                                       "amount": "1", "currency": "EUR"}}),
    ("bad scheme", {"role": None, "headers": {"Authorization": "Basic abc"},
                    "json": {"order_id": "X", "customer_id": "C1", "amount": "1",
                             "currency": "EUR"}}),
    ("revoked key", {"role": "revoked", "json": {"order_id": "X", "customer_id": "C1",
                                                  "amount": "1", "currency": "EUR"}}),
    ("role refused", {"role": "warehouse", "json": {"order_id": "X", "customer_id": "C1",
                                                     "amount": "1", "currency": "EUR"}}),
    ("invalid fields", {"role": "order-entry", "json": {"order_id": "X", "customer_id": "C1",
                                                         "amount": "-1", "currency": "EURO"}}),
    ("not an object", {"role": "order-entry", "json": ["X"]}),
    ("malformed JSON", {"role": "order-entry", "content": b'{"order_id": ',
                        "headers": {"Content-Type": "application/json"}}),
    ("malformed, no key", {"role": None, "content": b"{",
                           "headers": {"Content-Type": "application/json"}}),
    ("form body", {"role": "order-entry", "content": b"order_id=X",
                   "headers": {"Content-Type": "application/x-www-form-urlencoded"}}),
])
async def test_refusals_are_the_routes(api, route_only, answered, case, kw):
    for customer in ("C1", "C2"):
        await account(api, customer, limit="1000")
    fast, slow = await _both(api, route_only, "/v1/credit-checks", **kw)
    assert fast == slow, case
    assert fast["status"] in (400, 401, 403, 422), case
    assert answered == [], f"{case}: refused by the route, not decided by the fast path"


async def test_a_key_not_yet_cached_goes_through_the_route_once(settings, keys, answered):
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        fresh = Api(application, keys)
        await account(fresh, limit="1000")
        for order_id in ("K1", "K2"):
            response = await fresh.post("/v1/credit-checks", role="order-entry", json={
                "order_id": order_id, "customer_id": "C1", "amount": "1", "currency": "EUR"})
            assert response.status_code == 201, response.text
    assert answered == ["K2"], "the first looks the key up (the route), the second is cached"


async def test_rate_limited_checks_spend_one_token_and_get_the_routes_429(
        settings, keys, answered):
    # About the rate-limit setting: a burst of 2 and a trickle of 0.1 requests/s makes the third
    # check in a row the one refused.
    limited = settings.model_copy(update={"rate_limit_per_second": 0.1,
                                          "rate_limit_burst": 2.0})
    application = create_app(limited)
    async with application.router.lifespan_context(application):
        client = Api(application, keys)
        await _cache_key(client)
        await account(client, limit="1000")
        statuses = []
        for order_id in ("L1", "L2"):
            response = await client.post("/v1/credit-checks", role="order-entry", json={
                "order_id": order_id, "customer_id": "C1", "amount": "1", "currency": "EUR"})
            statuses.append(response.status_code)
            if response.status_code == 429:
                assert response.json()["code"] == "rate_limited"
                assert response.headers["retry-after"]
    assert statuses == [201, 429], "the key's first request spent a token, L1 the second"
    assert answered == ["L1"]


async def test_the_request_log_and_metrics_name_the_route(api, answered, caplog):
    await account(api, limit="1000")
    await _cache_key(api)
    with caplog.at_level(logging.INFO, logger="creditgate.request"):
        response = await api.post("/v1/credit-checks", role="order-entry", json={
            "order_id": "M1", "customer_id": "C1", "amount": "1", "currency": "EUR"})
    assert response.status_code == 201 and answered == ["M1"]
    lines = [r.fields for r in caplog.records if r.name == "creditgate.request"  # type: ignore[attr-defined]
             and r.fields.get("method") == "POST"]
    assert len(lines) == 1
    line = lines[0]
    assert (line["status"], line["caller"], line["outcome"]) == (201, "test-order-entry",
                                                                 "approve")
    assert line["decision_id"] == response.json()["decision_id"]
    metrics = (await api.get("/metrics", role=None)).text
    assert 'route="/v1/credit-checks"' in metrics


async def test_concurrent_checks_through_the_fast_path_never_overdraw(api, answered):
    await account(api, limit="1000")
    await _cache_key(api)
    responses = await asyncio.gather(*(api.post("/v1/credit-checks", role="order-entry", json={
        "order_id": f"C{i}", "customer_id": "C1", "amount": "100", "currency": "EUR"})
        for i in range(25)))
    outcomes = [r.json()["outcome"] for r in responses]
    assert outcomes.count("approve") == 10 and len(answered) == 25
    exposure = (await api.get("/v1/customers/C1/exposure")).json()
    assert exposure["open_orders"] == "1000.00"
