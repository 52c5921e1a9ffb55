"""SQL for the credit file: append and read, deliberately nothing else."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from app.credit_file.tables import credit_file


async def add_entries(conn: AsyncConnection, entries: list[dict[str, Any]]) -> None:
    """Append to credit files. There is deliberately no update or delete."""
    if entries:
        await conn.execute(insert(credit_file), entries)


async def list_entries(conn: AsyncConnection, customer_id: str, *, before: str | None,
                       limit: int) -> list[Any]:
    """Credit-file entries, newest first, strictly older than the cursor entry."""
    stmt = select(credit_file).where(credit_file.c.customer_id == customer_id)
    if before is not None:
        stmt = stmt.where(credit_file.c.entry_id < before)
    stmt = stmt.order_by(credit_file.c.entry_id.desc()).limit(limit)
    return list((await conn.execute(stmt)).mappings().all())


async def order_entries(conn: AsyncConnection, customer_id: str, order_id: str) -> list[Any]:
    """Every credit-file entry about one order, oldest first."""
    stmt = (select(credit_file)
            .where(credit_file.c.customer_id == customer_id, credit_file.c.order_id == order_id)
            .order_by(credit_file.c.entry_id))
    return list((await conn.execute(stmt)).mappings().all())


async def get_entry(conn: AsyncConnection, customer_id: str, entry_id: str) -> Any:
    stmt = select(credit_file).where(credit_file.c.customer_id == customer_id,
                                     credit_file.c.entry_id == entry_id)
    return (await conn.execute(stmt)).mappings().one()
