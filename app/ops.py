"""Operational endpoints: liveness, readiness, metrics; and the periodic expiry task."""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import func, select, text

from app import metrics
from app.db import Database
from app.errors import problem, within
from app.metrics import Channels
from app.orders.service import expire_reservations
from app.orders.tables import orders

router = APIRouter(tags=["ops"])
log = logging.getLogger("creditgate.ops")


@router.get("/livez")
async def livez() -> dict[str, str]:
    """The process is alive (never touches a dependency)."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "The database is not reachable"}})
async def readyz(request: Request) -> Response:
    """Ready when the database answers; Redis is reported but never required."""
    db: Database = request.app.state.db
    checks = {"database": "up", "cache": "disabled"}
    if db.cache is not None:
        checks["cache"] = "up" if await db.cache.ping() else "down"
    try:
        await within(db.settings.db_timeout_seconds, _probe(db))
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
        log.warning("readiness check failed: %s", type(exc).__name__)
        return problem(503, "unavailable", "Not ready", "the database is not reachable",
                       checks={**checks, "database": "down"})
    return JSONResponse({"status": "ok", "checks": checks})


async def _probe(db: Database) -> None:
    async with db.autocommit() as conn:
        await conn.execute(text("SELECT 1"))


@router.get("/metrics", response_class=Response)
async def metrics_endpoint(request: Request) -> Response:
    """Prometheus text exposition."""
    db: Database = request.app.state.db
    holds: int | None
    try:
        async with db.autocommit() as conn:
            holds = await conn.scalar(
                select(func.count()).select_from(orders).where(orders.c.status == "held"))
    except Exception:  # noqa: BLE001 - metrics must render while the database is down
        holds = None
    return Response(metrics.render(holds), media_type=metrics.CONTENT_TYPE)


async def expiry_loop(db: Database, channels: Channels, interval: float) -> None:
    """Expire lapsed reservations every `interval` seconds, forever."""
    while True:
        await asyncio.sleep(interval)
        try:
            run = await expire_reservations(db)
        except Exception:
            log.exception("expiry run failed")
            continue
        if run.expired:
            metrics.RESERVATIONS_EXPIRED.inc(run.expired)
            metrics.count_decisions(run.decided, channels)
            log.info("expired %d reservations", run.expired)
