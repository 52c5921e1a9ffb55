"""Operational endpoints: liveness, readiness, metrics; and the periodic expiry task."""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter, Request, Response
from sqlalchemy import func, select, text

from app import metrics
from app.db import Database
from app.errors import problem
from app.metrics import Channels
from app.orders.service import expire_reservations
from app.orders.tables import orders

router = APIRouter(tags=["ops"])
log = logging.getLogger("creditgate.ops")


@router.get("/livez")
async def livez() -> dict[str, str]:
    """The process is alive (never touches a dependency)."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "A required dependency is down"}})
async def readyz(request: Request) -> Response:
    """PostgreSQL (or SQLite) answers; Redis is reported but not required."""
    db: Database = request.app.state.db
    try:
        async with asyncio.timeout(db.settings.db_timeout_seconds):
            async with db.autocommit() as conn:
                await conn.execute(text("SELECT 1"))
    except Exception as exc:
        log.warning("readiness check failed: %s", type(exc).__name__)
        return problem(503, "unavailable", "Not ready", "the database is not reachable",
                       checks={"database": "down"})
    return Response('{"status":"ok","checks":{"database":"up"}}',
                    media_type="application/json")


@router.get("/metrics", response_class=Response)
async def metrics_endpoint(request: Request) -> Response:
    """Prometheus text exposition."""
    db: Database = request.app.state.db
    holds: int | None
    try:
        async with db.autocommit() as conn:
            holds = await conn.scalar(
                select(func.count()).select_from(orders).where(orders.c.status == "held"))
    except Exception:
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
