"""Count PostgreSQL round trips and statements per request, measured on the wire.

The app (and the floor) run in this process behind a tiny TCP proxy in front of PostgreSQL
that parses the frontend protocol: every Sync ('S') or simple Query ('Q') the client sends
is one round trip (it waits for ReadyForQuery); every Execute ('E') or Query is one
statement. So prepares, BEGIN/COMMIT and key look-ups are all counted, nothing is assumed.
Requests are sent one at a time (no contention), after a warm-up that fills the statement
caches, the key cache and the Redis cache. SQLAlchemy's cursor events name the statements.

    python bench/trace.py PG_HOST PG_PORT DBNAME REDIS_URL API_KEY N_CUSTOMERS
Prints one line: BENCHTRACE {json}.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import random
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

SSL_REQUEST, GSS_REQUEST = 80877103, 80877104
ROOT = Path(__file__).resolve().parent.parent


class Wire:
    """Frontend-message counts across all proxied connections."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def reset(self) -> None:
        self.counts.clear()

    @property
    def round_trips(self) -> int:
        return self.counts["S"] + self.counts["Q"]

    @property
    def statements(self) -> int:
        return self.counts["E"] + self.counts["Q"]


class FrontendParser:
    def __init__(self, wire: Wire) -> None:
        self.wire = wire
        self.buf = bytearray()
        self.startup = True

    def feed(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        while True:
            if self.startup:
                if len(buf) < 8:
                    return
                n = int.from_bytes(buf[:4], "big")
                if len(buf) < n:
                    return
                code = int.from_bytes(buf[4:8], "big")
                del buf[:n]
                if code not in (SSL_REQUEST, GSS_REQUEST):
                    self.startup = False
                continue
            if len(buf) < 5:
                return
            n = int.from_bytes(buf[1:5], "big")
            if len(buf) < n + 1:
                return
            self.wire.counts[chr(buf[0])] += 1
            del buf[:n + 1]


async def start_proxy(wire: Wire, host: str, port: int) -> asyncio.Server:
    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                   parser: FrontendParser | None) -> None:
        try:
            while data := await reader.read(65536):
                if parser is not None:
                    parser.feed(data)
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def handle(cr: asyncio.StreamReader, cw: asyncio.StreamWriter) -> None:
        ur, uw = await asyncio.open_connection(host, port)
        await asyncio.gather(pipe(cr, uw, FrontendParser(wire)), pipe(ur, cw, None))

    return await asyncio.start_server(handle, "127.0.0.1", 0)


def cache_lookups() -> Counter[str]:
    """This process's Redis cache lookups so far, by result (hit, miss, error)."""
    from prometheus_client import REGISTRY

    return Counter({result: int(REGISTRY.get_sample_value(
        "creditgate_cache_requests_total", {"result": result}) or 0)
        for result in ("hit", "miss", "error")})


async def per_request(wire: Wire, stmts: Counter[str], n: int, send: Any) -> dict[str, Any]:
    wire.reset()
    stmts.clear()
    lookups = cache_lookups()
    statuses: Counter[int] = Counter()
    outcomes: Counter[str] = Counter()
    for i in range(n):
        resp = await send(i)
        statuses[resp.status_code] += 1
        if resp.headers.get("content-type", "").startswith("application/json"):
            body = resp.json()
            if isinstance(body, dict) and "outcome" in body:
                outcomes[body["outcome"]] += 1
    return {
        "n": n,
        "round_trips": wire.round_trips / n,
        "statements": wire.statements / n,
        "prepares": wire.counts["P"] / n,
        "messages": {k: v / n for k, v in sorted(wire.counts.items())},
        "sql": {k: v / n for k, v in stmts.most_common(12)},
        "statuses": dict(statuses),
        "outcomes": dict(outcomes),
        # A cached read that went to PostgreSQL shows here why: a miss, or Redis refused.
        "cache": dict(cache_lookups() - lookups),
    }


async def main() -> None:
    pg_host, pg_port, dbname, redis_url, key, n_customers = sys.argv[1:7]
    n_customers_i = int(n_customers)
    wire = Wire()
    proxy = await start_proxy(wire, pg_host, int(pg_port))
    pport = proxy.sockets[0].getsockname()[1]
    dsn = f"postgresql://postgres@127.0.0.1:{pport}/{dbname}"
    os.environ["BENCH_FLOOR_DSN"] = dsn
    sys.path.insert(0, str(ROOT / "bench"))
    sys.path.insert(0, str(ROOT))

    floor = importlib.import_module("floor")  # bench/floor.py, on the path set above
    import httpx
    from sqlalchemy import event

    from app.main import create_app
    from app.settings import Settings

    settings = Settings(database_url=dsn, redis_url=redis_url or None,
                        key_cache_seconds=60, expire_interval_seconds=0, log_level="WARNING")
    app = create_app(settings)
    stmts: Counter[str] = Counter()
    rng = random.Random(7)
    run = f"t{int(time.time()) % 100000}"
    auth = {"Authorization": f"Bearer {key}"}
    cached = [f"C{1000 + i:06d}" for i in range(1, 21)]
    result: dict[str, Any] = {}

    def check_body(i: int, customer: str, **extra: Any) -> dict[str, Any]:
        return {"order_id": f"{run}-{i}-{rng.randrange(10**9)}", "customer_id": customer,
                "amount": f"{rng.randint(10, 999)}.{rng.randint(0, 99):02d}",
                "currency": "EUR", "channel": "erp", **extra}

    def rand_customer() -> str:
        return f"C{rng.randint(1, n_customers_i):06d}"

    async with app.router.lifespan_context(app):
        @event.listens_for(app.state.db.engine.sync_engine, "before_cursor_execute")
        def _count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            stmts[" ".join(statement.split())[:90]] += 1

        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            # The key cache is used only once the revocation listener is up.
            for _ in range(50):
                if getattr(app.state.keys, "_listening", True):
                    break
                await asyncio.sleep(0.1)

            async def check(i: int) -> Any:
                return await client.post("/v1/credit-checks", headers=auth,
                                         json=check_body(i, rand_customer()))

            async def dry(i: int) -> Any:
                return await client.post("/v1/credit-checks", headers=auth,
                                         json=check_body(i, cached[i % 20], dry_run=True))

            async def exposure(i: int) -> Any:
                return await client.get(f"/v1/customers/{cached[i % 20]}/exposure",
                                        headers=auth)

            for i in range(30):
                await check(10_000 + i)
            result["reserve_check"] = await per_request(wire, stmts, 200, check)
            # The cache is read only while this process hears other processes' signals
            # (app/cache.py): on a busy machine the listener can take a while to connect.
            cache = app.state.cache
            for _ in range(100):
                if cache is None or cache.serving:
                    break
                await asyncio.sleep(0.1)
            for i in range(40):
                await dry(10_000 + i)
                await exposure(i)
            result["dry_run_cached"] = await per_request(wire, stmts, 100, dry)
            result["exposure_cached"] = await per_request(wire, stmts, 100, exposure)

    async with floor.lifespan(floor.app):
        transport = httpx.ASGITransport(app=floor.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://floor") as client:
            async def floor_check(i: int) -> Any:
                body = check_body(i, rand_customer())
                return await client.post("/check", json={
                    k: body[k] for k in ("order_id", "customer_id", "amount")})

            for i in range(30):
                await floor_check(10_000 + i)
            result["floor_check"] = await per_request(wire, stmts, 200, floor_check)
    proxy.close()
    print("BENCHTRACE " + json.dumps(result), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
