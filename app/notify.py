"""Cross-process signals over PostgreSQL LISTEN/NOTIFY: one listening connection per process.

Used for what every worker of every replica must hear at once: a revoked API key, and a cache
invalidation that could not reach Redis. Unavailable behind transaction-mode
PgBouncer unless CREDITGATE_LISTEN_DATABASE_URL names a direct (or session-mode) connection;
whoever depends on it must then not trust what it cached. Sending (pg_notify) works anywhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.engine import driver_connect_args
from app.settings import Settings

log = logging.getLogger("creditgate.notify")
PROBE_SECONDS = 5.0
KEYS_CHANNEL = "creditgate_keys"
CACHE_CHANNEL = "creditgate_cache"


async def notify(conn: AsyncConnection, channel: str, payload: str = "") -> None:
    """Send a signal; PostgreSQL delivers it when the transaction commits."""
    await conn.execute(text("SELECT pg_notify(:channel, :payload)"),
                       {"channel": channel, "payload": payload})


class Notifications:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self.connected = False
        self._handlers: dict[str, list[Callable[[str], None]]] = {}
        self._watchers: list[Callable[[bool], None]] = []

    @property
    def possible(self) -> bool:
        s = self._settings
        return not s.db_pgbouncer or s.listen_database_url is not None

    def subscribe(self, channel: str, handler: Callable[[str], None]) -> None:
        self._handlers.setdefault(channel, []).append(handler)

    def watch(self, watcher: Callable[[bool], None]) -> None:
        """Call `watcher(connected)` whenever the listening connection comes or goes."""
        self._watchers.append(watcher)

    async def run(self) -> None:
        """Keep the listening connection up (forever; cancel to stop)."""
        if not self.possible:
            return
        while True:
            await self._listen()
            await asyncio.sleep(1)

    async def _listen(self) -> None:
        url = self._settings.listen_database_url or self._settings.require_database_url()
        conn: asyncpg.Connection | None = None
        try:
            conn = await asyncpg.connect(**driver_connect_args(url),
                                         timeout=self._settings.db_timeout_seconds)
            closed = asyncio.Event()
            conn.add_termination_listener(lambda _conn: closed.set())
            for channel in self._handlers:
                await conn.add_listener(channel, self._dispatch)
            self._set(True)
            while not closed.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(closed.wait(), PROBE_SECONDS)
                    break
                await asyncio.wait_for(conn.fetchval("SELECT 1"), PROBE_SECONDS)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("notification listener down (%s); not trusting per-process caches",
                        type(exc).__name__)
        finally:
            self._set(False)
            if conn is not None:
                conn.terminate()

    def _dispatch(self, _conn: Any, _pid: int, channel: str, payload: str) -> None:
        for handler in self._handlers.get(channel, []):
            handler(payload)

    def _set(self, connected: bool) -> None:
        self.connected = connected
        for watcher in self._watchers:
            watcher(connected)
