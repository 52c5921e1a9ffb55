"""The Redis read cache against a real Redis: hits, misses, invalidation, no stale writes."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import secrets
from dataclasses import replace
from decimal import Decimal as D

import asyncpg
import pytest
from redis.asyncio import Redis

from app.cache import Cache, retire_after_commit
from app.credit.codec import state_from_doc, state_to_doc
from app.credit.plans import CreditState
from app.credit.policy import Exposure, GroupTerms, Overdue, PolicyParams
from app.customers.models import Account
from app.db.engine import driver_connect_args
from app.main import create_app
from app.metrics import CACHE_REQUESTS
from app.notify import CACHE_CHANNEL
from tests.api import Api
from tests.cleanup import clean
from tests.conftest import REDIS_URL
from tests.helpers import account, check, exposure, invoice, pay
from tests.trust.test_faults import RedisServer

TODAY = dt.date(2026, 11, 23)
NOW = dt.datetime(2026, 11, 23, 12, tzinfo=dt.UTC)


def state(open_orders: str = "0") -> CreditState:
    acct = Account(
        customer_id="C1", name="Acme", currency="EUR", credit_limit=D("1000"), risk_class="A",
        payment_terms_days=30, blocked=False, block_reason=None, temp_limit_amount=D("5"),
        temp_limit_expires_on=TODAY, review_due_on=TODAY, max_order_amount=D("250.5"),
        payment_index=64, open_receivables=D("10.5"), open_orders=D(open_orders),
        held_amount=D(0), held_count=0, terms_version=1, ledger_version=1, created_at=NOW,
        updated_at=NOW)
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


def test_the_document_holds_amounts_and_dates_as_text_and_the_rest_as_is():
    at = dt.datetime(2026, 11, 23, 12, 5, 7, 123456, tzinfo=dt.UTC)
    terms = GroupTerms("G1", "EUR", D("9000.10"), False, None, Exposure(D("1.5"), D("2")), 3)
    s = replace(state("12.3400"), group=terms)
    s = replace(s, account=replace(s.account, updated_at=at, temp_limit_amount=None,
                                   review_due_on=None))
    doc = state_to_doc(s)
    account = doc["account"]
    assert account["credit_limit"] == "1000" and account["open_orders"] == "12.3400"
    assert account["temp_limit_expires_on"] == "2026-11-23"
    assert account["updated_at"] == "2026-11-23T12:05:07.123456+00:00"  # a datetime's own
    assert account["temp_limit_amount"] is None and account["review_due_on"] is None
    assert account["payment_index"] == 64 and account["blocked"] is False
    assert account["customer_id"] == "C1" and account["terms_version"] == 1
    assert doc["policy"]["hold_band"] == "0.20" and doc["policy"]["prepay_required"] is False
    assert doc["policy"]["min_payment_index"] is None
    assert doc["group"] == {"group_id": "G1", "currency": "EUR", "credit_limit": "9000.10",
                            "blocked": False, "block_reason": None, "version": 3,
                            "open_receivables": "1.5", "open_orders": "2"}
    assert json.loads(json.dumps(doc)) == doc  # JSON as it is, nothing left to convert
    assert state_from_doc(doc) == s


async def test_miss_then_hit(cache):
    misses, hits = counted("miss"), counted("hit")
    found, token = await cache.get("C1", TODAY)
    assert found is None and token is not None
    await cache.put("C1", token, TODAY, state_to_doc(state()))
    found, _ = await cache.get("C1", TODAY)
    assert found == state_to_doc(state())
    assert counted("miss") == misses + 1 and counted("hit") == hits + 1


async def test_invalidation_retires_the_entry(cache):
    _, token = await cache.get("C1", TODAY)
    await cache.put("C1", token, TODAY, state_to_doc(state()))
    await cache.invalidate({"C1"})
    found, _ = await cache.get("C1", TODAY)
    assert found is None


async def test_invalidating_everyone(cache):
    _, token = await cache.get("C1", TODAY)
    await cache.put("C1", token, TODAY, state_to_doc(state()))
    await cache.invalidate({"*"})
    assert (await cache.get("C1", TODAY))[0] is None


async def test_a_slow_reader_cannot_put_a_stale_value_back(cache):
    _, token = await cache.get("C1", TODAY)   # reader misses, goes to the database...
    stale = state("0")
    await cache.invalidate({"C1"})                   # ...a writer commits and invalidates...
    await cache.put("C1", token, TODAY, state_to_doc(stale))  # ...the reader stores it
    found, fresh_token = await cache.get("C1", TODAY)
    assert found is None, "the stale entry is dead on arrival"
    await cache.put("C1", fresh_token, TODAY, state_to_doc(state("100")))
    assert (await cache.get("C1", TODAY))[0] == state_to_doc(state("100"))


async def test_an_entry_is_for_one_day_only(cache):
    _, token = await cache.get("C1", TODAY)
    await cache.put("C1", token, TODAY, state_to_doc(state()))
    tomorrow = TODAY + dt.timedelta(days=1)
    assert (await cache.get("C1", tomorrow))[0] is None


async def test_unreachable_redis_is_a_miss_and_an_error_never_an_exception():
    dead = Cache("redis://127.0.0.1:1/0", cooldown=60)
    errors = counted("error")
    assert await dead.get("C1", TODAY) == (None, None)
    await dead.invalidate({"C1"})
    assert counted("error") == errors + 1, "the circuit opened after the first failure"
    assert not dead.available
    await dead.close()


async def test_lost_invalidations_retire_everything_once_redis_is_back(cache):
    _, token = await cache.get("C1", TODAY)
    await cache.put("C1", token, TODAY, state_to_doc(state()))
    cache._down_until = float("inf")            # Redis "unreachable"...
    await cache.invalidate({"C1"})               # ...so this invalidation is lost
    cache._down_until = 0.0                      # back
    found, _ = await cache.get("C1", TODAY)
    assert found is None, "the epoch was bumped before the cache was used again"


def spy_on_sends(cache: Cache) -> list[dict[str, str]]:
    """The versions of every send to Redis, in order."""
    sent: list[dict[str, str]] = []
    send = cache._send

    async def recorded(versions: dict[str, str], epoch: bool) -> bool:
        sent.append(dict(versions))
        return await send(versions, epoch)

    cache._send = recorded  # type: ignore[method-assign]
    return sent


async def test_invalidations_in_flight_share_one_send_and_each_waits_for_its_own(cache):
    sent = spy_on_sends(cache)
    customers = [f"C{i}" for i in range(20)]
    assert await asyncio.gather(*(cache.invalidate({c}) for c in customers)) == [True] * 20
    # The first is sent at once, alone; the 19 that came while it was in flight, together.
    assert [len(versions) for versions in sent] == [1, 19]
    redis = Redis.from_url(REDIS_URL)
    try:
        stored = await redis.mget([key for versions in sent for key in versions])
    finally:
        await redis.aclose()
    assert [v.decode() for v in stored] == [t for versions in sent for t in versions.values()]
    assert not cache._sending


async def test_a_retirement_whose_caller_gives_up_mid_send_is_sent_again():
    """A check past its deadline is cancelled while its version is on its way to Redis:
    the version still lands, sent again by a send that waits for nobody."""
    server = RedisServer()
    server.start()
    # A timeout long enough for this test's own steps; what is tested does not depend on it.
    cache = Cache(server.url, timeout=1.0)
    admin = Redis.from_url(server.url)
    try:
        assert await cache.invalidate({"C0"})  # the connection is open
        sent = spy_on_sends(cache)
        await admin.execute_command("CLIENT", "PAUSE", "5000", "WRITE")
        caller = asyncio.create_task(cache.invalidate({"C1"}))
        await asyncio.sleep(0.05)  # its SET is sent and held by the paused server
        caller.cancel()
        with pytest.raises(asyncio.CancelledError):
            await caller
        await admin.execute_command("CLIENT", "UNPAUSE")
        for _ in range(100):
            if not cache._sending:
                break
            await asyncio.sleep(0.02)
        assert not cache._sending
        key = next(iter(sent[0]))
        assert len(sent) == 2 and sent[1].keys() == sent[0].keys(), "sent once more"
        # Under a new token: a late copy of the first SET must not bring back a token that
        # readers may already have stored entries under.
        assert sent[1][key] != sent[0][key]
        assert await admin.get(key) == sent[1][key].encode(), "the version landed"
        assert not cache._dirty, "it landed: nothing else had to be retired"
    finally:
        await admin.aclose()
        await cache.close()
        server.kill()


async def test_a_resend_that_fails_with_nobody_waiting_tells_the_other_processes():
    server = RedisServer()
    server.start()
    # A timeout long enough for this test's own steps; what is tested does not depend on it.
    cache = Cache(server.url, timeout=0.3)
    told: list[str] = []

    async def on_lost() -> None:
        told.append("lost")

    cache.on_lost = on_lost
    try:
        assert await cache.invalidate({"C0"})
        server.pause()  # nothing Redis is sent gets an answer
        caller = asyncio.create_task(cache.invalidate({"C1"}))
        await asyncio.sleep(0.05)
        caller.cancel()  # its deadline: nobody is left to hear how the resend went
        with pytest.raises(asyncio.CancelledError):
            await caller
        for _ in range(100):
            if told:
                break
            await asyncio.sleep(0.02)
        assert told == ["lost"] and cache._dirty
    finally:
        server.resume()
        await cache.close()
        server.kill()


async def test_a_lost_retirement_is_signalled_over_notify(db):
    """retire_after_commit wires the cache's on_lost to NOTIFY, which every process hears."""
    cache = Cache(REDIS_URL, namespace=f"t{secrets.token_hex(4)}")
    retire_after_commit(db, cache)
    heard: asyncio.Queue[str] = asyncio.Queue()
    listener = await asyncpg.connect(**driver_connect_args(db.settings.require_database_url()))
    try:
        await listener.add_listener(CACHE_CHANNEL, lambda *args: heard.put_nowait(args[2]))
        assert cache.on_lost is not None
        await cache.on_lost()
        assert await asyncio.wait_for(heard.get(), 5) == CACHE_CHANNEL
    finally:
        await listener.close()
        await cache.close()


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
            if app.state.cache is None or app.state.keys._listening:
                break
            await asyncio.sleep(0.05)
        await account(client, "PGB", limit="1000")
        hits = counted("hit")
        for _ in range(3):
            assert (await exposure(client, "PGB"))["available"] == "1000.00"
        assert counted("hit") - hits == (2 if listen_url else 0)
        assert (app.state.cache is not None) is listen_url


async def test_a_test_starts_with_its_sessions_cache_namespace_empty(api, db, settings):
    """tests/cleanup.py: what one test cached is gone before the next one runs."""
    redis = Redis.from_url(REDIS_URL)
    pattern = f"{settings.cache_namespace}:*"
    try:
        assert [k async for k in redis.scan_iter(match=pattern)] == []
        await account(api, limit="1000")
        await exposure(api)
        await exposure(api)
        assert [k async for k in redis.scan_iter(match=pattern)] != [], "nothing was cached"
        await clean(db, settings)
        assert [k async for k in redis.scan_iter(match=pattern)] == []
    finally:
        await redis.aclose()
