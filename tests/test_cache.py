"""The Redis read cache against a real Redis: hits, misses, invalidation, no stale writes."""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
from decimal import Decimal as D

import pytest

from app.cache import Cache
from app.credit.policy import Overdue, PolicyParams
from app.credit.state import CreditState, state_from_doc, state_to_doc
from app.customers.models import Account
from app.main import create_app
from app.metrics import CACHE_REQUESTS
from tests.conftest import REDIS_URL, Api
from tests.helpers import account, check, exposure, invoice, pay

TODAY = dt.date(2026, 11, 23)
NOW = dt.datetime(2026, 11, 23, 12, tzinfo=dt.UTC)


def state(open_orders: str = "0") -> CreditState:
    acct = Account("C1", "Acme", "EUR", D("1000"), "A", 30, False, None, D("5"), TODAY,
                   D("10.5"), D(open_orders), D(0), 0, 1, 1, NOW, NOW)
    return CreditState(acct, PolicyParams(), Overdue(3, D("7.25")))


@pytest.fixture
async def cache():
    c = Cache(REDIS_URL, namespace=f"t{secrets.token_hex(4)}")
    yield c
    await c.close()


def counted(result: str) -> float:
    return CACHE_REQUESTS.labels(result)._value.get()


def test_state_round_trips_through_json():
    original = state("12.3400")
    assert state_from_doc(state_to_doc(original)) == original


async def test_miss_then_hit(cache):
    misses, hits = counted("miss"), counted("hit")
    found, token = await cache.get_state("C1", TODAY)
    assert found is None and token is not None
    await cache.put_state("C1", token, TODAY, state())
    found, _ = await cache.get_state("C1", TODAY)
    assert found == state()
    assert counted("miss") == misses + 1 and counted("hit") == hits + 1


async def test_invalidation_retires_the_entry(cache):
    _, token = await cache.get_state("C1", TODAY)
    await cache.put_state("C1", token, TODAY, state())
    await cache.invalidate({"C1"})
    found, _ = await cache.get_state("C1", TODAY)
    assert found is None


async def test_invalidating_everyone(cache):
    _, token = await cache.get_state("C1", TODAY)
    await cache.put_state("C1", token, TODAY, state())
    await cache.invalidate({"*"})
    assert (await cache.get_state("C1", TODAY))[0] is None


async def test_a_slow_reader_cannot_put_a_stale_value_back(cache):
    _, token = await cache.get_state("C1", TODAY)   # reader misses, goes to the database...
    stale = state("0")
    await cache.invalidate({"C1"})                   # ...a writer commits and invalidates...
    await cache.put_state("C1", token, TODAY, stale)  # ...the reader stores what it read
    found, fresh_token = await cache.get_state("C1", TODAY)
    assert found is None, "the stale entry is dead on arrival"
    await cache.put_state("C1", fresh_token, TODAY, state("100"))
    assert (await cache.get_state("C1", TODAY))[0] == state("100")


async def test_an_entry_is_for_one_day_only(cache):
    _, token = await cache.get_state("C1", TODAY)
    await cache.put_state("C1", token, TODAY, state())
    tomorrow = TODAY + dt.timedelta(days=1)
    assert (await cache.get_state("C1", tomorrow))[0] is None


async def test_unreachable_redis_is_a_miss_and_an_error_never_an_exception():
    dead = Cache("redis://127.0.0.1:1/0", cooldown=60)
    errors = counted("error")
    assert await dead.get_state("C1", TODAY) == (None, None)
    await dead.invalidate({"C1"})
    assert counted("error") == errors + 1, "the circuit opened after the first failure"
    assert not dead.available
    await dead.close()


async def test_lost_invalidations_retire_everything_once_redis_is_back(cache):
    _, token = await cache.get_state("C1", TODAY)
    await cache.put_state("C1", token, TODAY, state())
    cache._down_until = float("inf")            # Redis "unreachable"...
    await cache.invalidate({"C1"})               # ...so this invalidation is lost
    cache._down_until = 0.0                      # back
    found, _ = await cache.get_state("C1", TODAY)
    assert found is None, "the epoch was bumped before the cache was used again"


async def test_api_reads_never_see_stale_exposure(api):
    """Every write invalidates: a cached exposure is re-read after each change."""
    await account(api, limit="1000")
    assert (await exposure(api))["open_orders"] == "0.00"
    assert (await exposure(api))["open_orders"] == "0.00"  # now from the cache
    await check(api, "O1", "100")
    assert (await exposure(api))["open_orders"] == "100.00"
    await invoice(api, "I1", "50", due_in=-40)
    ex = await exposure(api)
    assert ex["open_receivables"] == "50.00" and ex["oldest_overdue_days"] == 40
    await pay(api, "P1", "50")
    assert (await exposure(api))["open_receivables"] == "0.00"
    await api.patch("/v1/customers/C1", {"credit_limit": "2000"})
    assert (await exposure(api))["effective_limit"] == "2000.00"
    dry = await check(api, "D1", "1900", expect=200, dry_run=True)
    assert dry["outcome"] == "approve"
    await api.put("/v1/policies/unrated", {"prepay_required": True, "hold_band": "0.2",
                                           "max_days_past_due": 30, "prepay_days_past_due": 90,
                                           "overdue_tolerance": "0"})
    dry = await check(api, "D2", "1", expect=200, dry_run=True)
    assert [r["code"] for r in dry["reasons"]] == ["RISK_CLASS_PREPAY"]


@pytest.mark.parametrize("listen_url", [True, False], ids=["direct-listener", "deaf"])
async def test_behind_transaction_pooling_the_cache_needs_a_direct_listener(
        settings, db, keys, listen_url):
    """CREDITGATE_DB_PGBOUNCER: without a direct LISTEN connection nothing may be cached."""
    pooled = settings.model_copy(update={
        "db_pgbouncer": True,
        "listen_database_url": settings.database_url if listen_url else None})
    app = create_app(pooled)
    async with app.router.lifespan_context(app):
        client = Api(app, keys)
        for _ in range(100):  # the listener connects in the background
            if app.state.db.cache is None or app.state.keys._listening:
                break
            await asyncio.sleep(0.05)
        await account(client, "PGB", limit="1000")
        hits = counted("hit")
        for _ in range(3):
            assert (await exposure(client, "PGB"))["available"] == "1000.00"
        assert counted("hit") - hits == (2 if listen_url else 0)
        assert (app.state.db.cache is not None) is listen_url
