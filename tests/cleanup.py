"""Between tests: empty the ledgers, restore the default policies, drop the cached state.

A test must see neither another test's rows nor another test's cache entries, so `clean`
empties both stores this session writes to: the session's database and the keys under the
session's cache namespace in Redis (`settings.cache_namespace`, see the `settings` fixture).
"""

from __future__ import annotations

from redis.asyncio import Redis
from sqlalchemy import text

import app.db.tables  # noqa: F401 - registers every table
from app.db.columns import metadata
from app.db.engine import Database
from app.errors import is_deadlock
from app.settings import Settings

# Every table but the keys (made once per session), the class policies (reset below) and
# the scorecard (its shipped version 1 stays): whatever a new domain adds is emptied too.
KEPT_TABLES = frozenset({"api_keys", "policies", "scorecards"})
MUTABLE_TABLES = tuple(sorted(t for t in metadata.tables if t not in KEPT_TABLES))


async def clean_database(db: Database) -> None:
    """Empty the ledgers and the credit file; put every policy back to its default.

    Servers a module keeps running (tests/trust/test_replicas.py) go on polling between
    tests: the TRUNCATE, which locks its tables one after another, can deadlock with a
    dispatcher's claim that locks two of them in the other order. PostgreSQL then fails one
    of the two; when that is the TRUNCATE, it has done nothing, and is done again."""
    for attempt in range(3):
        try:
            await _clean_database(db)
            return
        except Exception as exc:
            if not is_deadlock(exc) or attempt == 2:
                raise


async def _clean_database(db: Database) -> None:
    async with db.begin() as conn:
        # The audit tables refuse TRUNCATE (migration 0004); their triggers do not fire in a
        # replica session. Only for the TRUNCATE, and SET LOCAL ends with the transaction anyway.
        await conn.execute(text("SET LOCAL session_replication_role = replica"))
        await conn.execute(text(f"TRUNCATE {', '.join(MUTABLE_TABLES)}"))
        await conn.execute(text("DELETE FROM scorecards WHERE version > 1"))
        await conn.execute(text("SET LOCAL session_replication_role = origin"))
        await conn.execute(text(
            "UPDATE policies SET prepay_required = (risk_class = 'CCC'), hold_band = 0.20, "
            "max_days_past_due = 30, prepay_days_past_due = 90, overdue_tolerance = 0, "
            "alert_utilisation = 0.90, alert_payment_index = 50"))


async def clean_cache(redis_url: str, namespace: str) -> int:
    """Delete every key `{namespace}:*` (SCAN, never KEYS); returns how many went."""
    redis = Redis.from_url(redis_url)
    deleted = 0
    try:
        batch: list[bytes] = []
        async for key in redis.scan_iter(match=f"{namespace}:*", count=500):
            batch.append(key)
            if len(batch) >= 500:
                deleted += await redis.unlink(*batch)
                batch.clear()
        if batch:
            deleted += await redis.unlink(*batch)
    finally:
        await redis.aclose()
    return deleted


async def clean(db: Database, settings: Settings) -> None:
    """Both stores this session writes to (no Redis configured: the database alone)."""
    await clean_database(db)
    if settings.redis_url is not None:
        await clean_cache(settings.redis_url, settings.cache_namespace)
