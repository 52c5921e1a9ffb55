"""The ASGI application: create_app(), lifespan, routers, middleware, error handlers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI

from app import errors, logs, metrics, openapi
from app.assessment.views import router as assessment_router
from app.auth.rate_limit import RateLimiter
from app.auth.verifier import KeyVerifier
from app.cache import Cache, retire_after_commit
from app.console.mount import install as install_console
from app.credit.fast_path import CheckFastPath
from app.credit.views import router as credit_router
from app.credit_file.views import router as credit_file_router
from app.customers.views import router as customers_router
from app.db.engine import Database
from app.events.dispatcher import Dispatcher
from app.events.outbox import WEBHOOKS_CHANNEL
from app.events.views import router as events_router
from app.fx.views import router as fx_router
from app.groups.views import router as groups_router
from app.metrics import Channels
from app.middleware.body_limit import BodyLimit
from app.middleware.request_log import RequestLog
from app.monitoring.sweep import monitor_loop
from app.monitoring.views import router as monitoring_router
from app.notify import CACHE_CHANNEL, Notifications
from app.ops import expiry_loop
from app.ops import router as ops_router
from app.orders.views import router as orders_router
from app.policies.views import router as policies_router
from app.receivables.views import router as receivables_router
from app.securities.views import router as securities_router
from app.settings import Settings, get_settings

log = logging.getLogger("creditgate")
SHUTDOWN_SECONDS = 5.0
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
        cache = _use_cache(db, notes, settings.redis_url) if settings.redis_url else None
        keys = KeyVerifier(db, settings.key_cache_seconds, notes)
        app.state.db, app.state.keys, app.state.cache = db, keys, cache
        app.state.channels = Channels(settings.channels)
        app.state.limiter = RateLimiter(settings.rate_limit_per_second, settings.rate_limit_burst)
        dispatcher = Dispatcher(db)
        if settings.webhook_poll_seconds > 0:  # before notes.run(): it listens at connect
            notes.subscribe(WEBHOOKS_CHANNEL, dispatcher.wake)
        tasks = [asyncio.create_task(notes.run()), asyncio.create_task(keys.run()),
                 asyncio.create_task(_sample_pool_use(db)),
                 asyncio.create_task(_open_pool(db))]
        if settings.expire_interval_seconds > 0:
            tasks.append(asyncio.create_task(
                expiry_loop(db, app.state.channels, settings.expire_interval_seconds)))
        if settings.monitor_interval_seconds > 0:
            tasks.append(asyncio.create_task(
                monitor_loop(db, settings.monitor_interval_seconds)))
        if settings.webhook_poll_seconds > 0:
            tasks.append(asyncio.create_task(dispatcher.run(settings.webhook_poll_seconds)))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            # Bounded: a task stuck in a cancelled statement must not keep a worker from
            # shutting down (uvicorn's graceful shutdown has its own deadline after this).
            done, stuck = await asyncio.wait(tasks, timeout=SHUTDOWN_SECONDS)
            for task in done:
                if not task.cancelled() and task.exception() is not None:
                    log.warning("a background task had failed: %s",
                                type(task.exception()).__name__)
            if stuck:
                log.warning("%d background tasks did not stop within %g s", len(stuck),
                            SHUTDOWN_SECONDS)
            await keys.flush()
            if cache is not None:
                await cache.close()
            await db.dispose()

    app = FastAPI(title="creditgate", version="0.1.0", description=DESCRIPTION,
                  lifespan=lifespan)
    errors.install(app)
    openapi.install(app)
    for router in (credit_router, orders_router, customers_router, credit_file_router,
                   receivables_router, policies_router, assessment_router, monitoring_router,
                   events_router, fx_router, groups_router, securities_router,
                   ops_router):
        app.include_router(router)
    install_console(app)
    # Innermost: it stands in for the credit-check route, inside the body limit and the log.
    app.add_middleware(CheckFastPath)
    app.add_middleware(BodyLimit, default=settings.max_body_bytes,
                       larger={r"/v1/customers/[^/]+/open-items": settings.max_snapshot_bytes})
    app.add_middleware(RequestLog)
    return app


def _use_cache(db: Database, notes: Notifications, url: str) -> Cache | None:
    """Wire the Redis read cache: retired after every commit, distrusted when deaf."""
    settings = db.settings
    if not notes.possible:
        log.warning("REDIS_URL is ignored: the read cache needs PostgreSQL LISTEN/NOTIFY, "
                    "which transaction-mode PgBouncer (CREDITGATE_DB_PGBOUNCER) does not offer "
                    "unless CREDITGATE_LISTEN_DATABASE_URL is set")
        return None
    cache = Cache(url, timeout=settings.redis_timeout_seconds, ttl=settings.cache_ttl_seconds,
                  namespace=settings.cache_namespace)
    cache.trusted = lambda: notes.connected
    notes.subscribe(CACHE_CHANNEL, cache.mark_dirty)
    notes.watch(cache.mark_dirty)  # while deaf, some process may have signalled in vain
    db.on_commit = retire_after_commit(db, cache)
    return cache


async def _open_pool(db: Database) -> None:
    try:
        await db.open_pool()
    except Exception as exc:  # noqa: BLE001 - the database may be down at start; requests retry
        log.warning("could not open the connection pool at start: %s", type(exc).__name__)


async def _sample_pool_use(db: Database) -> None:
    """Publish this worker's pool use once a second (cheaper than counting every checkout)."""
    while True:
        metrics.DB_POOL_IN_USE.set(db.connections_in_use)
        await asyncio.sleep(1)
