"""The engine, its connection budget, and the unit of work (commit once, at the boundary)."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
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

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncConnection]:
        """A transaction: committed when the block ends, rolled back if it raises."""
        async with self._unit_of_work(), self.engine.begin() as conn:
            yield conn

    @asynccontextmanager
    async def autocommit(self) -> AsyncIterator[AsyncConnection]:
        """A connection where each statement commits on its own (one round trip, no BEGIN)."""
        async with self._unit_of_work(), self._autocommit.connect() as conn:
            yield conn

    @asynccontextmanager
    async def driver(self) -> AsyncIterator[Any]:
        """A pooled connection's own asyncpg connection, for the hot path's plain SQL.

        Skips SQLAlchemy's Connection (same pool, same unit of work); statements commit on
        their own unless wrapped in the driver's `transaction()`.
        """
        async with self._unit_of_work():
            pooled = await self.engine.raw_connection()
            try:
                yield pooled.driver_connection
            except asyncpg.PostgresError:
                raise  # the server refused a statement; the connection itself is fine
            except BaseException:
                # Broken, or abandoned mid-statement by a deadline: never hand it out again.
                pooled.invalidate()
                raise
            finally:
                await greenlet_spawn(pooled.close)

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
        await self.engine.dispose()


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
