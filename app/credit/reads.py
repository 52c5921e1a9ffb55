"""The credit state for exposure reads and dry runs: from the read cache when it has it."""

from __future__ import annotations

import datetime as dt

from app.cache import Cache
from app.credit.codec import state_from_doc, state_to_doc
from app.credit.plans import CreditState
from app.credit.repository import load_state
from app.db.engine import Database


async def read_state(db: Database, cache: Cache | None, customer_id: str, today: dt.date
                     ) -> CreditState | None:
    """Cache-aside; never used by a check that reserves (the cache is never authoritative).

    A member of a credit group is not cached: its group's exposure moves with every sister
    company's change, which its own version does not follow."""
    token = None
    if cache is not None:
        doc, token = await cache.get(customer_id, today)
        if doc is not None and doc.get("group") is None:
            return state_from_doc(doc)
    async with db.autocommit() as conn:
        state = await load_state(conn, customer_id, today)
    if cache is not None and token is not None and state is not None and state.group is None:
        await cache.put(customer_id, token, today, state_to_doc(state))
    return state
