"""The hot path's shape, counted on the wire: a reserving check is two PostgreSQL round trips
(one read, one write), checks in flight together share them, and a dry run of a cached
customer has none.

An app of its own at the product's defaults whose pool reaches PostgreSQL through the small
TCP proxy of bench/trace.py, which parses the frontend protocol: every Sync or simple Query
is one round trip, every Execute or Query one statement, every Parse one prepare. So
BEGIN/COMMIT, key look-ups, prepares and a fallback to the locked pass all show; nothing is
assumed. Sequential requests (no contention) after a warm-up that fills every pooled
connection's statement cache, the key cache and the Redis cache. tests/credit/test_cost.py
holds the other half of a check's cost: the pages its read touches, whatever the history.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import event
from sqlalchemy.engine import make_url

from app.main import create_app
from app.metrics import CACHE_REQUESTS
from app.settings import Settings
from bench.trace import Wire, start_proxy
from tests.api import Api
from tests.helpers import account

N = 40  # measured checks (distinct customers, each checked once)
WARM = 4  # warm-up requests per pooled connection (the pool hands connections out in turn)
DRY_CUSTOMERS = 5
ATTEMPTS = 3  # a measurement during which Redis failed is taken again (see _steady)


class Counted:
    """The app behind the counting proxy, and what SQLAlchemy executed (for the messages)."""

    def __init__(self, app: Any, api: Api, wire: Wire) -> None:
        self.app, self.api, self.wire = app, api, wire
        self.sql: Counter[str] = Counter()

    def reset(self) -> None:
        self.wire.reset()
        self.sql.clear()

    def report(self, n: int) -> str:
        messages = {k: v / n for k, v in sorted(self.wire.counts.items())}
        return (f"per request: {self.wire.round_trips / n} round trips, "
                f"{self.wire.statements / n} statements, {self.wire.counts['P'] / n} prepares;"
                f" frontend messages {messages}; SQLAlchemy statements {dict(self.sql)}")


@contextlib.asynccontextmanager
async def counted_app(settings: Settings, keys: dict[str, str]) -> AsyncIterator[Counted]:
    url = make_url(settings.require_database_url())
    wire = Wire()
    proxy = await start_proxy(wire, url.host or "127.0.0.1", url.port or 5432)
    port = proxy.sockets[0].getsockname()[1]
    # Only the pool goes through the proxy: the LISTEN connection (its liveness probe every
    # few seconds) goes direct, so that nothing in the background is counted.
    proxied = settings.model_copy(update={
        "database_url": url.set(host="127.0.0.1", port=port).render_as_string(
            hide_password=False),
        "listen_database_url": settings.database_url})
    app = create_app(proxied)
    try:
        async with app.router.lifespan_context(app):
            counted = Counted(app, Api(app, keys), wire)

            @event.listens_for(app.state.db.engine.sync_engine, "before_cursor_execute")
            def _named(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
                counted.sql[" ".join(statement.split())[:80]] += 1

            for _ in range(100):  # keys are cached only while the listener is up
                if app.state.keys._listening:
                    break
                await asyncio.sleep(0.05)
            assert app.state.keys._listening, "the notification listener did not come up"
            yield counted
    finally:
        proxy.close()
        await proxy.wait_closed()


def _redis_errors() -> float:
    return float(CACHE_REQUESTS.labels("error")._value.get())


async def _steady(counted: Counted, warm: Callable[[], Awaitable[None]],
                  measure: Callable[[], Awaitable[int]]) -> int:
    """Warm up, reset the counts, measure (returns how many requests it made).

    A Redis call that times out (50 ms by default, on a busy machine) is answered from
    PostgreSQL by design: a cache miss reads the database, an invalidation that could not be
    sent is signalled over NOTIFY. Neither is the hot path's shape, so a measurement during
    which Redis failed is taken again, once Redis is usable.
    """
    cache = counted.app.state.cache
    for _ in range(ATTEMPTS):
        for _ in range(30):  # a failed call opens a one-second circuit
            if cache is None or cache.available:
                break
            await asyncio.sleep(0.1)
        await warm()
        errors = _redis_errors()
        counted.reset()
        n = await measure()
        if _redis_errors() == errors:
            return n
    pytest.fail(f"Redis failed during each of {ATTEMPTS} measurements")


def _body(order_id: str, customer_id: str, rng: random.Random, **extra: Any) -> dict[str, Any]:
    return {"order_id": order_id, "customer_id": customer_id,
            "amount": f"{rng.randint(10, 999)}.{rng.randint(0, 99):02d}", "currency": "EUR",
            "channel": "erp", **extra}


async def test_a_reserving_check_is_one_read_and_one_write(api, settings, keys, monkeypatch):
    """Approvals of distinct random customers, each warm: exactly 2 round trips and 2
    statements per check (the SNAPSHOT read, the WRITE_IF_FITS write), nothing prepared.
    And a dry run of a cached customer: no round trip at all."""
    # The last-use times of API keys are written every 30 s; not inside the measurement.
    monkeypatch.setattr("app.auth.verifier.FLUSH_SECONDS", 3600.0)
    rng = random.Random(14)
    pool = settings.db_pool_size + settings.db_max_overflow
    warm_ids = [f"RTW{n:03d}" for n in range(WARM * pool)]
    # Limits far above any order (at most 999.99): no hold, no UTILISATION_HIGH, and one
    # check per customer raises no ORDER_SPIKE, so no check needs the locked pass.
    measured = [f"RT{n:03d}" for n in range(N * ATTEMPTS)]
    dry_ids = [f"RTD{n}" for n in range(DRY_CUSTOMERS)]
    everyone = warm_ids + measured + dry_ids
    for start in range(0, len(everyone), pool):  # as many at a time as the pool serves
        await asyncio.gather(*(account(api, c, limit="1000000")
                               for c in everyone[start:start + pool]))
    rng.shuffle(measured)
    customers = iter(measured)
    orders = iter(range(10**6))

    async with counted_app(settings, keys) as counted:
        async def post(body: dict[str, Any]) -> httpx.Response:
            return await counted.api.post("/v1/credit-checks", body, role="order-entry")

        async def reserve(customer_id: str) -> None:
            r = await post(_body(f"RT-{next(orders)}", customer_id, rng))
            assert r.status_code == 201, r.text
            assert r.json()["outcome"] == "approve", r.text

        async def warm_checks() -> None:
            for customer_id in warm_ids:
                await reserve(customer_id)

        async def checks() -> int:
            for _ in range(N):
                await reserve(next(customers))  # each customer once: no row is warm
            return N

        n = await _steady(counted, warm_checks, checks)
        assert counted.wire.round_trips == 2 * n, counted.report(n)
        assert counted.wire.statements == 2 * n, counted.report(n)
        assert counted.wire.counts["P"] == 0, counted.report(n)  # prepared once, at warm-up

        # Checks in flight together share their reads and their approvals' writes
        # (app/credit/batching.py): fewer round trips than checks, where one by one each
        # takes two.
        concurrent = [f"RTC{n:03d}" for n in range(N * ATTEMPTS)]
        for start in range(0, len(concurrent), pool):
            await asyncio.gather(*(account(api, c, limit="1000000")
                                   for c in concurrent[start:start + pool]))
        together = iter(concurrent)

        async def warm_together() -> None:
            await asyncio.gather(*(reserve(customer_id) for customer_id in warm_ids))

        async def checks_together() -> int:
            await asyncio.gather(*(reserve(next(together)) for _ in range(N)))
            return N

        n = await _steady(counted, warm_together, checks_together)
        assert counted.wire.round_trips <= n // 2, counted.report(n)

        async def dry(customer_id: str) -> None:
            r = await post(_body(f"RTD-{next(orders)}", customer_id, rng, dry_run=True))
            assert r.status_code == 200, r.text
            assert r.json()["outcome"] == "approve", r.text

        async def warm_dry() -> None:
            for customer_id in dry_ids * 2:  # a miss reads and stores, the next one hits
                await dry(customer_id)

        async def dry_runs() -> int:
            for customer_id in dry_ids * 4:
                await dry(customer_id)
            return len(dry_ids) * 4

        n = await _steady(counted, warm_dry, dry_runs)
        assert counted.wire.round_trips == 0, counted.report(n)
        assert counted.wire.statements == 0, counted.report(n)
