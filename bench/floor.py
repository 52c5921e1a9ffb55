"""The floor: roughly the least work any correct reserving check can do, written naively.

One FastAPI endpoint; raw asyncpg; one transaction holding a guarded UPDATE ... RETURNING
and the INSERT of the order. No auth, no policy, no audit trail, no idempotency handling.
Served like the app (uvicorn, same workers, same log level), so the ratio app / floor shows
what creditgate's extra work costs.

    BENCH_FLOOR_DSN=postgresql://... uvicorn --app-dir bench floor:app --workers 2

BENCH_FLOOR_RESET=skip releases connections without asyncpg's reset query (4 round trips a
check instead of 5): the floor as a pool that trusts its own code would run it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from collections.abc import AsyncIterator
from decimal import Decimal

import asyncpg
from fastapi import FastAPI
from pydantic import BaseModel

RESERVE = """
UPDATE bench_floor_accounts SET reserved = reserved + $2
WHERE customer_id = $1 AND reserved + $2 <= credit_limit
RETURNING credit_limit, reserved
"""
INSERT = """
INSERT INTO bench_floor_orders (order_id, customer_id, amount, created_at)
VALUES ($1, $2, $3, $4)
"""


class Check(BaseModel):
    order_id: str
    customer_id: str
    amount: Decimal


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    size = int(os.environ.get("BENCH_FLOOR_POOL", "16"))
    # Idle connections are closed after 10 s: the floor does not hold a share of the server's
    # connections while the app is being measured.
    skip_reset = os.environ.get("BENCH_FLOOR_RESET") == "skip"
    app.state.pool = await asyncpg.create_pool(os.environ["BENCH_FLOOR_DSN"], min_size=0,
                                               max_size=size,
                                               max_inactive_connection_lifetime=10,
                                               reset=_no_reset if skip_reset else None)
    try:
        yield
    finally:
        await app.state.pool.close()


async def _no_reset(conn: asyncpg.Connection) -> None:
    """Release as is: the floor's handler leaves no session state behind."""


app = FastAPI(lifespan=lifespan)


@app.post("/check")
async def check(body: Check) -> dict[str, str]:
    async with app.state.pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(RESERVE, body.customer_id, body.amount)
        if row is None:
            return {"order_id": body.order_id, "outcome": "hold"}
        await conn.execute(INSERT, body.order_id, body.customer_id, body.amount,
                           dt.datetime.now(dt.UTC))
    return {"order_id": body.order_id, "outcome": "approve",
            "available": str(row["credit_limit"] - row["reserved"])}
