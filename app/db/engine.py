"""The engine, its connection budget, and the unit of work (commit once, at the boundary)."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from contextvars import ContextVar
from typing import Any

import asyncpg
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.util import greenlet_spawn

from app.settings import Settings

log = logging.getLogger("creditgate.db")

ALL_CUSTOMERS = "*"
_touched: ContextVar[set[str] | None] = ContextVar("touched", default=None)


def touch(customer_id: str) -> None:
    """Note that this unit of work changes what is known about a customer ('*': everyone)."""
    touched = _touched.get()
    if touched is not None:
        touched.add(customer_id)


OnCommit = Callable[[set[str]], Awaitable[None]]


class Database:
    """One engine per process; each unit of work is a `begin()` block: commit, or roll back.

    After a unit of work commits, `on_commit` hears which customers it touched (the read
    cache uses this to retire what it holds about them).
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine = _make_engine(settings)
        self._autocommit = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        self.on_commit: OnCommit | None = None
        self._kept = _KeptConnections(self.engine)

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncConnection]:
        """A transaction: committed when the block ends, rolled back if it raises."""
        async with self._unit_of_work(), self._connect(self.engine) as conn, conn.begin():
            yield conn

    @asynccontextmanager
    async def autocommit(self) -> AsyncIterator[AsyncConnection]:
        """A connection where each statement commits on its own (one round trip, no BEGIN)."""
        async with self._unit_of_work(), self._connect(self._autocommit) as conn:
            yield conn

    @asynccontextmanager
    async def driver(self) -> AsyncIterator[Any]:
        """A pooled connection's own asyncpg connection, for the hot path's plain SQL.

        Skips SQLAlchemy's Connection (same pool, same unit of work); statements commit on
        their own unless wrapped in the driver's `transaction()`. The connection is kept for
        the hot path's next statement while nobody else waits for one (_KeptConnections).
        """
        async with self._unit_of_work():
            kept = self._kept.take()
            if kept is None:
                async with self._kept.waiting():
                    pooled = await self.engine.raw_connection()
                since = time.monotonic()
            else:
                pooled, since = kept
            try:
                yield pooled.driver_connection
            except asyncpg.PostgresError:
                # The server refused a statement; the connection itself is fine.
                await self._kept.give_back(pooled, since)
                raise
            except BaseException:
                # Broken, or abandoned mid-statement by a deadline: never hand it out again.
                pooled.invalidate()
                await greenlet_spawn(pooled.close)
                raise
            await self._kept.give_back(pooled, since)

    @asynccontextmanager
    async def _connect(self, engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
        async with AsyncExitStack() as stack:
            async with self._kept.waiting():
                conn = await stack.enter_async_context(engine.connect())
            yield conn

    @property
    def kept_connections(self) -> int:
        """Pooled connections checked out but idle, kept for the hot path's next statement."""
        return self._kept.idle

    @property
    def connections_in_use(self) -> int:
        """Pooled connections checked out and doing work (kept idle ones not counted)."""
        checked_out: int = self.engine.sync_engine.pool.checkedout()  # type: ignore[attr-defined]
        return checked_out - self._kept.idle

    @asynccontextmanager
    async def _unit_of_work(self) -> AsyncIterator[None]:
        outer = _touched.get()
        token = _touched.set(set() if outer is None else outer)
        try:
            yield
        finally:
            # Also after a failure: an autocommit block may have committed before it raised,
            # and retiring a cache entry needlessly costs only a miss.
            touched = _touched.get() or set()
            _touched.reset(token)
            if outer is None and touched and self.on_commit is not None:
                await self.on_commit(touched)

    async def open_pool(self) -> None:
        """Open the pool's connections now, so that a first burst queues for connections
        that exist instead of opening them one by one while it waits."""
        async def one() -> None:
            async with self.engine.connect():
                await asyncio.sleep(0.1)  # hold it, so the others must open their own

        await asyncio.gather(*(one() for _ in range(self.settings.db_pool_size)))

    async def dispose(self) -> None:
        await self._kept.return_all()
        await self.engine.dispose()


# A kept connection goes back to the pool after this long unused (the pool's own checks and
# metrics then see it again), and after this long kept in all, so that it is recycled.
KEEP_IDLE_SECONDS = 1.0
KEEP_AT_MOST_SECONDS = 60.0


class _KeptConnections:
    """Pooled connections the hot path keeps checked out between its statements.

    SQLAlchemy's checkout and check-in cost about 30 µs of CPU (a greenlet switch each, the
    pool's bookkeeping and events), more than a reserving check's own Python spends on some
    of its steps, and a check takes two. Kept connections are handed out again from a list.
    They stay in the connection budget: they are the pool's, and whenever anyone waits for a
    pooled connection (a transaction, an autocommit block, a hot statement that found none
    kept), kept ones go back to the pool at once instead of being kept.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        # (connection, checked out of the pool at, unused since)
        self._idle: list[tuple[Any, float, float]] = []
        self._waiting = 0
        self._sweeper: asyncio.TimerHandle | None = None
        self._returning: set[asyncio.Task[None]] = set()
        self._closed = False  # disposed: a batch sender that outlives it keeps nothing more

    @property
    def idle(self) -> int:
        return len(self._idle)

    def take(self) -> tuple[Any, float] | None:
        """A kept connection and when it was checked out of the pool; None when none is."""
        now = time.monotonic()
        while self._idle:
            pooled, since, _ = self._idle.pop()
            if now - since < KEEP_AT_MOST_SECONDS and self._usable(pooled):
                return pooled, since
            self._spawn_return([pooled])
        return None

    @property
    def _pool(self) -> Any:
        return self._engine.sync_engine.pool  # replaced by dispose(): looked up each time

    def _usable(self, pooled: Any) -> bool:
        """What the pool's checkout would check, and then some: a kept connection skips it.
        Not closed by the server, not left inside a transaction, not invalidated (on its
        own, or with the whole pool after a disconnect seen elsewhere), not due for
        pool_recycle."""
        driver = pooled.driver_connection
        record = pooled._connection_record
        if (record is None or not pooled.is_valid or driver.is_closed()
                or driver.is_in_transaction()):
            return False
        # The pool's own checks, by its private names: should a SQLAlchemy release rename
        # them, nothing is kept any more (slower, never wrong), and
        # tests/db/test_kept_connections.py fails.
        invalidated = getattr(record, "_is_hard_or_soft_invalidated", None)
        recycle = getattr(self._pool, "_recycle", None)
        if invalidated is None or recycle is None or invalidated():
            return False
        return bool(recycle < 0 or time.time() - record.starttime <= recycle)

    async def give_back(self, pooled: Any, since: float) -> None:
        """Keep `pooled` (checked out of the pool at `since`), or return it to the pool."""
        now = time.monotonic()
        if (self._waiting or self._closed or now - since >= KEEP_AT_MOST_SECONDS
                or pooled.driver_connection.is_in_transaction()):
            await greenlet_spawn(pooled.close)
            return
        self._idle.append((pooled, since, now))
        if self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().call_later(KEEP_IDLE_SECONDS,
                                                                  self._sweep)

    @asynccontextmanager
    async def waiting(self) -> AsyncIterator[None]:
        """Around a checkout from the pool: while it waits, nothing is kept."""
        self._waiting += 1
        try:
            if self._idle and self._pool.checkedin() == 0:
                await self._return([pooled for pooled, _, _ in self._drain()])
            yield
        finally:
            self._waiting -= 1

    async def return_all(self) -> None:
        self._closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        await self._return([pooled for pooled, _, _ in self._drain()])
        if self._returning:
            await asyncio.gather(*self._returning, return_exceptions=True)

    def _drain(self) -> list[tuple[Any, float, float]]:
        idle, self._idle = self._idle, []
        return idle

    def _sweep(self) -> None:
        self._sweeper = None
        now = time.monotonic()
        unused = [entry for entry in self._idle if now - entry[2] >= KEEP_IDLE_SECONDS]
        self._idle = [entry for entry in self._idle if now - entry[2] < KEEP_IDLE_SECONDS]
        self._spawn_return([pooled for pooled, _, _ in unused])
        if self._idle:
            self._sweeper = asyncio.get_running_loop().call_later(KEEP_IDLE_SECONDS,
                                                                  self._sweep)

    def _spawn_return(self, connections: list[Any]) -> None:
        if not connections:
            return
        # A context of its own: returning a connection belongs to no request.
        task = asyncio.get_running_loop().create_task(self._return(connections),
                                                      context=contextvars.Context())
        self._returning.add(task)
        task.add_done_callback(self._returning.discard)

    async def _return(self, connections: list[Any]) -> None:
        for pooled in connections:
            try:
                await greenlet_spawn(pooled.close)
            except Exception as exc:  # noqa: BLE001 - the pool discards what it cannot reset
                log.info("returning a kept connection failed: %s", type(exc).__name__)


def _make_engine(settings: Settings) -> AsyncEngine:
    connect_args: dict[str, Any] = {
        "timeout": settings.db_timeout_seconds,
        "command_timeout": settings.db_statement_timeout_seconds,
        "server_settings": {"application_name": "creditgate"},
        "async_creator_fn": _connect_retrying(settings.db_timeout_seconds),
    }
    if settings.db_pgbouncer:
        # Transaction pooling hands each transaction to any server connection: no statement
        # cache, and unique names for the statements asyncpg still prepares.
        connect_args.update(statement_cache_size=0, prepared_statement_cache_size=0,
                            prepared_statement_name_func=_unique_statement_name)
    engine = create_async_engine(
        settings.require_database_url(),
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_timeout_seconds,
        pool_recycle=1800,
        skip_autocommit_rollback=True,
        connect_args=connect_args,
        # A logged database error must not carry bound values (customer data, key hashes).
        hide_parameters=True,
    )
    _skip_unusable_connections(engine)
    return engine


# PostgreSQL refuses a connection for lack of slots (53300) or while it starts up (57P03).
# Both pass: waiting a little beats failing the request, and the caller's deadline still
# bounds the wait.
_RETRYABLE_CONNECT = (asyncpg.TooManyConnectionsError, asyncpg.CannotConnectNowError)


def _connect_retrying(budget: float) -> Callable[..., Awaitable[Any]]:
    """asyncpg.connect, retried with backoff for up to `budget` seconds while PostgreSQL has
    no free connection slot."""

    async def connect(*args: Any, **kwargs: Any) -> Any:
        deadline = time.monotonic() + budget
        delay = 0.02
        while True:
            try:
                return await asyncpg.connect(*args, **kwargs)
            except _RETRYABLE_CONNECT as exc:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise
                log.info("postgresql refused a connection (%s); retrying", exc.sqlstate)
                await asyncio.sleep(min(delay, left))
                delay = min(delay * 2, 0.5)

    return connect


def driver_connect_args(url: str) -> dict[str, Any]:
    """asyncpg.connect arguments for a DATABASE_URL, for connections made outside the pool.

    Only the connection facts: query options meant for SQLAlchemy's dialect are not server
    settings, and asyncpg would send them as such. `?host=/dir` is a Unix socket directory
    (the embedded server's).
    """
    parsed = make_url(url)
    host = parsed.host or parsed.query.get("host")
    return {"host": host if isinstance(host, str) else None, "port": parsed.port,
            "user": parsed.username, "password": parsed.password, "database": parsed.database}


def _skip_unusable_connections(engine: AsyncEngine) -> None:
    # After an outage the pool still holds connections whose socket the server closed.
    # asyncpg knows that locally, so refusing them at checkout costs no round trip (unlike
    # pool_pre_ping) and spares the first requests after recovery a 503.
    @event.listens_for(engine.sync_engine, "checkout")
    def _alive(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        driver = dbapi_connection.driver_connection
        if driver.is_closed():
            raise DisconnectionError("pooled connection was closed by the server")
        if driver.is_in_transaction():  # left open by work that was cancelled mid-way
            raise DisconnectionError("pooled connection is still inside a transaction")


def _unique_statement_name() -> str:
    return f"__asyncpg_{uuid.uuid4()}__"


class DriverSQL:
    """Plain SQL in the asyncpg style (`$1` parameters, `fetchrow`) on a SQLAlchemy
    connection, so that one statement text serves the hot path's bare asyncpg connection and
    a transaction that other writes share."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def fetchrow(self, statement: str, *args: Any) -> Any:
        result = await self._conn.exec_driver_sql(statement, args)
        return result.mappings().first()
