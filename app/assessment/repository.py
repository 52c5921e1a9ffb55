"""SQL for the scorecard's versions and for assessments."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.assessment.tables import assessments, scorecards

# One scorecard change at a time: the next version number is read, then written.
_SCORECARD_LOCK = 0x5C0_4ECA4D


async def latest_scorecard(conn: AsyncConnection) -> Any:
    stmt = select(scorecards).order_by(scorecards.c.version.desc()).limit(1)
    return (await conn.execute(stmt)).mappings().first()


async def scorecard_version(conn: AsyncConnection, version: int) -> Any:
    stmt = select(scorecards).where(scorecards.c.version == version)
    return (await conn.execute(stmt)).mappings().one()


async def lock_scorecard(conn: AsyncConnection) -> None:
    """Serialise scorecard changes until the transaction ends."""
    await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SCORECARD_LOCK})


async def insert_scorecard(conn: AsyncConnection, *, version: int, document: dict[str, Any],
                           now: dt.datetime, actor: str, note: str | None) -> None:
    await conn.execute(insert(scorecards).values(
        version=version, document=document, created_at=now, created_by=actor, note=note))


async def scorecard_history(conn: AsyncConnection, limit: int) -> list[Any]:
    stmt = select(scorecards).order_by(scorecards.c.version.desc()).limit(limit)
    return list((await conn.execute(stmt)).mappings().all())


async def get_assessment(conn: AsyncConnection, assessment_id: str, *, lock: bool = False
                         ) -> Any:
    stmt = select(assessments).where(assessments.c.assessment_id == assessment_id)
    if lock:
        stmt = stmt.with_for_update()
    return (await conn.execute(stmt)).mappings().first()


async def insert_assessment(conn: AsyncConnection, values: dict[str, Any]) -> None:
    await conn.execute(insert(assessments).values(**values))


async def list_assessments(conn: AsyncConnection, customer_id: str, limit: int) -> list[Any]:
    """A customer's assessments, newest first."""
    a = assessments.c
    stmt = (select(assessments).where(a.customer_id == customer_id)
            .order_by(a.created_at.desc(), a.assessment_id.desc()).limit(limit))
    return list((await conn.execute(stmt)).mappings().all())


async def mark_applied(conn: AsyncConnection, assessment_id: str, values: dict[str, Any]
                       ) -> None:
    await conn.execute(update(assessments).where(assessments.c.assessment_id == assessment_id)
                       .values(status="applied", **values))


async def supersede_applied(conn: AsyncConnection, customer_id: str, now: dt.datetime
                            ) -> list[str]:
    """Mark the customer's applied assessment(s) superseded; returns their ids."""
    a = assessments.c
    stmt = (update(assessments).where(a.customer_id == customer_id, a.status == "applied")
            .values(status="superseded", superseded_at=now).returning(a.assessment_id))
    return list((await conn.execute(stmt)).scalars().all())
