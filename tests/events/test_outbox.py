"""The outbox: an event commits or rolls back with its change; the feed pages stably."""

from __future__ import annotations

import asyncio
import random

import pytest
from sqlalchemy import text

from app import clock, metrics
from app.events.outbox import count_emitted, emit, emit_pg
from app.events.types import EventType
from tests.events.conftest import create_webhook


class Injected(Exception):
    """The failure injected after the change, before the commit."""


async def _account(api, customer_id="C1"):
    r = await api.put(f"/v1/customers/{customer_id}",
                      {"name": "Customer", "currency": "EUR", "credit_limit": "1000"})
    assert r.status_code == 201, r.text
    return r.json()


async def _limit(db, customer_id="C1"):
    async with db.autocommit() as conn:
        return await conn.scalar(text("SELECT credit_limit FROM accounts WHERE customer_id = :c"),
                                 {"c": customer_id})


async def _count(db, table):
    async with db.autocommit() as conn:
        return await conn.scalar(text(f"SELECT count(*) FROM {table}"))


async def settled(api, n, **params):
    """The feed's items once it shows `n` events: an event is served once every transaction
    older than its own has finished, anywhere on the server (other sessions' tests too)."""
    for _ in range(200):
        items = (await api.get("/v1/events", params={"limit": 1000, **params})).json()["items"]
        if len(items) >= n:
            return items
        await asyncio.sleep(0.05)
    raise AssertionError(f"the feed did not show {n} events in 10 s")


def _events_counted(kind):
    return metrics.EVENTS.labels(kind)._value.get()


async def test_the_change_and_its_event_roll_back_together(eapi, edb):
    await _account(eapi)
    await create_webhook(eapi, "http://127.0.0.1:9/hooks", ["account.limit_changed"])
    counted = _events_counted("account.limit_changed")
    with pytest.raises(Injected):
        async with edb.begin() as conn:
            await conn.execute(text(
                "UPDATE accounts SET credit_limit = 5 WHERE customer_id = 'C1'"))
            await emit(conn, EventType.ACCOUNT_LIMIT_CHANGED, {"credit_limit": "5.00"},
                       customer_id="C1", now=clock.now())
            raise Injected
    assert str(await _limit(edb)) == "1000.0000"
    assert await _count(edb, "events") == 0
    assert await _count(edb, "webhook_deliveries") == 0
    assert _events_counted("account.limit_changed") == counted


async def test_the_change_and_its_event_commit_together(eapi, edb):
    await _account(eapi)
    hook = await create_webhook(eapi, "http://127.0.0.1:9/hooks", ["account.limit_changed"])
    counted = _events_counted("account.limit_changed")
    async with edb.begin() as conn:
        await conn.execute(text("UPDATE accounts SET credit_limit = 5 WHERE customer_id = 'C1'"))
        event_id = await emit(conn, "account.limit_changed", {"credit_limit": "5.00"},
                              customer_id="C1", now=clock.now())
    assert str(await _limit(edb)) == "5.0000"
    items = await settled(eapi, 1)
    assert [e["event_id"] for e in items] == [event_id]
    assert items[0]["data"] == {"credit_limit": "5.00"}
    assert items[0]["customer_id"] == "C1"
    async with edb.autocommit() as conn:
        rows = (await conn.execute(text(
            "SELECT webhook_id, event_id, status FROM webhook_deliveries"))).all()
    assert [tuple(r) for r in rows] == [(hook["webhook_id"], event_id, "pending")]
    assert _events_counted("account.limit_changed") == counted + 1


async def test_the_hot_paths_asyncpg_connection_rolls_back_and_commits_too(eapi, edb):
    await _account(eapi)
    with pytest.raises(Injected):
        async with edb.driver() as pg, pg.transaction():
            await pg.execute("UPDATE accounts SET credit_limit = 7 WHERE customer_id = 'C1'")
            await emit_pg(pg, EventType.ORDER_HELD, {"order_id": "O1"}, customer_id="C1",
                          now=clock.now())
            raise Injected
    assert str(await _limit(edb)) == "1000.0000"
    assert await _count(edb, "events") == 0
    counted = _events_counted("order.held")
    async with edb.driver() as pg, pg.transaction():
        await pg.execute("UPDATE accounts SET credit_limit = 7 WHERE customer_id = 'C1'")
        event_id = await emit_pg(pg, EventType.ORDER_HELD, {"order_id": "O1"},
                                 customer_id="C1", now=clock.now())
    count_emitted(["order.held"])
    assert str(await _limit(edb)) == "7.0000"
    items = await settled(eapi, 1, type="order.held")
    assert [(e["event_id"], e["data"]) for e in items] == [(event_id, {"order_id": "O1"})]
    assert _events_counted("order.held") == counted + 1


