"""The ASGI application: create_app(), lifespan, routers, middleware, error handlers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import errors, metrics
from app.auth.verifier import KeyVerifier
from app.credit.views import router as credit_router
from app.customers.views import router as customers_router
from app.db import Database
from app.metrics import Channels
from app.ops import expiry_loop
from app.ops import router as ops_router
from app.orders.views import router as orders_router
from app.receivables.views import router as receivables_router
from app.settings import Settings, get_settings

DESCRIPTION = """Order-time credit checks: **approve**, **hold** or **prepay**, with reasons.

Authenticate with `Authorization: Bearer <api key>` (create one with
`creditgate keys create --role ROLE`). Amounts are exact decimal strings. Every error is
RFC 9457 `application/problem+json` with a stable `code`.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the application (uvicorn calls this as a factory)."""
    settings = settings or get_settings()
    logging.basicConfig(level=settings.log_level.upper())

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        metrics.forget_dead_workers()
        db = Database(settings)
        app.state.db = db
        app.state.keys = KeyVerifier(db, settings.key_cache_seconds)
        app.state.channels = Channels(settings.channels)
        expiry = None
        if settings.expire_interval_seconds > 0:
            expiry = asyncio.create_task(
                expiry_loop(db, app.state.channels, settings.expire_interval_seconds))
        try:
            yield
        finally:
            if expiry is not None:
                expiry.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await expiry
            await db.dispose()

    app = FastAPI(title="creditgate", version="0.1.0", description=DESCRIPTION,
                  lifespan=lifespan)
    errors.install(app)
    for router in (credit_router, orders_router, customers_router, receivables_router,
                   ops_router):
        app.include_router(router)
    app.add_middleware(HttpMetrics)
    return app


class HttpMetrics:
    """Counts and times every request by method, route template and status."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route: Any = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope["method"]
            metrics.HTTP_REQUESTS.labels(method, template, str(status)).inc()
            metrics.HTTP_SECONDS.labels(method, template).observe(time.perf_counter() - started)
