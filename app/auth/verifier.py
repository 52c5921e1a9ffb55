"""Per-process key verification, cached so that most requests skip the key lookup.

A cached answer is trusted only while this process LISTENs for revocations (app/notify.py):
revoking a key NOTIFYs every worker of every replica, which drop their caches at once.
Without a live listener (SQLite, PgBouncer mode, or the connection is down) every request
looks its key up.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from typing import Any

from sqlalchemy import bindparam, or_, update

from app import clock
from app.auth.keys import hash_key, verify_key
from app.auth.roles import Caller
from app.auth.tables import api_keys
from app.db.engine import Database
from app.notify import KEYS_CHANNEL, Notifications

log = logging.getLogger("creditgate.auth")


class Miss:
    """Not in the cache."""


MISS = Miss()
FLUSH_SECONDS = 30.0


class KeyVerifier:
    def __init__(self, db: Database, ttl: float, notifications: Notifications) -> None:
        self._db = db
        self._ttl = ttl
        self._cache: dict[str, tuple[float, Caller | None]] = {}
        self._notes = notifications
        self._used: dict[str, dt.datetime] = {}
        notifications.subscribe(KEYS_CHANNEL, self.forget)
        notifications.watch(self.forget)

    @property
    def _listening(self) -> bool:
        return self._notes.connected

    def cached(self, key: str) -> Caller | Miss | None:
        """The cached answer for a key, or MISS (no I/O; the hot path stays one task)."""
        hit = self._cache.get(hash_key(key)) if self._listening else None
        if hit is None or time.monotonic() - hit[0] >= self._ttl:
            return MISS
        self._used_by(hit[1])
        return hit[1]

    async def verify(self, key: str) -> Caller | None:
        """The caller a key belongs to; None for an unknown or revoked key."""
        found = self.cached(key)
        if not isinstance(found, Miss):
            return found
        async with self._db.autocommit() as conn:
            caller = await verify_key(conn, key)
        if self._listening and self._ttl > 0:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[hash_key(key)] = (time.monotonic(), caller)
        self._used_by(caller)
        return caller

    def _used_by(self, caller: Caller | None) -> None:
        if caller is not None:
            self._used[caller.key_id] = clock.now()

    def forget(self, *_: Any) -> None:
        """Drop every cached answer (some key was revoked)."""
        self._cache.clear()

    async def run(self) -> None:
        """Record when keys were last used, every FLUSH_SECONDS."""
        while True:
            await asyncio.sleep(FLUSH_SECONDS)
            await self.flush()

    async def flush(self) -> None:
        """Write the last-use times gathered since the previous flush."""
        used, self._used = self._used, {}
        if not used:
            return
        stmt = (update(api_keys)
                .where(api_keys.c.key_id == bindparam("k"),
                       or_(api_keys.c.last_used_at.is_(None),
                           api_keys.c.last_used_at < bindparam("at")))
                .values(last_used_at=bindparam("at")))
        try:
            async with self._db.begin() as conn:
                await conn.execute(stmt, [{"k": k, "at": at} for k, at in used.items()])
        except Exception:
            log.warning("could not record key use", exc_info=True)
