"""CPU per reserving check by layer, measured in one process without HTTP (no py-spy).

A sampling profiler under a saturating load counts a process that is runnable but waiting
for a core as busy where it stands, which is mostly just after it woke PostgreSQL with a
query: it over-attributes the database driver. This measures CPU time instead, layer by
layer, each configuration three times in alternation (median), on the bench database:

- floor: bench/floor.py's statements on an asyncpg pool (BEGIN, UPDATE, INSERT, COMMIT);
- service: `check_credit` as the route calls it, without Redis and without the deadline;
- + Redis: with the read cache's retirement after every commit;
- + Redis + deadline: as the route runs it (`within`: the check in a task of its own;
  with BENCH_REDIS="" the app has no read cache, and this layer has none either).

Each runs sequentially (one check at a time) and 16 at a time (the concurrency one worker
sees under the bench's 32 connections). Python CPU is this process's; PostgreSQL CPU the
bench database's backends'. The HTTP stack's share is what `make bench` measures beyond it.

    python bench/components.py DSN REDIS_URL N_CUSTOMERS
Prints one line: BENCHCOMPONENTS {json}.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import random
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from floor import INSERT as FLOOR_INSERT  # bench/floor.py: its statements, as it sends them
from floor import RESERVE as FLOOR_RESERVE
from procstat import proc_cpu

ROOT = Path(__file__).resolve().parent.parent
CHECKS = int(os.environ.get("BENCH_COMPONENT_CHECKS", "1500"))
CONCURRENCY = 16


async def main(dsn: str, redis_url: str, customers: int) -> dict[str, Any]:
    os.environ["DATABASE_URL"] = dsn
    os.environ.setdefault("CREDITGATE_ENV", "production")
    sys.path.insert(0, str(ROOT))
    import asyncpg

    from app.auth.roles import Caller, Role
    from app.cache import Cache, retire_after_commit
    from app.credit.schemas import CreditCheckIn
    from app.credit.service import check_credit
    from app.db.engine import Database
    from app.deadline import within
    from app.settings import get_settings

    db = Database(get_settings())
    settings = db.settings
    # As the app is wired (app/main.py): with a Redis URL, every commit retires the entries
    # it touched; without one (BENCH_REDIS=""), nothing happens after a commit.
    cache = Cache(redis_url, timeout=settings.redis_timeout_seconds,
                  ttl=settings.cache_ttl_seconds,
                  namespace=settings.cache_namespace) if redis_url else None
    retire = retire_after_commit(db, cache) if cache is not None else None
    caller = Caller("bench", "bench-components", Role.ORDER_ENTRY)
    pool = await asyncpg.create_pool(dsn, min_size=CONCURRENCY, max_size=CONCURRENCY)
    monitor = await asyncpg.connect(dsn.rsplit("/", 1)[0] + "/postgres")
    db_name = dsn.rsplit("/", 1)[1]

    def request() -> CreditCheckIn:
        # The bench's random order: 10.00 .. 999.99, a random customer, a new order id.
        amount = Decimal(random.randint(1_000, 99_999)) / 100
        return CreditCheckIn(order_id=f"cmp-{uuid.uuid4().hex}",
                             customer_id=f"C{random.randint(1, customers):06d}",
                             amount=amount, currency="EUR", channel="erp")

    async def floor(req: CreditCheckIn) -> None:
        async with pool.acquire() as conn, conn.transaction():
            if await conn.fetchrow(FLOOR_RESERVE, req.customer_id, req.amount) is not None:
                await conn.execute(FLOOR_INSERT, req.order_id, req.customer_id, req.amount,
                                   dt.datetime.now(dt.UTC))

    async def service(req: CreditCheckIn) -> None:
        db.on_commit = None
        await check_credit(db, None, req, caller)

    async def redis(req: CreditCheckIn) -> None:
        db.on_commit = retire
        await check_credit(db, cache, req, caller)

    async def deadline(req: CreditCheckIn) -> None:
        db.on_commit = retire
        await within(float(settings.check_timeout_seconds),
                     check_credit(db, cache, req, caller))

    layers: dict[str, Callable[[CreditCheckIn], Awaitable[None]]] = {
        "floor": floor, "service": service, "redis": redis, "deadline": deadline}
    if cache is None:
        del layers["redis"]

    async def backends() -> list[int]:
        rows = await monitor.fetch("SELECT pid FROM pg_stat_activity WHERE datname = $1",
                                   db_name)
        return [int(r["pid"]) for r in rows]

    async def measure(run: Callable[[CreditCheckIn], Awaitable[None]], width: int
                      ) -> dict[str, float]:
        reqs = iter([request() for _ in range(CHECKS)])
        pids = await backends()
        pg0 = {p: proc_cpu(p) for p in pids}
        wall0, py0 = time.perf_counter(), time.process_time()

        async def lane() -> None:
            for req in reqs:
                await run(req)

        await asyncio.gather(*(lane() for _ in range(width)))
        wall, py = time.perf_counter() - wall0, time.process_time() - py0
        pg = sum(proc_cpu(p) - pg0.get(p, 0.0) for p in await backends())
        return {"py_us": 1e6 * py / CHECKS, "pg_us": 1e6 * pg / CHECKS,
                "wall_us": 1e6 * wall / CHECKS}

    for run in layers.values():  # warm-up: statement caches, pools, Redis connections
        await asyncio.gather(*(run(request()) for _ in range(CONCURRENCY)))
    samples: dict[str, list[dict[str, float]]] = {}
    for _ in range(3):
        for width in (1, CONCURRENCY):
            for name, run in layers.items():
                samples.setdefault(f"{name}@{width}", []).append(await measure(run, width))
    await pool.close()
    await monitor.close()
    if cache is not None:
        await cache.close()
    await db.dispose()
    return {key: {k: statistics.median(s[k] for s in runs) for k in runs[0]}
            for key, runs in samples.items()}


if __name__ == "__main__":
    result = asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
    print("BENCHCOMPONENTS " + json.dumps(result), flush=True)
