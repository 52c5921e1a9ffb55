"""Per-risk-class decision parameters: read, replace, audit."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import insert, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from app import clock
from app.auth.roles import Caller
from app.credit.policy import RISK_CLASSES, PolicyParams, default_policy
from app.db.engine import ALL_CUSTOMERS, Database, touch
from app.errors import AppError, NotFound, sqlstate
from app.ids import new_id
from app.policies.schemas import PolicyChangeOut, PolicyIn, PolicyOut
from app.policies.tables import policies, policy_changes

LOCK_WAIT_MS = 1000
LOCK_NOT_AVAILABLE = "55P03"


class Busy(AppError):
    status, code, title = 503, "busy", "Busy"


def params_of(body: PolicyIn) -> PolicyParams:
    """The decision parameters of a PUT body."""
    return PolicyParams(**body.model_dump(exclude={"reason"}))


def known_class(risk_class: str) -> None:
    if risk_class not in RISK_CLASSES:
        raise NotFound(f"unknown risk class {risk_class}; one of {', '.join(RISK_CLASSES)}",
                       code="risk_class_not_found")


def _params(row: Any) -> dict[str, Any]:
    return {k: row[k] for k in PolicyParams.__dataclass_fields__}


def seed_rows(now: dt.datetime) -> list[dict[str, Any]]:
    """The shipped defaults of every class (the migration inserts these)."""
    return [{"risk_class": rc, **default_policy(rc).__dict__, "updated_at": now,
             "updated_by": "system"} for rc in RISK_CLASSES]


async def get_policy(db: Database, risk_class: str) -> PolicyOut:
    known_class(risk_class)
    async with db.autocommit() as conn:
        row = (await conn.execute(select(policies).where(policies.c.risk_class == risk_class))
               ).mappings().first()
    if row is None:
        return PolicyOut(risk_class=risk_class, **default_policy(risk_class).__dict__,
                         updated_at=None, updated_by=None)
    return PolicyOut(**row)


async def put_policy(db: Database, risk_class: str, body: PolicyIn, caller: Caller
                     ) -> PolicyOut:
    """Replace a class's parameters; the old and new values go to the audit trail."""
    known_class(risk_class)
    now = clock.now()
    new = body.model_dump(exclude={"reason"})
    async with db.begin() as conn:
        touch(ALL_CUSTOMERS)  # every cached state embeds its class's policy
        await _wait_for_deciding_checks(conn)
        old = await _locked(conn, risk_class)
        values = {**new, "updated_at": now, "updated_by": caller.name}
        if old is None:
            await conn.execute(insert(policies).values(risk_class=risk_class, **values))
        else:
            await conn.execute(update(policies).where(policies.c.risk_class == risk_class)
                               .values(**values, version=policies.c.version + 1))
        await conn.execute(insert(policy_changes).values(
            change_id=new_id(), risk_class=risk_class, at=now, actor=caller.name,
            old=_jsonable(_params(old)) if old is not None else None, new=_jsonable(new),
            note=body.reason))
    return PolicyOut(risk_class=risk_class, **values)


async def policy_history(db: Database, risk_class: str, limit: int) -> list[PolicyChangeOut]:
    """Who changed a class's parameters, when, from what to what, and why; newest first."""
    known_class(risk_class)
    stmt = (select(policy_changes).where(policy_changes.c.risk_class == risk_class)
            .order_by(policy_changes.c.change_id.desc()).limit(limit))
    async with db.autocommit() as conn:
        rows = (await conn.execute(stmt)).mappings().all()
    return [PolicyChangeOut.model_validate(dict(r)) for r in rows]


async def _wait_for_deciding_checks(conn: AsyncConnection) -> None:
    """Once this commits, no decision taken under the old parameters may still land.

    A decision under the account row lock holds it until its transaction ends: EXCLUSIVE
    waits for every such transaction and keeps new ones waiting until this one commits (plain
    reads go on). An optimistic check decided on a read from before then is stopped by its
    guard, which compares the policy's version.
    """
    # Checks queue behind a waiting EXCLUSIVE request: never wait longer than a check's
    # deadline allows (a long batch, such as a CSV import, may hold account locks for minutes).
    await conn.execute(text(f"SET LOCAL lock_timeout = '{LOCK_WAIT_MS}ms'"))
    try:
        await conn.execute(text("LOCK TABLE accounts IN EXCLUSIVE MODE"))
    except DBAPIError as exc:
        if sqlstate(exc) != LOCK_NOT_AVAILABLE:
            raise
        raise Busy("accounts are being changed by a long transaction (an import, a batch); "
                   "the policy was not changed; retry shortly",
                   headers={"Retry-After": "1"}) from exc


async def _locked(conn: AsyncConnection, risk_class: str) -> Any:
    stmt = select(policies).where(policies.c.risk_class == risk_class).with_for_update()
    return (await conn.execute(stmt)).mappings().first()


def _jsonable(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v if v is None or isinstance(v, bool | int) else str(v)
            for k, v in values.items()}
