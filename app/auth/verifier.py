"""Per-process key verification, cached so that most requests skip the key lookup.

On PostgreSQL a cached answer is trusted only while this process LISTENs on the
`creditgate_keys` channel: revoking a key NOTIFYs it, every worker of every replica drops its
cache at once. Without a live listener (SQLite, or the connection is down) every request
looks its key up.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from typing import Any

import asyncpg
from sqlalchemy import bindparam, or_, update
from sqlalchemy.engine import make_url

from app import clock
from app.auth.keys import KEYS_CHANNEL, hash_key, verify_key
from app.auth.roles import Caller
from app.auth.tables import api_keys
from app.db import Database

log = logging.getLogger("creditgate.auth")
FLUSH_SECONDS = 30.0
PROBE_SECONDS = 5.0


class KeyVerifier:
    def __init__(self, db: Database, ttl: float) -> None:
        self._db = db
        self._ttl = ttl
        self._cache: dict[str, tuple[float, Caller | None]] = {}
        self._listening = False
        self._used: dict[str, dt.datetime] = {}

    async def verify(self, key: str) -> Caller | None:
        """The caller a key belongs to; None for an unknown or revoked key."""
        digest = hash_key(key)
        now = time.monotonic()
        hit = self._cache.get(digest) if self._listening else None
        if hit is not None and now - hit[0] < self._ttl:
            caller = hit[1]
        else:
            async with self._db.autocommit() as conn:
                caller = await verify_key(conn, key)
            if self._listening and self._ttl > 0:
                if len(self._cache) > 10_000:
                    self._cache.clear()
                self._cache[digest] = (now, caller)
        if caller is not None:
            self._used[caller.key_id] = clock.now()
        return caller

    def forget(self, *_: Any) -> None:
        """Drop every cached answer (some key was revoked)."""
        self._cache.clear()

    async def run(self) -> None:
        """Keep the revocation listener up, and record when keys were last used."""
        settings = self._db.settings
        if settings.is_sqlite or settings.db_pgbouncer:  # no LISTEN: never trust a cached key
            while True:
                await asyncio.sleep(FLUSH_SECONDS)
                await self.flush()
        flusher = asyncio.create_task(self._flush_forever())
        try:
            while True:
                await self._listen()
                await asyncio.sleep(1)
        finally:
            flusher.cancel()

    async def _listen(self) -> None:
        url = make_url(self._db.settings.database_url)
        conn: asyncpg.Connection | None = None
        try:
            # Only the connection facts: query options meant for SQLAlchemy's dialect are not
            # server settings, and asyncpg would send them as such.
            conn = await asyncpg.connect(
                host=url.host, port=url.port, user=url.username, password=url.password,
                database=url.database, timeout=self._db.settings.db_timeout_seconds)
            closed = asyncio.Event()
            conn.add_termination_listener(lambda _conn: closed.set())
            await conn.add_listener(KEYS_CHANNEL, self.forget)
            self.forget()
            self._listening = True
            while not closed.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(closed.wait(), PROBE_SECONDS)
                    break
                await asyncio.wait_for(conn.fetchval("SELECT 1"), PROBE_SECONDS)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("key revocation listener down (%s); looking every key up",
                        type(exc).__name__)
        finally:
            self._listening = False
            self.forget()
            if conn is not None:
                with contextlib.suppress(Exception):
                    await conn.close(timeout=1)

    async def _flush_forever(self) -> None:
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
