"""Operational endpoints: liveness, readiness, metrics; and the periodic expiry task."""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import func, select

from app import metrics, schema
from app.cache import Cache
from app.db.engine import Database
from app.deadline import within
from app.errors import problem
from app.events.tables import webhook_deliveries
from app.metrics import Channels
from app.monitoring.service import open_counts
from app.orders.service import expire_reservations
from app.orders.tables import orders

router = APIRouter(tags=["ops"])
log = logging.getLogger("creditgate.ops")
schema.shipped()  # the head revision this code expects: read from the migrations at start-up


@router.get("/livez", operation_id="livez")
async def livez() -> dict[str, str]:
    """The process is alive (never touches a dependency)."""
    return {"status": "ok"}


@router.get("/readyz", operation_id="readyz",
             responses={503: {"description": "The database is not reachable"}})
async def readyz(request: Request) -> Response:
    """Ready when the database answers and is at the schema revision this code was built for
    (neither behind it nor ahead of it); Redis is reported but never required."""
    db: Database = request.app.state.db
    cache: Cache | None = request.app.state.cache
    checks = {"database": "up", "cache": "disabled"}
    if cache is not None:
        checks["cache"] = "up" if await cache.ping() else "down"
    try:
        state = await within(db.settings.db_timeout_seconds, _probe(db))
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
        log.warning("readiness check failed: %s", type(exc).__name__)
        return problem(503, "unavailable", "Not ready", "the database is not reachable",
                       checks={**checks, "database": "down"})
    if not state.up_to_date:
        log.warning("not ready: %s", state.problem())
        return problem(503, "schema_outdated", "Not ready", state.problem(),
                       checks={**checks, "database": "schema_outdated"},
                       current_revision=state.current_revision,
                       expected_revision=state.expected_revision)
    return JSONResponse({"status": "ok", "checks": checks})


async def _probe(db: Database) -> schema.SchemaState:
    async with db.autocommit() as conn:
        return await schema.state_of(conn)


@router.get("/metrics", response_class=Response, operation_id="metrics")
async def metrics_endpoint(request: Request) -> Response:
    """Prometheus text exposition."""
    db: Database = request.app.state.db
    holds: int | None
    alerts_open: dict[str, int] | None
    backlog: int | None
    try:
        async with db.autocommit() as conn:
            holds = await conn.scalar(
                select(func.count()).select_from(orders).where(orders.c.status == "held"))
            alerts_open = await open_counts(conn)
            backlog = await conn.scalar(
                select(func.count(webhook_deliveries.c.position.distinct()))
                .where(webhook_deliveries.c.status == "pending"))
    except Exception:  # noqa: BLE001 - metrics must render while the database is down
        holds = alerts_open = backlog = None
    return Response(metrics.render(holds, alerts_open, backlog),
                    media_type=metrics.CONTENT_TYPE)


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
