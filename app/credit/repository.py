"""Reading a customer's credit state (account, class policy, overdue facts, group,
securities) in one statement: the check's own read (app/credit/sql.py)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.ext.asyncio import AsyncConnection

from app.credit import sql
from app.credit.plans import CreditState
from app.credit.rows import state_from_row
from app.customers.locking import lock_account
from app.db.engine import DriverSQL


async def load_locked(conn: AsyncConnection, customer_id: str, today: dt.date
                      ) -> CreditState | None:
    """Lock the group and account rows (app/customers/locking.py) and read the credit state
    afresh; None if unknown."""
    if await lock_account(conn, customer_id) is None:
        return None
    return await load_state(conn, customer_id, today)


async def load_state(conn: AsyncConnection, customer_id: str, today: dt.date
                     ) -> CreditState | None:
    """The credit state without locking (for reads); None if the customer is unknown."""
    return state_from_row(await DriverSQL(conn).fetchrow(sql.SNAPSHOT, customer_id, None,
                                                         today, None), today)
