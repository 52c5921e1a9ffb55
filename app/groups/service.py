"""Credit groups: create, replace, read; their exposure; what membership must satisfy."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from app import clock, flows
from app.auth.roles import Caller
from app.credit_file.entries import Event, event_entry, recorded
from app.credit_file.repository import add_entries
from app.db.engine import Database
from app.errors import NotFound, Unprocessable, is_deadlock
from app.groups import repository as repo
from app.groups.models import Group
from app.groups.schemas import GroupExposureOut, GroupIn, GroupOut, MemberExposureOut
from app.ids import new_id
from app.metrics import Decided

TERMS = ("name", "currency", "credit_limit", "blocked", "block_reason")


@dataclass
class GroupChange:
    group: GroupOut
    created: bool
    decided: Decided


def render_group(group: Group) -> GroupOut:
    return GroupOut(
        group_id=group.group_id, name=group.name, currency=group.currency,
        credit_limit=group.credit_limit, effective_limit=group.effective_limit,
        blocked=group.blocked, block_reason=group.block_reason,
        member_count=group.member_count, created_at=group.created_at,
        updated_at=group.updated_at)


def _not_found(group_id: str) -> NotFound:
    return NotFound(f"no credit group {group_id}", code="group_not_found")




def _frees_headroom(old: Group, new: dict[str, Any]) -> bool:
    return new["credit_limit"] > old.credit_limit or (old.blocked and not new["blocked"])


async def put_group(db: Database, group_id: str, body: GroupIn, caller: Caller
                    ) -> GroupChange:
    """Create the group, or replace its terms (its members and their exposure stay)."""
    try:
        return await _put(db, group_id, body, caller)
    except IntegrityError:
        # A concurrent PUT created it first; ours becomes a replacement.
        return await _put(db, group_id, body, caller)
    except DBAPIError as exc:
        # Releasing the members' held orders locks their accounts, which a check of a member
        # that moved in meanwhile may hold while it waits for this group (locking.py); the
        # database broke the tie by rolling this back, so once more.
        if not is_deadlock(exc):
            raise
        return await _put(db, group_id, body, caller)


async def _put(db: Database, group_id: str, body: GroupIn, caller: Caller) -> GroupChange:
    today, now = clock.today(), clock.now()
    terms = body.model_dump(include=set(TERMS))
    decided: Decided = []
    async with db.begin() as conn:
        current = await repo.get_group(conn, group_id, lock=True)
        if current is None:
            await repo.insert_group(conn, group_id, terms, now)
        else:
            changes = {k: {"old": recorded(getattr(current, k)), "new": recorded(v)}
                       for k, v in terms.items() if getattr(current, k) != v}
            if changes:
                if "currency" in changes and await repo.has_members_outside(
                        conn, group_id, terms["currency"]):
                    raise Unprocessable(
                        f"the members of {group_id} keep their accounts in "
                        f"{current.currency}; move them first", code="group_currency_mismatch")
                await repo.update_terms(conn, group_id, terms, now)
                await _record(conn, group_id, changes, caller, body.reason, now=now)
                if _frees_headroom(current, terms):
                    decided = await flows.auto_release_group(
                        conn, group_id, today=today, now=now,
                        ttl_days=db.settings.reservation_ttl_days)
        group = await repo.get_group(conn, group_id)
        assert group is not None
        return GroupChange(render_group(group), current is None, decided)


async def _record(conn: AsyncConnection, group_id: str, changes: dict[str, Any],
                  caller: Caller, reason: str | None, *, now: dt.datetime) -> None:
    """The change in every member's credit file: it moves what each of them may order."""
    details = {"group_id": group_id, "changes": changes}
    await add_entries(conn, [
        event_entry(entry_id=new_id(), at=now, event=Event.GROUP_CHANGED, actor=caller.name,
                    customer_id=customer_id, note=reason, details=details)
        for customer_id in await repo.member_ids(conn, group_id)])


async def get_group(db: Database, group_id: str) -> GroupOut:
    async with db.autocommit() as conn:
        group = await repo.get_group(conn, group_id)
    if group is None:
        raise _not_found(group_id)
    return render_group(group)


async def exposure(db: Database, group_id: str) -> GroupExposureOut:
    """The group's maintained exposure, with its members' as of the same moment."""
    async with db.autocommit() as conn:
        found = await repo.with_members(conn, group_id)
    if found is None:
        raise _not_found(group_id)
    group, members = found
    limit = group.effective_limit
    return GroupExposureOut(
        group_id=group.group_id, currency=group.currency, credit_limit=group.credit_limit,
        effective_limit=limit, open_receivables=group.open_receivables,
        open_orders=group.open_orders, exposure=group.exposure.total,
        available=group.exposure.available(limit),
        members=[MemberExposureOut(customer_id=m.customer_id,
                                   open_receivables=m.open_receivables,
                                   open_orders=m.open_orders, exposure=m.exposure.total)
                 for m in members])


async def lock_groups(conn: AsyncConnection, group_ids: Iterable[str]
                      ) -> dict[str, Group | None]:
    """Lock the groups FOR UPDATE in id order, the one order every writer that takes more
    than one keeps, so that two moves crossing each other cannot deadlock; None: unknown."""
    return {g: await repo.get_group(conn, g, lock=True) for g in sorted(set(group_ids))}


def refuse_membership(group_id: str, group: Group | None, currency: str) -> None:
    """A member must join a group that exists and share its currency (DESIGN.md 2.6)."""
    if group is None:
        raise Unprocessable(f"no credit group {group_id}", code="unknown_group",
                            extra={"errors": [{"field": "body.group_id",
                                               "message": "no such credit group"}]})
    if group.currency != currency:
        raise Unprocessable(f"credit group {group_id} is in {group.currency}; its members "
                            f"must be too, not {currency}", code="group_currency_mismatch")
