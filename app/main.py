"""The ASGI application: create_app(), lifespan, routers, middleware, error handlers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI

from app import errors, logs, metrics, openapi
from app.auth.verifier import KeyVerifier
from app.cache import Cache, retire_after_commit
from app.credit.views import router as credit_router
from app.customers.views import router as customers_router
from app.db import Database
from app.limits import BodyLimit, RateLimiter
from app.metrics import Channels
from app.notify import CACHE_CHANNEL, Notifications
from app.ops import expiry_loop
from app.ops import router as ops_router
from app.orders.views import router as orders_router
from app.receivables.views import router as receivables_router
from app.settings import Settings, get_settings

log = logging.getLogger("creditgate")
DESCRIPTION = """Order-time credit checks: **approve**, **hold** or **prepay**, with reasons.

Authenticate with `Authorization: Bearer <api key>` (create one with
`creditgate keys create --role ROLE`). Amounts are exact decimal strings. Every error is
RFC 9457 `application/problem+json` with a stable `code`.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the application (uvicorn calls this as a factory)."""
    settings = settings or get_settings()
    logs.configure(settings.log_level)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        metrics.forget_dead_workers()
        db = Database(settings)
        notes = Notifications(settings)
        if settings.redis_url:
            _use_cache(db, notes, settings.redis_url)
        keys = KeyVerifier(db, settings.key_cache_seconds, notes)
        app.state.db, app.state.keys = db, keys
        app.state.channels = Channels(settings.channels)
        app.state.limiter = RateLimiter(settings.rate_limit_per_second, settings.rate_limit_burst)
        tasks = [asyncio.create_task(notes.run()), asyncio.create_task(keys.run()),
                 asyncio.create_task(_sample_pool_use(db))]
        if settings.expire_interval_seconds > 0:
            tasks.append(asyncio.create_task(
                expiry_loop(db, app.state.channels, settings.expire_interval_seconds)))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await keys.flush()
            if db.cache is not None:
                await db.cache.close()
            await db.dispose()

    app = FastAPI(title="creditgate", version="0.1.0", description=DESCRIPTION,
                  lifespan=lifespan)
    errors.install(app)
    openapi.install(app)
    for router in (credit_router, orders_router, customers_router, receivables_router,
                   ops_router):
        app.include_router(router)
    app.add_middleware(BodyLimit, default=settings.max_body_bytes,
                       larger={r"/v1/customers/[^/]+/open-items": settings.max_snapshot_bytes})
    app.add_middleware(logs.Observe)
    return app


def _use_cache(db: Database, notes: Notifications, url: str) -> None:
    """Wire the Redis read cache: retired after every commit, distrusted when deaf."""
    settings = db.settings
    if not notes.possible:
        log.warning("REDIS_URL is ignored: the read cache needs PostgreSQL LISTEN/NOTIFY, "
                    "which SQLite does not offer, nor transaction-mode PgBouncer "
                    "(CREDITGATE_DB_PGBOUNCER) unless CREDITGATE_LISTEN_DATABASE_URL is set")
        return
    cache = Cache(url, timeout=settings.redis_timeout_seconds, ttl=settings.cache_ttl_seconds,
                  namespace=settings.cache_namespace)
    cache.trusted = lambda: notes.connected
    notes.subscribe(CACHE_CHANNEL, cache.mark_dirty)
    notes.watch(cache.mark_dirty)  # while deaf, some process may have signalled in vain
    db.cache = cache
    db.on_commit = retire_after_commit(db, cache)


async def _sample_pool_use(db: Database) -> None:
    """Publish this worker's pool use once a second (cheaper than counting every checkout)."""
    pool = db.engine.sync_engine.pool
    while True:
        metrics.DB_POOL_IN_USE.set(pool.checkedout())  # type: ignore[attr-defined]
        await asyncio.sleep(1)
