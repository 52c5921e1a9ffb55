"""An account's credit group in a change of its terms: which rows to lock, what a member
must satisfy, and the headroom a member leaves behind in its old group."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from app import flows
from app.customers import repository as repo
from app.customers.models import Account
from app.groups.models import Group
from app.groups.service import lock_groups, refuse_membership
from app.metrics import Decided

Terms = dict[str, Any]


async def lock_for_change(conn: AsyncConnection, customer_id: str,
                          terms_for: Callable[[Account | None], Terms], *, create: bool
                          ) -> tuple[Account | None, dict[str, Group | None]]:
    """Lock the groups the change touches (the account's and the one it is to join), then
    the account: group rows before account rows, and groups in id order, as every writer
    does (app/customers/locking.py), so a move crossing another cannot deadlock."""
    locked: dict[str, Group | None] = {}

    def touched(account: Account | None) -> set[str]:
        ids = {account.group_id} if account is not None else set()
        if account is not None or create:
            ids.add(terms_for(account)["group_id"])
        return {g for g in ids if g is not None}

    seen = await repo.get_account(conn, customer_id)
    while True:
        locked |= await lock_groups(conn, touched(seen) - locked.keys())
        current = await repo.get_account(conn, customer_id, lock=True)
        if touched(current) <= locked.keys():
            return current, locked
        # Moved (or created) between the look and the lock: lock what it touches now.
        seen = current


def refuse(terms: Terms, groups: dict[str, Group | None], changes: Terms | None = None
           ) -> None:
    """An unknown group, or a group in another currency than the account's, is 422; checked
    when the account is created or its group or currency changes."""
    group_id = terms["group_id"]
    if group_id is None or (changes is not None and not {"group_id", "currency"} & changes.keys()):
        return
    refuse_membership(group_id, groups[group_id], terms["currency"])


async def release_left(conn: AsyncConnection, old: Account, terms: Terms, *, today: dt.date,
                       now: dt.datetime, ttl_days: int) -> Decided:
    """A member that left a group frees the group's headroom for the members that stay."""
    if old.group_id is None or old.group_id == terms["group_id"]:
        return []
    return await flows.auto_release_group(conn, old.group_id, today=today, now=now,
                                          ttl_days=ttl_days)
