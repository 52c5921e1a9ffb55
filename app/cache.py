"""Redis read cache: versioned cache-aside of one opaque document per customer. Never
authoritative (what the document holds, and its codec, are app/credit/reads.py's).

Layout (under a namespace, default `cg`): `cg:epoch` (global), `cg:ver:{customer}` (a new
random token after every committed change of that customer), `cg:state:{customer}` = {"e": epoch,
"v": version, "d": day, "s": state}. A reader
fetches all three in one MGET; an entry counts only if its epoch, version and day are the
current ones. A reader that misses stores what it read from the database under the epoch and
version it saw *before* reading, so a write that lands in between makes that entry dead on
arrival: a slow reader can never put a stale value back. Redis trouble never fails a request:
every call has a short timeout, errors open a one-second circuit, and an invalidation that
could not reach Redis is settled by bumping the epoch before the cache is used again — by
every process: the one that failed tells the others over PostgreSQL NOTIFY (app/notify.py),
and a process that cannot hear such signals does not read from the cache at all.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import secrets
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from app.db.engine import ALL_CUSTOMERS, Database, OnCommit
from app.metrics import CACHE_REQUESTS
from app.notify import CACHE_CHANNEL, notify

log = logging.getLogger("creditgate.cache")
# A version outlives every entry stored under it by far (entries live `ttl` seconds), so an
# expired version can never bring an old entry back.
VERSION_TTL = 86_400


@dataclass(frozen=True)
class Token:
    """The epoch and version a reader saw before going to the database."""

    epoch: str
    version: str


class Cache:
    def __init__(self, url: str, *, timeout: float = 0.05, ttl: int = 300,
                 cooldown: float = 1.0, namespace: str = "cg") -> None:
        self._epoch = f"{namespace}:epoch"
        self._ver = f"{namespace}:ver:"
        self._state = f"{namespace}:state:"
        options: dict[str, Any] = {
            "socket_connect_timeout": timeout, "retry": Retry(NoBackoff(), 0),
            "retry_on_timeout": False, "health_check_interval": 0}
        self._redis = Redis.from_url(url, socket_timeout=timeout, **options)
        # Every committed check retires a version, so that one command rides a connection of
        # its own, spoken to directly: the client's per-command layers (pool checkout, retry,
        # observability hooks, a task per timed send) cost more CPU than the round trip.
        # The timeout is ours (`_timeout`), around the command and its reply.
        retiring = ConnectionPool.from_url(url, socket_timeout=None, **options)
        self._retirer: AbstractConnection = retiring.connection_class(
            **retiring.connection_kwargs)
        self._timeout = timeout
        self._ttl = ttl
        self._cooldown = cooldown
        self._down_until = 0.0
        self._dirty = False
        self._pending: dict[str, str] = {}
        self._pending_epoch = False
        self._next: asyncio.Future[bool] | None = None
        self._sending = False
        self._tasks: set[asyncio.Task[None]] = set()
        self.trusted: Callable[[], bool] = lambda: True
        # How a batched send that failed tells the other processes (retire_after_commit sets
        # it): its callers may be gone (past their deadlines), and nobody else would.
        self.on_lost: Callable[[], Coroutine[Any, Any, None]] | None = None

    @property
    def available(self) -> bool:
        return time.monotonic() >= self._down_until

    @property
    def serving(self) -> bool:
        """Whether reads may use the cache now: Redis is not in its cooldown and this process
        hears the other processes' invalidations."""
        return self.available and self.trusted()

    async def get(self, customer_id: str, today: dt.date
                  ) -> tuple[dict[str, Any] | None, Token | None]:
        """A customer's cached document of today, or None and the token to store one under."""
        if not await self._usable():
            return None, None
        try:
            epoch, version, raw = await self._redis.mget(
                self._epoch, self._ver + customer_id, self._state + customer_id)
        except Exception as exc:  # noqa: BLE001 - any Redis failure is a miss
            self._failed(exc)
            return None, None
        token = Token(_text(epoch), _text(version))
        if raw is not None:
            entry = json.loads(raw)
            if (entry["e"], entry["v"], entry["d"]) == (token.epoch, token.version,
                                                          today.isoformat()):
                CACHE_REQUESTS.labels("hit").inc()
                doc: dict[str, Any] = entry["s"]
                return doc, token
        CACHE_REQUESTS.labels("miss").inc()
        return None, token

    async def put(self, customer_id: str, token: Token, today: dt.date,
                  doc: dict[str, Any]) -> None:
        """Store a document read after `token` was seen; dead on arrival if a write came
        in between."""
        entry = {"e": token.epoch, "v": token.version, "d": today.isoformat(), "s": doc}
        try:
            await self._redis.set(self._state + customer_id, json.dumps(entry), ex=self._ttl)
        except Exception as exc:  # noqa: BLE001
            self._failed(exc)

    def mark_dirty(self, *_: object) -> None:
        """Some invalidation may have been lost: retire every entry before the next use."""
        self._dirty = True

    async def invalidate(self, customer_ids: set[str]) -> bool:
        """After a commit: every cached state of these customers (or of all) is dead.

        False when Redis could not be told; the caller must then tell the other processes.
        """
        if not customer_ids:
            return True
        if not self.available:
            self._dirty = True
            return False
        # A version is any new unique token (equality is all a reader checks). The first
        # invalidation sends its own at once, from the caller's task; those that arrive while a
        # send is in flight share the next one, sent by a task: under load one round trip
        # serves many requests, and each still waits for its own before answering.
        for customer_id in customer_ids - {ALL_CUSTOMERS}:
            self._pending[self._ver + customer_id] = secrets.token_hex(8)
        self._pending_epoch |= ALL_CUSTOMERS in customer_ids
        if self._sending:
            return await asyncio.shield(self._next_send())
        self._sending = True
        versions, self._pending = self._pending, {}
        epoch, self._pending_epoch = self._pending_epoch, False
        try:
            return await self._send(versions, epoch)
        except asyncio.CancelledError:
            # The caller gave up (its deadline) with these versions perhaps unsent: they go
            # out with the next send, which waits for nobody. Under new tokens: a copy of the
            # old one still on its way to Redis must not bring back what a later version
            # retired.
            self._pending = {**{key: secrets.token_hex(8) for key in versions}, **self._pending}
            self._pending_epoch |= epoch
            self._next_send()
            raise
        finally:
            # Handed on in the same step as it saw who is waiting: a waiter queued after
            # this finds no send in flight and sends its own.
            if self._next is not None:
                self._spawn(self._send_pending())
            else:
                self._sending = False

    async def _send_pending(self) -> None:
        done: asyncio.Future[bool] | None = None
        try:
            while self._next is not None:
                done, self._next = self._next, None
                versions, self._pending = self._pending, {}
                epoch, self._pending_epoch = self._pending_epoch, False
                sent = await self._send(versions, epoch)
                if not sent and self.on_lost is not None:
                    self._spawn(self.on_lost())
                done.set_result(sent)
        except BaseException:
            # Cancelled with the event loop: whoever still waits hears that nothing is sure.
            self._dirty = True
            for waiting in (done, self._next):
                if waiting is not None and not waiting.done():
                    waiting.set_result(False)
            self._next, self._pending, self._pending_epoch = None, {}, False
            raise
        finally:
            self._sending = False

    def _next_send(self) -> asyncio.Future[bool]:
        """What the next batched send will answer (made when the first one waits for it)."""
        if self._next is None:
            self._next = asyncio.get_running_loop().create_future()
        return self._next

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)  # a task nobody holds may be collected before it ends
        task.add_done_callback(self._tasks.discard)

    async def _send(self, versions: dict[str, str], epoch: bool) -> bool:
        commands: list[tuple[str | int, ...]] = [("INCR", self._epoch)] if epoch else []
        commands += [("SET", key, token, "EX", VERSION_TTL) for key, token in versions.items()]
        conn = self._retirer
        try:
            async with asyncio.timeout(self._timeout):
                # A connection that failed or timed out was closed by the client, and
                # reconnects here: no reply of an earlier command is left to read.
                await conn.send_packed_command(conn.pack_commands(commands), check_health=False)
                for _ in commands:
                    await conn.read_response()
        except Exception as exc:  # noqa: BLE001 - a reply that is an error raises too
            await conn.disconnect(nowait=True)
            self._dirty = True
            self._failed(exc)
            return False
        return True

    async def ping(self) -> bool:
        try:
            return bool(await self._redis.ping())
        except Exception:  # noqa: BLE001
            return False

    async def close(self) -> None:
        try:
            await self._retirer.disconnect(nowait=True)
        finally:
            await self._redis.aclose()

    async def _usable(self) -> bool:
        if not self.serving:
            return False
        if self._dirty:
            # Some invalidation was lost while Redis was unreachable: retire every entry.
            try:
                await self._redis.incr(self._epoch)
            except Exception as exc:  # noqa: BLE001
                self._failed(exc)
                return False
            self._dirty = False
            log.info("redis is back; cache epoch bumped")
        return True

    def _failed(self, exc: Exception) -> None:
        CACHE_REQUESTS.labels("error").inc()
        if self.available:
            log.warning("redis unavailable (%s); using PostgreSQL alone for %.1f s",
                        type(exc).__name__, self._cooldown)
        self._down_until = time.monotonic() + self._cooldown


def retire_after_commit(db: Database, cache: Cache | None) -> OnCommit:
    """What every committed change of a customer must do to the read caches of every process.

    Retire the customer's entries in Redis; where that fails (or this process has no Redis,
    like a CLI run without REDIS_URL) tell every serving process over NOTIFY, which makes
    each retire the whole cache before its next use.
    """

    async def signal_lost() -> None:
        try:
            async with db.autocommit() as conn:
                await notify(conn, CACHE_CHANNEL)
        except Exception:
            log.warning("could not signal a lost cache invalidation", exc_info=True)

    async def after_commit(touched: set[str]) -> None:
        if cache is not None and await cache.invalidate(touched):
            return
        await signal_lost()

    if cache is not None:
        cache.on_lost = signal_lost
    return after_commit


def _text(value: Any) -> str:
    if value is None:
        return "0"
    return value.decode() if isinstance(value, bytes) else str(value)
