"""Engine, column types and the transaction boundary."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import asyncpg
from sqlalchemy import JSON, BigInteger, DateTime, Dialect, Index, MetaData, Numeric, event, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.types import TypeDecorator
from sqlalchemy.util import greenlet_spawn

from app.money import SCALE
from app.settings import Settings

if TYPE_CHECKING:
    from app.cache import Cache

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "pk": "pk_%(table_name)s",
    }
)

_SQLITE_FACTOR = Decimal(10) ** SCALE


class Money(TypeDecorator[Decimal]):
    """NUMERIC(20,4) on PostgreSQL; on SQLite an integer of 1/10,000ths so SQL sums stay exact."""

    impl = Numeric(20, SCALE)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(BigInteger())
        return dialect.type_descriptor(Numeric(20, SCALE, asdecimal=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return int((Decimal(value) * _SQLITE_FACTOR).to_integral_exact())
        return Decimal(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return Decimal(int(value)).scaleb(-SCALE)
        return Decimal(value).quantize(Decimal(1).scaleb(-SCALE))


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timestamps are stored and returned in UTC, always timezone-aware."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)  # type: ignore[no-any-return]
        return value.astimezone(dt.UTC)  # type: ignore[no-any-return]


# A ratio with at most four decimals needs exactly the storage money has.
ExactRatio = Money

def partial_index(name: str, *columns: str, where: str, include: tuple[str, ...] = ()
                  ) -> Index:
    """An index over the rows matching `where` only (PostgreSQL and SQLite alike);
    `include` adds payload columns on PostgreSQL, for index-only scans."""
    return Index(name, *columns, postgresql_where=text(where), sqlite_where=text(where),
                 postgresql_include=list(include))


JsonDoc = JSON().with_variant(JSONB(), "postgresql")


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
        self.is_sqlite = settings.is_sqlite
        self.engine = _make_engine(settings)
        self._autocommit = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        self.on_commit: OnCommit | None = None
        self.cache: Cache | None = None  # set when REDIS_URL is

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

    async def dispose(self) -> None:
        await self.engine.dispose()


def _make_engine(settings: Settings) -> AsyncEngine:
    if settings.is_sqlite:
        engine = create_async_engine(settings.database_url, connect_args={"timeout": 30},
                                     hide_parameters=True)
        _serialise_sqlite_writers(engine)
        return engine
    connect_args: dict[str, Any] = {
        "timeout": settings.db_timeout_seconds,
        "command_timeout": settings.db_statement_timeout_seconds,
        "server_settings": {"application_name": "creditgate"},
    }
    if settings.db_pgbouncer:
        # Transaction pooling hands each transaction to any server connection: no statement
        # cache, and unique names for the statements asyncpg still prepares.
        connect_args.update(statement_cache_size=0, prepared_statement_cache_size=0,
                            prepared_statement_name_func=_unique_statement_name)
    engine = create_async_engine(
        settings.database_url,
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


def _serialise_sqlite_writers(engine: AsyncEngine) -> None:
    # SQLite has no row locks: BEGIN IMMEDIATE takes the write lock up front, which gives the
    # same per-customer serialisation as PostgreSQL's SELECT ... FOR UPDATE (coarser, but correct).
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
