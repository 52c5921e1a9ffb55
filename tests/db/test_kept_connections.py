"""The hot path keeps its pooled connections between statements (app/db/engine.py), and that
never costs anyone else a connection: whoever waits for the pool gets them at once.

A Database of its own at the product's defaults (3 pooled connections, no overflow).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import asyncpg
import pytest
from sqlalchemy import event, text

from app.db.engine import KEEP_IDLE_SECONDS, Database
from app.settings import Settings
from tests.conftest import PG_ADMIN


@pytest.fixture
async def own_db(settings: Settings) -> AsyncIterator[Database]:
    database = Database(settings)
    yield database
    await database.dispose()


def _checkouts(database: Database) -> list[int]:
    seen: list[int] = []

    @event.listens_for(database.engine.sync_engine, "checkout")
    def _count(*_args: Any) -> None:
        seen.append(1)

    return seen


def _pool(database: Database) -> Any:
    return database.engine.sync_engine.pool


async def test_statements_one_after_another_reuse_one_kept_connection(own_db):
    checkouts = _checkouts(own_db)
    backends = set()
    for _ in range(20):
        async with own_db.driver() as pg:
            backends.add(await pg.fetchval("SELECT pg_backend_pid()"))
    assert len(backends) == 1
    assert len(checkouts) == 1, "each statement went through the pool's checkout"
    assert own_db.kept_connections == 1
    assert _pool(own_db).checkedout() == 1
    assert own_db.connections_in_use == 0  # what the pool-in-use gauge publishes


async def test_a_transaction_gets_kept_connections_when_the_pool_has_none(own_db, settings):
    size = settings.db_pool_size
    async with AsyncExitStack() as stack:  # every pooled connection in use by the hot path
        for _ in range(size):
            await stack.enter_async_context(own_db.driver())
    assert own_db.kept_connections == size
    assert _pool(own_db).checkedin() == 0
    # Without handing the kept ones back at once, this would wait until the kept list's sweep
    # returned them (KEEP_IDLE_SECONDS), or the pool's timeout: not a timing of the checkout,
    # a bound far above it that only the wait for a sweep exceeds.
    assert await asyncio.wait_for(_one_transaction(own_db), KEEP_IDLE_SECONDS / 2) == 1
    assert own_db.kept_connections == 0


async def test_a_released_connection_goes_to_whoever_waits_for_one(own_db, settings):
    size = settings.db_pool_size
    async with AsyncExitStack() as held:
        for _ in range(size):
            await held.enter_async_context(own_db.driver())
        waiter = asyncio.ensure_future(_one_transaction(own_db))
        await asyncio.sleep(0.05)
        assert not waiter.done(), "the pool had a free connection after all"
    # Released while the transaction waits: it goes to the pool, not to the kept list. Well
    # before the kept list's own sweep would have handed it back.
    await asyncio.sleep(0.05)
    assert waiter.done() and waiter.result() == 1
    assert KEEP_IDLE_SECONDS > 0.5


async def test_a_hot_statement_waiting_for_the_pool_gets_a_released_connection(own_db, settings):
    async def one_more() -> int:
        async with own_db.driver() as pg:
            return int(await pg.fetchval("SELECT 3"))

    async with AsyncExitStack() as held:
        for _ in range(settings.db_pool_size):
            await held.enter_async_context(own_db.driver())
        waiter = asyncio.ensure_future(one_more())
        await asyncio.sleep(0.05)
        assert not waiter.done(), "the pool had a free connection after all"
    await asyncio.sleep(0.05)  # well before the kept list's sweep (KEEP_IDLE_SECONDS)
    assert waiter.done() and waiter.result() == 3


async def test_a_kept_connection_is_not_reused_once_the_pool_is_invalidated(own_db):
    async with own_db.driver() as pg:
        pid = await pg.fetchval("SELECT pg_backend_pid()")
    # What SQLAlchemy does when a statement elsewhere meets a disconnect: every connection
    # older than now is to be renewed. A kept one must not slip past that.
    _pool(own_db)._invalidate(None, _checkin=False)
    async with own_db.driver() as pg:
        assert await pg.fetchval("SELECT pg_backend_pid()") != pid


async def _one_transaction(database: Database) -> int:
    async with database.begin() as conn:
        return int(await conn.scalar(text("SELECT 1")))


async def test_an_unused_kept_connection_goes_back_to_the_pool(own_db):
    async with own_db.driver() as pg:
        await pg.fetchval("SELECT 1")
    assert own_db.kept_connections == 1
    assert _pool(own_db).checkedout() == 1
    await asyncio.sleep(2.5 * KEEP_IDLE_SECONDS)
    assert own_db.kept_connections == 0
    assert _pool(own_db).checkedout() == 0


async def test_a_kept_connection_the_server_closed_is_not_handed_out(own_db):
    async with own_db.driver() as pg:
        pid = await pg.fetchval("SELECT pg_backend_pid()")
    admin = await asyncpg.connect(PG_ADMIN)
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await admin.close()
    kept_driver = own_db._kept._idle[0][0].driver_connection
    for _ in range(100):  # the client hears of it when the socket closes
        if kept_driver.is_closed():
            break
        await asyncio.sleep(0.02)
    assert kept_driver.is_closed()
    async with own_db.driver() as pg:
        assert await pg.fetchval("SELECT pg_backend_pid()") != pid


async def test_a_statement_the_server_refuses_keeps_the_connection_usable(own_db):
    checkouts = _checkouts(own_db)
    with pytest.raises(asyncpg.PostgresError):
        async with own_db.driver() as pg:
            pid = await pg.fetchval("SELECT pg_backend_pid()")
            await pg.execute("SELECT 1/0")
    async with own_db.driver() as pg:
        assert await pg.fetchval("SELECT pg_backend_pid()") == pid
    assert len(checkouts) == 1, "the refused statement's connection was not kept"
    assert own_db.kept_connections == 1


async def test_a_connection_abandoned_mid_statement_is_never_kept(own_db):
    async with own_db.driver() as pg:  # kept: the slow statement below reuses it
        await pg.fetchval("SELECT 1")

    async def slow() -> None:
        async with own_db.driver() as pg:
            await pg.execute("SELECT pg_sleep(5)")

    with pytest.raises(TimeoutError):
        await asyncio.wait_for(slow(), 0.2)
    assert own_db.kept_connections == 0
    assert _pool(own_db).checkedout() == 0


async def test_dispose_closes_kept_connections(settings):
    database = Database(settings)
    async with database.driver() as pg:
        await pg.fetchval("SELECT 1")
    assert database.kept_connections == 1
    await database.dispose()
    assert database.kept_connections == 0
    assert pg.is_closed(), "dispose left a kept connection open"
    # Work that outlives the dispose (a batch sender finishing) keeps nothing more.
    async with database.driver() as late:
        await late.fetchval("SELECT 1")
    assert database.kept_connections == 0
    await database.dispose()
