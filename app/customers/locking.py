"""The per-customer serialisation point: the account row, and its credit group's row first.

Every change of a member's exposure also changes its group's (the trigger of migration 0012),
so every writer takes the two row locks in one order, group then account: sister companies'
transactions queue on the group row and can never deadlock on each other's accounts.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.engine import DriverSQL

# The group is locked in the WHERE clause's one-time filter, which runs before the account row
# is scanned, let alone locked. $1 customer. Answers the account as of the lock and the group
# that was locked; its group_id differs from that only when the account moved meanwhile.
LOCK_ACCOUNT = """WITH g AS (
    SELECT group_id FROM credit_groups
    WHERE group_id = (SELECT group_id FROM accounts WHERE customer_id = $1::text)
    FOR UPDATE)
SELECT a.*, (SELECT min(group_id) FROM g) AS locked_group FROM accounts a
WHERE a.customer_id = $1::text AND (SELECT count(*) FROM g) >= 0
FOR UPDATE OF a"""
LOCK_GROUP = "SELECT 1 FROM credit_groups WHERE group_id = $1::text FOR UPDATE"
# Many customers in one transaction (a batch of the sweep, an import, a repair): all their
# groups first, in group order; then their accounts, each in customer order.
LOCK_GROUPS_OF = """SELECT group_id FROM credit_groups
WHERE group_id IN (SELECT group_id FROM accounts WHERE customer_id = ANY($1::text[]))
   OR group_id = ANY($2::text[])
ORDER BY group_id FOR UPDATE"""


async def lock_account(conn: AsyncConnection, customer_id: str) -> Any:
    """Lock the customer's group row, then its account row; the account row as of the lock
    (with `locked_group`), or None when there is no account."""
    return await locked(DriverSQL(conn), customer_id)


async def lock_groups_of(conn: AsyncConnection, customer_ids: list[str],
                         group_ids: list[str] | None = None) -> None:
    """Lock the credit groups of these customers (and these groups), in group order, before
    any of their accounts (LOCK_GROUPS_OF)."""
    await conn.exec_driver_sql(LOCK_GROUPS_OF, (customer_ids, group_ids or []))


async def locked(pg: Any, customer_id: str) -> Any:
    """LOCK_ACCOUNT on an asyncpg-like connection (`fetchrow`); the row, or None."""
    row = await pg.fetchrow(LOCK_ACCOUNT, customer_id)
    if row is not None and row["group_id"] is not None and row["group_id"] != row["locked_group"]:
        # Moved into this group while the lock was waited for: lock it too. The order is
        # reversed here, which only a move racing a check of the same member can meet; the
        # database then breaks the deadlock and the check is retried (app/credit/service.py).
        await pg.fetchrow(LOCK_GROUP, row["group_id"])
    return row
