"""The cleanup between tests survives a server that goes on working meanwhile: when the
TRUNCATE deadlocks with another session's statement and PostgreSQL fails the TRUNCATE, the
clean is done again (tests/cleanup.py)."""

from __future__ import annotations

import asyncio

import asyncpg

from tests.cleanup import clean_database


async def test_a_clean_that_loses_a_deadlock_is_done_again(db, database_url):
    other = await asyncpg.connect(database_url.replace("+asyncpg", ""))
    try:
        # Another session holds a table the TRUNCATE locks late, as a dispatcher's claim does.
        await other.execute("BEGIN")
        await other.execute("LOCK TABLE webhooks IN ACCESS SHARE MODE")
        cleaning = asyncio.create_task(clean_database(db))
        await asyncio.sleep(0.3)  # the TRUNCATE holds the earlier tables and waits
        assert not cleaning.done()
        # Now the other session wants a table the TRUNCATE holds: a deadlock, which the
        # TRUNCATE, waiting longer, is the first to detect, and so is the one that fails.
        await other.execute("LOCK TABLE accounts IN ACCESS SHARE MODE")
        await other.execute("COMMIT")
        await asyncio.wait_for(cleaning, 10)
    finally:
        await other.close()
