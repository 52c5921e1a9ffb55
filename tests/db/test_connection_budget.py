"""The connection budget: a burst queues in the pool, and a connection PostgreSQL refuses for
lack of slots (SQLSTATE 53300) is retried inside the request's deadline, then answered 503.

An app of its own at the product's defaults (an empty pool, so its first requests connect),
while this test holds every connection slot PostgreSQL has left.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest

from app.main import create_app
from app.settings import Settings
from tests.conftest import PG_ADMIN
from tests.helpers import account

PROBLEM = "application/problem+json"


@contextlib.asynccontextmanager
async def every_free_slot() -> AsyncIterator[list[asyncpg.Connection]]:
    """Connections to PostgreSQL until it refuses another ("too many clients already")."""
    held: list[asyncpg.Connection] = []
    try:
        while len(held) < 500:
            try:
                held.append(await asyncpg.connect(PG_ADMIN))
            except asyncpg.TooManyConnectionsError:
                break
        yield held
    finally:
        await asyncio.gather(*(c.close() for c in held), return_exceptions=True)


@contextlib.asynccontextmanager
async def fresh_app(settings: Settings, keys: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://cg.test",
                                     headers={"Authorization": f"Bearer {keys['admin']}"}
                                     ) as client:
            yield client


def _check(order_id: str) -> dict[str, str]:
    return {"order_id": order_id, "customer_id": "BUDGET", "amount": "10.00",
            "currency": "EUR"}


@pytest.mark.slow
async def test_refused_connections_are_retried_until_slots_free_up(api, settings, keys):
    await account(api, "BUDGET", "1000")
    async with every_free_slot() as held:
        assert held, "PostgreSQL refused even the first connection"
        async with fresh_app(settings, keys) as client:
            identical = [client.post("/v1/credit-checks", json=_check("B-SAME"))
                         for _ in range(10)]
            distinct = [client.post("/v1/credit-checks", json=_check(f"B-{i}"))
                        for i in range(10)]
            pending = asyncio.gather(*identical, *distinct)
            await asyncio.sleep(0.4)  # every request is now waiting for a connection
            for conn in held[:8]:
                await conn.close()
            responses = await pending
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 9 + [201] * 11, [(r.status_code, r.text[:200])
                                                 for r in responses]
    same = {r.json()["decision_id"] for r in responses[:10]}
    assert len(same) == 1, "identical racing checks made more than one decision"
    exposure = (await api.get("/v1/customers/BUDGET/exposure")).json()
    assert exposure["open_orders"] == "110.00"


@pytest.mark.slow
async def test_no_slot_within_the_deadline_is_503_unavailable_not_500(api, settings, keys):
    await account(api, "BUDGET", "1000")
    async with every_free_slot() as held:
        assert held
        async with fresh_app(settings, keys) as client:
            responses = await asyncio.gather(
                *(client.post("/v1/credit-checks", json=_check(f"N-{i}")) for i in range(5)),
                *(client.post("/v1/credit-checks", json=_check("N-SAME")) for _ in range(5)))
    for r in responses:
        assert r.status_code == 503, r.text
        assert r.headers["content-type"].startswith(PROBLEM)
        assert r.json()["code"] == "unavailable"
        assert r.headers.get("retry-after") == "1"
    exposure = (await api.get("/v1/customers/BUDGET/exposure")).json()
    assert exposure["open_orders"] == "0.00" and exposure["held_count"] == 0
