"""Reading a customer's credit file."""

from __future__ import annotations

from typing import Any

from app.credit.schemas import render_decision
from app.credit_file.entries import DECISION_EVENTS
from app.credit_file.repository import list_entries
from app.credit_file.schemas import HistoryEntryOut, HistoryPage
from app.customers.repository import get_account
from app.db.engine import Database
from app.errors import NotFound


async def history(db: Database, customer_id: str, cursor: str | None, limit: int
                  ) -> HistoryPage:
    """The credit file, newest first."""
    async with db.autocommit() as conn:
        if await get_account(conn, customer_id) is None:
            raise NotFound(f"no credit account {customer_id}", code="customer_not_found")
        rows = await list_entries(conn, customer_id, before=cursor, limit=limit + 1)
    items = [_history_item(r) for r in rows[:limit]]
    next_cursor = items[-1].entry_id if len(rows) > limit else None
    return HistoryPage(items=items, next_cursor=next_cursor)


def _history_item(row: Any) -> HistoryEntryOut:
    decision = render_decision(row) if row["event"] in DECISION_EVENTS else None
    converted = row["converted_amount"]
    return HistoryEntryOut(entry_id=row["entry_id"], at=row["at"], event=row["event"],
                           actor=row["actor"], order_id=row["order_id"], decision=decision,
                           amount=row["amount"], currency=row["currency"],
                           converted_amount=row["amount"] if converted is None else converted,
                           fx_rate=row["fx_rate"], details=row["details"], note=row["note"])
