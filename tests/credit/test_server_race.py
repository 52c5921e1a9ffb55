"""The invariant through a real server with two uvicorn workers, not only in-process."""

from __future__ import annotations

import asyncio
import re
import time
from decimal import Decimal as D

import httpx
import pytest

from tests.server import serve

pytestmark = pytest.mark.slow


@pytest.fixture
async def server(database_url, keys, clean_db):
    with serve(database_url, workers=2) as base:
        yield base


async def test_hundred_concurrent_checks_on_two_workers(server, keys):
    admin = {"Authorization": f"Bearer {keys['admin']}"}
    entry = {"Authorization": f"Bearer {keys['order-entry']}"}
    limits = httpx.Limits(max_connections=100)
    async with httpx.AsyncClient(base_url=server, timeout=30, limits=limits) as client:
        r = await client.put("/v1/customers/RACE", headers=admin, json={
            "name": "Race Ltd", "currency": "EUR", "credit_limit": "10000"})
        assert r.status_code == 201, r.text

        async def one(i: int) -> httpx.Response:
            return await client.post("/v1/credit-checks", headers=entry, json={
                "order_id": f"RACE-{i}", "customer_id": "RACE", "amount": "500",
                "currency": "EUR", "channel": "webshop"})

        started = time.perf_counter()
        responses = await asyncio.gather(*(one(i) for i in range(100)))
        elapsed = time.perf_counter() - started
        assert [r.status_code for r in responses] == [201] * 100
        outcomes = [r.json()["outcome"] for r in responses]
        assert outcomes.count("approve") == 20, outcomes
        for r in responses:
            body = r.json()
            if body["outcome"] == "approve":
                assert D(body["exposure"]["total"]) + D(body["amount"]) <= D("10000")
        exposure = (await client.get("/v1/customers/RACE/exposure", headers=admin)).json()
        assert exposure["open_orders"] == "10000.00"
        assert exposure["held_count"] == 80 - outcomes.count("prepay")

        metrics = (await client.get("/metrics")).text
        counted = sum(float(m) for m in re.findall(
            r'^creditgate_decisions_total\{[^}]*channel="webshop"[^}]*\} (\S+)$', metrics,
            re.MULTILINE))
        assert counted == 100, "decisions from both workers are counted exactly once"
    print(f"\n100 concurrent checks on 2 workers: {elapsed:.2f} s")


async def test_identical_requests_racing_across_workers(server, keys):
    admin = {"Authorization": f"Bearer {keys['admin']}"}
    entry = {"Authorization": f"Bearer {keys['order-entry']}"}
    async with httpx.AsyncClient(base_url=server, timeout=30) as client:
        r = await client.put("/v1/customers/SAME", headers=admin, json={
            "name": "Same", "currency": "EUR", "credit_limit": "10000"})
        assert r.status_code == 201, r.text
        body = {"order_id": "ONE", "customer_id": "SAME", "amount": "700", "currency": "EUR"}
        responses = await asyncio.gather(*(client.post("/v1/credit-checks", headers=entry,
                                                       json=body) for _ in range(10)))
        assert sorted(r.status_code for r in responses) == [200] * 9 + [201]
        assert len({r.json()["decision_id"] for r in responses}) == 1
        exposure = (await client.get("/v1/customers/SAME/exposure", headers=admin)).json()
        assert exposure["open_orders"] == "700.00"
        stored = (await client.get("/v1/orders/ONE", headers=entry)).json()
        assert (stored["status"], stored["reserved"]) == ("approved", "700.00")
        assert len(stored["decisions"]) == 1, "one decision, from whichever worker won"