async def test_data_is_rendered_like_the_api_renders_it(eapi, edb):
    from decimal import Decimal

    from app.monitoring.schemas import ReviewOut

    review = ReviewOut(customer_id="C1", name="N", currency="EUR",
                       credit_limit=Decimal("1250.5"), risk_class="A",
                       review_due_on=clock.today(), days_left=3)
    async with edb.begin() as conn:
        await emit(conn, "alert.raised", review, customer_id="C1", now=clock.now())
        await emit(conn, "alert.resolved", {"amount": Decimal("1.5"), "on": clock.today()},
                   customer_id=None, now=clock.now())
    items = await settled(eapi, 2)
    assert items[0]["data"]["credit_limit"] == "1250.50"
    assert items[0]["data"]["review_due_on"] == clock.today().isoformat()
    assert items[1]["data"] == {"amount": "1.5", "on": clock.today().isoformat()}
    with pytest.raises(ValueError):
        async with edb.begin() as conn:
            await emit(conn, "order.shipped", {}, customer_id=None, now=clock.now())


async def _page_all(api, after=None, limit=7, **params):
    seen = []
    while True:
        query = {"limit": limit, **params}
        if after is not None:
            query["after"] = after
        r = await api.get("/v1/events", params=query, role="order-entry")
        assert r.status_code == 200, r.text
        body = r.json()
        seen += [e["event_id"] for e in body["items"]]
        if not body["items"]:
            return seen, body["next_after"]
        assert body["next_after"] == body["items"][-1]["event_id"]
        after = body["next_after"]


async def test_an_event_that_commits_late_is_not_skipped_by_a_reader(eapi, edb):
    # A takes its position first but commits last; B commits in between.
    async with edb.begin() as a:
        first = await emit(a, "order.held", {"n": 1}, customer_id="X", now=clock.now())
        async with edb.begin() as b:
            second = await emit(b, "order.held", {"n": 2}, customer_id="Y", now=clock.now())
        seen, cursor = await _page_all(eapi)
        assert second not in seen and first not in seen  # A's transaction is older than B's
    await settled(eapi, 2)
    seen_after, _ = await _page_all(eapi, after=cursor)
    assert seen + seen_after == [first, second]


async def test_a_transaction_that_got_its_id_first_but_its_position_last(eapi, edb):
    # B holds the older transaction id and writes its event last: it is served in its
    # transaction's order, and A, still in flight, comes after every cursor that saw B.
    async with edb.begin() as b:
        await b.execute(text("SELECT pg_current_xact_id()"))
        async with edb.begin() as a:
            first = await emit(a, "order.held", {"n": 1}, customer_id="X", now=clock.now())
            second = await emit(b, "order.held", {"n": 2}, customer_id="Y", now=clock.now())
            await b.commit()
            seen = [e["event_id"] for e in await settled(eapi, 1)]
            cursor = seen[-1]
        assert seen == [second]
    await settled(eapi, 2)
    seen_after, _ = await _page_all(eapi, after=cursor)
    assert seen_after == [first]


async def test_paging_is_stable_while_events_arrive(eapi, edb):
    rng = random.Random(3)
    written: list[str] = []
    stop = asyncio.Event()

    async def producer(n: int) -> None:
        for i in range(40):
            async with edb.begin() as conn:
                written.append(await emit(conn, "order.held" if i % 2 else "order.prepay",
                                          {"producer": n, "i": i}, customer_id=f"C{n}",
                                          now=clock.now()))
                await asyncio.sleep(rng.random() * 0.01)  # commit late, out of order

    producers = asyncio.gather(*(producer(n) for n in range(3)))
    seen: list[str] = []
    cursor = None
    while not producers.done() or not stop.is_set():
        if producers.done():
            stop.set()
        got, cursor = await _page_all(eapi, after=cursor, limit=5)
        seen += got
        await asyncio.sleep(0.005)
    await producers
    await settled(eapi, 120)
    got, cursor = await _page_all(eapi, after=cursor)
    seen += got
    assert len(seen) == len(set(seen)) == 120
    assert set(seen) == set(written)
    held, _ = await _page_all(eapi, type="order.held")
    assert set(held) == {e for e in seen if e in held} and len(held) == 60
    # the order a reader saw is the feed's order, whenever it reads
    assert (await _page_all(eapi, limit=1000))[0] == seen


async def test_the_feed_limit_and_cursor_edges(eapi, edb):
    async with edb.begin() as conn:
        ids = [await emit(conn, "order.held", {"i": i}, customer_id=None, now=clock.now())
               for i in range(3)]
    await settled(eapi, 3)
    r = await eapi.get("/v1/events", params={"limit": 2}, role="warehouse")
    assert [e["event_id"] for e in r.json()["items"]] == ids[:2]
    r = await eapi.get("/v1/events", params={"after": ids[1]}, role="ledger")
    assert [e["event_id"] for e in r.json()["items"]] == ids[2:]
    r = await eapi.get("/v1/events", params={"after": ids[2]})
    assert r.json() == {"items": [], "next_after": ids[2]}
    assert (await eapi.get("/v1/events")).json()["items"][0].keys() == {
        "event_id", "type", "timestamp", "customer_id", "data"}
    for bad in ({"limit": 0}, {"limit": 1001}, {"type": "order.shipped"},
                {"after": "not-an-id"}, {"after": "0" * 26}):
        r = await eapi.get("/v1/events", params=bad)
        assert r.status_code == 422, (bad, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["errors"][0]["field"].startswith("query."), r.json()
    assert (await eapi.get("/v1/events", role=None)).status_code == 401
