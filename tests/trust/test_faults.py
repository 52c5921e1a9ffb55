"""Fault promises, against real `creditgate serve` processes with two uvicorn workers.

- Redis stopped (SIGKILL), answering nothing (SIGSTOP) or answering slowly (a proxy that
  holds every reply 200 ms): every decision stays correct, no 5xx, checks are not slowed by
  more than tens of milliseconds, every worker notices within a second (timed) and reads
  nothing from Redis after that, and the cache is used again once Redis answers promptly.
- PostgreSQL unreachable (a TCP proxy in this process that refuses or black-holes): checks
  answer 503 `unavailable` by their deadline and never approve; /readyz 503, /livez 200; the same
  process recovers when PostgreSQL returns.
- A worker SIGKILLed under load: every decision a client received is committed, nothing is
  reserved without its decision, and `creditgate reconcile` finds no drift.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from decimal import Decimal as D
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from app.reconcile import find_drift
from app.settings import Settings
from tests.server import ROOT, _wait_ready, free_port, stop

pytestmark = pytest.mark.slow

PROBLEM = "application/problem+json"
BASE_ENV: dict[str, str] = {}  # the product's defaults
# The promise: while PostgreSQL is down a check answers by its deadline (the default), give or
# take half a second of scheduling on a loaded machine.
CHECK_DEADLINE = Settings().check_timeout_seconds + 0.5


# --------------------------------------------------------------------------------------------
# Helpers: a server with a drained log, a redis-server of our own, a PostgreSQL proxy that
# can fail, the worker processes.
# --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def serve(database_url: str, *, workers: int = 2, env: dict[str, str] | None = None,
          port: int | None = None) -> Iterator[str]:
    """tests.server.serve, but the server's stderr goes to a file instead of a pipe nobody
    reads: a server that logs a traceback per failed request (as this one does while
    PostgreSQL is down) fills a 64 KiB pipe within a second and then blocks on logging."""
    port = port or free_port()
    full_env = {**os.environ, "DATABASE_URL": database_url,
                "CREDITGATE_EXPIRE_INTERVAL_SECONDS": "0", "CREDITGATE_LOG_LEVEL": "WARNING",
                **(env or {})}
    full_env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    with tempfile.NamedTemporaryFile(prefix="creditgate-faults-", suffix=".log",
                                     delete=False) as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--port", str(port), "--workers",
             str(workers)], cwd=ROOT, env=full_env, start_new_session=True,
            stdout=subprocess.DEVNULL, stderr=log)
        base = f"http://127.0.0.1:{port}"
        try:
            _wait_ready(base, proc, log)
            yield base
        finally:
            stop(proc)
    with open(log.name, "rb") as f:
        content = f.read()
    print(f"\n  server log: {len(content)} bytes, "
          f"{content.count(b'Exception in ASGI application')} tracebacks of "
          f"'Exception in ASGI application'")
    if os.environ.get("CREDITGATE_FAULTS_KEEP_LOGS"):
        print(f"  kept at {log.name}")
    else:
        os.unlink(log.name)


class RedisServer:
    """A throwaway redis-server on a spare port that the test can pause, kill and restart."""

    def __init__(self) -> None:
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--daemonize", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(
                    ("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def pause(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGCONT)

    def kill(self) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGCONT)
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.proc = None


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.kill()


class _ThreadedProxy:
    """A TCP proxy's own thread and event loop, so the test's loop and the app's stay free."""

    def __init__(self) -> None:
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._server: asyncio.Server | None = None
        self._transports: set[asyncio.BaseTransport] = set()

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


class SlowRedisProxy(_ThreadedProxy):
    """A TCP proxy to a redis-server, run on its own thread and event loop, that holds every
    reply (every chunk Redis sends) for `delay` seconds before passing it on, in order.
    Commands reach Redis at once: Redis works normally, it only *answers* slowly."""

    def __init__(self, upstream_port: int) -> None:
        super().__init__()
        self.upstream_port = upstream_port
        self.delay = 0.0
        self.delayed = 0  # reply chunks held back so far
        self._call(self._listen())

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1",
                                                                 self.upstream_port)
        except OSError:
            writer.transport.abort()
            return
        ends = (writer.transport, up_writer.transport)
        self._transports.update(ends)
        replies: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()

        def cut() -> None:
            for transport in ends:
                transport.abort()
                self._transports.discard(transport)

        async def commands() -> None:
            try:
                while data := await reader.read(65536):
                    up_writer.write(data)
                    await up_writer.drain()
            except (OSError, RuntimeError):
                pass
            finally:
                cut()

        async def hold_replies() -> None:
            try:
                while data := await up_reader.read(65536):
                    if self.delay > 0:
                        self.delayed += 1
                    replies.put_nowait((self._loop.time() + self.delay, data))
            except (OSError, RuntimeError):
                pass
            finally:
                replies.put_nowait(None)
                cut()

        async def pass_replies() -> None:
            while (item := await replies.get()) is not None:
                due, data = item
                await asyncio.sleep(max(0.0, due - self._loop.time()))
                if writer.transport.is_closing():
                    return
                writer.write(data)

        await asyncio.gather(commands(), hold_replies(), pass_replies())

    async def _set_delay(self, seconds: float) -> None:
        self.delay = seconds

    def set_delay(self, seconds: float) -> None:
        self._call(self._set_delay(seconds))

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for transport in list(self._transports):
            transport.abort()
        self._transports.clear()

    def close(self) -> None:
        self._call(self._close())
        self._stop_loop()


@pytest.fixture
def slow_redis(redis_server: RedisServer) -> Iterator[SlowRedisProxy]:
    proxy = SlowRedisProxy(redis_server.port)
    try:
        yield proxy
    finally:
        proxy.close()


class PgProxy(_ThreadedProxy):
    """A TCP proxy to PostgreSQL, run on its own thread and event loop.

    `refuse()`: every connection is cut and nothing listens on the port (connection refused).
    `hang()`: connections stay open and new ones are accepted, but not a byte moves (a hung
    server, or a network partition); `forward()` afterwards cuts every connection that was
    open during the hang (nothing that was sent into the black hole reaches PostgreSQL) and
    forwards new ones again.
    """

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        super().__init__()
        self.upstream = (upstream_host, upstream_port)
        self.accepted = 0
        self._flowing: asyncio.Event | None = None
        self._call(self._setup())

    async def _setup(self) -> None:
        self._flowing = asyncio.Event()
        self._flowing.set()
        await self._listen()

    async def _listen(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert self._flowing is not None
        self.accepted += 1
        self._transports.add(writer.transport)
        try:
            await self._flowing.wait()
            if writer.transport.is_closing():
                return
            try:
                up_reader, up_writer = await asyncio.open_connection(*self.upstream)
            except OSError:
                writer.transport.abort()
                return
            self._transports.add(up_writer.transport)
            try:
                await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
            finally:
                up_writer.transport.abort()
                self._transports.discard(up_writer.transport)
        finally:
            writer.transport.abort()
            self._transports.discard(writer.transport)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert self._flowing is not None
        try:
            while data := await reader.read(65536):
                await self._flowing.wait()
                if writer.transport.is_closing():
                    break
                writer.write(data)
                await writer.drain()
        except (OSError, RuntimeError):
            pass
        finally:
            writer.transport.abort()

    def _cut_all(self) -> None:
        for transport in list(self._transports):
            transport.abort()
        self._transports.clear()

    async def _refuse(self) -> None:
        assert self._flowing is not None
        if self._server is not None:
            self._server.close()
            self._server = None
        self._cut_all()
        self._flowing.set()

    async def _hang(self) -> None:
        assert self._flowing is not None
        self._flowing.clear()

    async def _forward(self) -> None:
        assert self._flowing is not None
        if not self._flowing.is_set():
            self._cut_all()  # whatever went into the black hole stays there
            self._flowing.set()
        await self._listen()

    def refuse(self) -> None:
        self._call(self._refuse())

    def hang(self) -> None:
        self._call(self._hang())

    def forward(self) -> None:
        self._call(self._forward())

    def close(self) -> None:
        self._call(self._refuse())
        self._stop_loop()


@pytest.fixture
def pg_proxy(database_url: str) -> Iterator[PgProxy]:
    url = make_url(database_url)
    proxy = PgProxy(url.host or "127.0.0.1", url.port or 5432)
    try:
        yield proxy
    finally:
        proxy.close()


def proxied_url(database_url: str, proxy: PgProxy) -> str:
    url = make_url(database_url).set(host="127.0.0.1", port=proxy.port)
    return url.render_as_string(hide_password=False)


def _cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [part.decode(errors="replace") for part in f.read().split(b"\0") if part]
    except OSError:
        return []


def server_pid(port: int) -> int:
    """The supervisor process of the `creditgate serve --port PORT` started by tests.server."""
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        args = _cmdline(int(name))
        if args[1:4] == ["-m", "app.cli", "serve"] and str(port) in args and "--port" in args:
            return int(name)
    raise AssertionError(f"no creditgate serve process on port {port}")


def worker_pids(port: int) -> set[int]:
    """The live uvicorn worker processes (children of the supervisor)."""
    parent = server_pid(port)
    children: set[int] = set()
    for task in os.listdir(f"/proc/{parent}/task"):
        with contextlib.suppress(OSError), open(f"/proc/{parent}/task/{task}/children") as f:
            children.update(int(c) for c in f.read().split())
    return {pid for pid in children if any("spawn_main" in a for a in _cmdline(pid))
            and _state(pid) not in ("Z", "X", "")}


def _state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return ""


def worker_of(response: httpx.Response, server_port: int) -> int | None:
    """The worker process holding the server end of the connection `response` came over."""
    stream = response.extensions.get("network_stream")
    if stream is None:
        return None
    client_port = stream.get_extra_info("client_addr")[1]
    inode = None
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            local, remote = fields[1], fields[2]
            if (int(local.rsplit(":", 1)[1], 16) == server_port
                    and int(remote.rsplit(":", 1)[1], 16) == client_port):
                inode = fields[9]
    if inode is None:
        return None
    target = f"socket:[{inode}]"
    for pid in worker_pids(server_port):
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                        return pid
    return None


async def pinned_clients(base: str, port: int) -> dict[int, httpx.AsyncClient]:
    """One single-connection client per worker: every request of a client reaches its worker
    (as long as the connection is kept alive: uvicorn drops idle ones after 5 s)."""
    workers = worker_pids(port)
    found: dict[int, httpx.AsyncClient] = {}
    for _ in range(60):
        client = httpx.AsyncClient(base_url=base, timeout=10, limits=httpx.Limits(
            max_connections=1, max_keepalive_connections=1))
        pid = worker_of(await client.get("/livez"), port)
        if pid is None or pid in found:
            await client.aclose()
        else:
            found[pid] = client
        if len(found) == len(workers):
            return found
    raise AssertionError(f"could not reach every worker: {workers}, reached {set(found)}")


def metric_sum(metrics_text: str, name: str, **labels: str) -> float:
    total = 0.0
    for match in re.finditer(rf"^{name}(?:\{{([^}}]*)\}})? (\S+)$", metrics_text, re.MULTILINE):
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(match.group(2))
    return total


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


class Client:
    """An HTTP client that records every response (status and time) it saw."""

    def __init__(self, base: str, keys: dict[str, str], **kw: Any) -> None:
        self.http = httpx.AsyncClient(base_url=base, timeout=30, **kw)
        self.keys = keys
        self.seen: list[tuple[str, str, int, float]] = []

    async def call(self, method: str, path: str, role: str | None = "admin",
                   http: httpx.AsyncClient | None = None, **kw: Any) -> tuple[httpx.Response,
                                                                              float]:
        headers = {"Authorization": f"Bearer {self.keys[role]}"} if role else {}
        started = time.perf_counter()
        r = await (http or self.http).request(method, path, headers=headers, **kw)
        elapsed = time.perf_counter() - started
        self.seen.append((method, path, r.status_code, elapsed))
        return r, elapsed

    async def customer(self, customer_id: str, limit: str) -> None:
        r, _ = await self.call("PUT", f"/v1/customers/{customer_id}", json={
            "name": f"Customer {customer_id}", "currency": "EUR", "credit_limit": limit})
        assert r.status_code == 201, r.text

    async def check(self, order_id: str, customer_id: str, amount: str, *,
                    dry_run: bool = False, http: httpx.AsyncClient | None = None
                    ) -> tuple[httpx.Response, float]:
        body: dict[str, Any] = {"order_id": order_id, "customer_id": customer_id,
                                "amount": amount, "currency": "EUR", "channel": "erp"}
        if dry_run:
            body["dry_run"] = True
        return await self.call("POST", "/v1/credit-checks", role="order-entry", json=body,
                               http=http)

    async def exposure(self, customer_id: str, http: httpx.AsyncClient | None = None
                       ) -> tuple[dict[str, Any], float]:
        r, elapsed = await self.call("GET", f"/v1/customers/{customer_id}/exposure", http=http)
        assert r.status_code == 200, r.text
        return r.json(), elapsed

    async def metrics(self) -> str:
        r, _ = await self.call("GET", "/metrics", role=None)
        assert r.status_code == 200
        return r.text

    def server_errors(self) -> list[tuple[str, str, int, float]]:
        return [s for s in self.seen if s[2] >= 500]

    async def aclose(self) -> None:
        await self.http.aclose()


# --------------------------------------------------------------------------------------------
# Redis stopped or slow
# --------------------------------------------------------------------------------------------

AMOUNT = D("100")
APPROVALS = 15  # limit = 15 x amount: exactly 15 approvals, then holds (within the band)
STEPS = 20


async def _decide_series(client: Client, customer_id: str, gap: float = 0.0
                         ) -> dict[str, list[float]]:
    """STEPS checks of AMOUNT on a fresh customer with room for APPROVALS of them; after each,
    an exposure read and a dry run, all checked against what PostgreSQL must say. `gap`
    seconds between steps spread the series over several circuit cooldowns."""
    await client.customer(customer_id, str(AMOUNT * APPROVALS))
    times: dict[str, list[float]] = {"check": [], "exposure": [], "dry_run": []}
    for i in range(STEPS):
        if i and gap:
            await asyncio.sleep(gap)
        r, elapsed = await client.check(f"{customer_id}-{i}", customer_id, str(AMOUNT))
        assert r.status_code == 201, r.text
        expected = "approve" if i < APPROVALS else "hold"
        assert r.json()["outcome"] == expected, (customer_id, i, r.json())
        times["check"].append(elapsed)
        approved = min(i + 1, APPROVALS)
        held = max(0, i + 1 - APPROVALS)
        body, elapsed = await client.exposure(customer_id)
        assert (D(body["open_orders"]), body["held_count"]) == (AMOUNT * approved, held), body
        times["exposure"].append(elapsed)
        r, elapsed = await client.check(f"{customer_id}-dry-{i}", customer_id, str(AMOUNT),
                                        dry_run=True)
        assert r.status_code == 200, r.text
        assert r.json()["outcome"] == ("approve" if approved < APPROVALS else "hold"), r.json()
        times["dry_run"].append(elapsed)
    return times


def _summary(times: dict[str, list[float]]) -> str:
    return ", ".join(f"{kind} median {ms(statistics.median(v))} p90 {ms(percentile(v, 0.9))} "
                     f"max {ms(max(v))}" for kind, v in times.items())


def _assert_not_slower(phase: str, times: dict[str, list[float]],
                       baseline: dict[str, list[float]]) -> None:
    """A dead or stalled cache costs at most tens of milliseconds (100 ms allowed, for noise)."""
    for kind, values in times.items():
        base = baseline[kind]
        assert statistics.median(values) <= statistics.median(base) + 0.1, (phase, kind,
                                                                             values, base)
        assert percentile(values, 0.9) <= percentile(base, 0.9) + 0.1, (phase, kind, values,
                                                                        base)


async def _readyz_cache(client: Client) -> str:
    r, _ = await client.call("GET", "/readyz", role=None)
    assert r.status_code == 200, r.text
    return str(r.json()["checks"]["cache"])


async def _wait_for_hits(client: Client, customer_id: str, limit: float = 5.0) -> float:
    """Read until the (all-workers) hit counter grows; the seconds that took."""
    before = metric_sum(await client.metrics(), "creditgate_cache_requests_total", result="hit")
    started = time.monotonic()
    while time.monotonic() - started < limit:
        for _ in range(4):  # reach both workers
            await client.exposure(customer_id)
        hits = metric_sum(await client.metrics(), "creditgate_cache_requests_total",
                          result="hit")
        if hits > before:
            return time.monotonic() - started
        await asyncio.sleep(0.1)
    raise AssertionError(f"no cache hit within {limit} s after Redis returned")


async def _assert_approvals_stored(db: Any, customers: tuple[str, ...]) -> None:
    """Each series approved exactly APPROVALS orders, and no aggregate drifted."""
    async with db.autocommit() as conn:
        approved = dict((await conn.execute(text(
            "SELECT customer_id, count(*) FROM orders WHERE status = 'approved' "
            "GROUP BY customer_id"))).all())
        assert await find_drift(conn) == []
    assert approved == {c: APPROVALS for c in customers}


@contextlib.contextmanager
def _served_with_redis(database_url: str, redis_url: str) -> Iterator[tuple[str, int]]:
    port = free_port()
    env = {**BASE_ENV, "REDIS_URL": redis_url,
           "CREDITGATE_CACHE_NAMESPACE": f"faults{secrets.token_hex(4)}"}
    with serve(database_url, workers=2, env=env, port=port) as base:
        yield base, port


@pytest.fixture
async def redis_served(database_url, keys, clean_db, redis_server
                       ) -> AsyncIterator[tuple[str, int]]:
    with _served_with_redis(database_url, redis_server.url) as served:
        yield served


async def test_redis_paused_or_killed_never_changes_a_decision(redis_served, redis_server, keys,
                                                               db):
    base, _port = redis_served
    started = time.perf_counter()
    client = Client(base, keys)
    try:
        assert await _readyz_cache(client) == "up"
        # Baseline with a working cache: the first reads of each customer miss, the rest hit.
        baseline = await _decide_series(client, "R-BASE")
        hits = metric_sum(await client.metrics(), "creditgate_cache_requests_total",
                          result="hit")
        assert hits > 0, "the cache is in use while Redis is up"

        # Redis answers nothing (SIGSTOP): PostgreSQL alone, no slower than tens of ms.
        redis_server.pause()
        errors_before = metric_sum(await client.metrics(), "creditgate_cache_requests_total",
                                   result="error")
        paused = await _decide_series(client, "R-PAUSE")
        assert await _readyz_cache(client) == "down"
        errors = metric_sum(await client.metrics(), "creditgate_cache_requests_total",
                            result="error") - errors_before
        assert errors > 0, "the service noticed that Redis does not answer"
        _assert_not_slower("paused", paused, baseline)

        # Redis answers again: the cache is picked up within a couple of seconds, and nothing
        # read from it is stale.
        redis_server.resume()
        to_hit_after_pause = await _wait_for_hits(client, "R-PAUSE")
        assert to_hit_after_pause <= 3.0
        for customer_id in ("R-BASE", "R-PAUSE"):
            body, _ = await client.exposure(customer_id)
            assert D(body["open_orders"]) == AMOUNT * APPROVALS, body

        # Redis dies (SIGKILL, connection refused): same.
        redis_server.kill()
        killed = await _decide_series(client, "R-DEAD")
        assert await _readyz_cache(client) == "down"
        _assert_not_slower("killed", killed, baseline)

        # A new, empty Redis on the same port.
        redis_server.start()
        to_hit_after_restart = await _wait_for_hits(client, "R-DEAD")
        assert to_hit_after_restart <= 3.0
        assert await _readyz_cache(client) == "up"
        again = await _decide_series(client, "R-AGAIN")
        for customer_id in ("R-BASE", "R-PAUSE", "R-DEAD", "R-AGAIN"):
            body, _ = await client.exposure(customer_id)
            assert D(body["open_orders"]) == AMOUNT * APPROVALS, body
            assert body["held_count"] == STEPS - APPROVALS, body

        assert client.server_errors() == []
    finally:
        await client.aclose()
    await _assert_approvals_stored(db, ("R-BASE", "R-PAUSE", "R-DEAD", "R-AGAIN"))
    print(f"\nredis faults ({time.perf_counter() - started:.1f} s, {len(client.seen)} requests)"
          f"\n  baseline: {_summary(baseline)}\n  paused:   {_summary(paused)}"
          f"\n  killed:   {_summary(killed)}\n  back:     {_summary(again)}"
          f"\n  first cache hit {to_hit_after_pause:.2f} s after SIGCONT, "
          f"{to_hit_after_restart:.2f} s after restart")


async def test_a_brief_redis_stall_leaves_no_stale_reads_on_other_workers(
        redis_served, redis_server, keys):
    """Redis stalls for less than the circuit's second while one worker commits changes:
    afterwards, no worker may answer from a cache entry those changes made stale."""
    base, port = redis_served
    client = Client(base, keys)
    pinned = await pinned_clients(base, port)
    (writer_pid, writer), (reader_pid, reader) = sorted(pinned.items())
    try:
        await client.customer("S-OTHER", "1000")
        await client.customer("S", "1000")
        for _ in range(2):  # the reader worker caches S's state: nothing reserved
            body, _ = await client.exposure("S", http=reader)
            assert body["open_orders"] == "0.00"

        redis_server.pause()
        # The writer's first invalidation times out and opens its circuit; the second, for S,
        # is skipped while the circuit is open.
        r, _ = await client.check("S-OTHER-1", "S-OTHER", "100", http=writer)
        assert r.status_code == 201 and r.json()["outcome"] == "approve"
        r, _ = await client.check("S-1", "S", "600", http=writer)
        assert r.status_code == 201 and r.json()["outcome"] == "approve"
        assert worker_of(r, port) == writer_pid
        redis_server.resume()
        await asyncio.sleep(1.2)  # every circuit is closed again

        body, _ = await client.exposure("S", http=reader)
        r, _ = await client.check("S-2", "S", "600", dry_run=True, http=reader)
        assert worker_of(r, port) == reader_pid
        stale = (body["open_orders"], r.json()["outcome"])
        print(f"\nafter a brief stall, worker {reader_pid} reads S as open_orders="
              f"{stale[0]}, dry run of 600 -> {stale[1]} (truth: 600.00, hold)")
        assert body["open_orders"] == "600.00", (
            "a worker answered from a cache entry made stale while Redis stalled", body)
        assert r.json()["outcome"] == "hold", r.json()
        assert client.server_errors() == []
    finally:
        for http in pinned.values():
            await http.aclose()
        await client.aclose()


SLOW_REPLY = 0.2  # seconds a slow Redis takes to answer: four times the app's 50 ms timeout
NOTICE_WITHIN = 1.0  # the promise: a stopped Redis is noticed within a second
SLOW_SERIES = 3.0  # seconds the checks and reads against a slow Redis are spread over


def _cache_counts(metrics_text: str) -> dict[str, float]:
    return {result: metric_sum(metrics_text, "creditgate_cache_requests_total", result=result)
            for result in ("hit", "miss", "error")}


def _delta(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    return {k: after[k] - before[k] for k in after}


@pytest.fixture
async def slow_redis_served(database_url, keys, clean_db, slow_redis
                            ) -> AsyncIterator[tuple[str, int]]:
    with _served_with_redis(database_url, slow_redis.url) as served:
        yield served


async def test_redis_answering_slowly_never_changes_a_decision(slow_redis_served, slow_redis,
                                                               keys, db):
    """Redis works but every reply takes SLOW_REPLY: the service gives up on each call after
    its short timeout, answers from PostgreSQL alone, exactly and no slower than tens of ms,
    and uses the cache again as soon as Redis answers promptly."""
    base, port = slow_redis_served
    started = time.perf_counter()
    client = Client(base, keys)
    try:
        assert await _readyz_cache(client) == "up"
        baseline = await _decide_series(client, "SL-BASE")  # SL-BASE is cached now
        assert _cache_counts(await client.metrics())["hit"] > 0

        slow_redis.set_delay(SLOW_REPLY)
        before = _cache_counts(await client.metrics())
        # On each worker: a read that waits for Redis in vain (opening the worker's circuit),
        # then a hold for SL-BASE whose invalidation cannot reach Redis.
        pinned = await pinned_clients(base, port)
        try:
            for n, http in enumerate(pinned.values()):
                body, _ = await client.exposure("SL-BASE", http=http)
                assert body["held_count"] == STEPS - APPROVALS + n, body
                r, _ = await client.check(f"SL-BASE-late-{n}", "SL-BASE", str(AMOUNT),
                                          http=http)
                assert r.status_code == 201 and r.json()["outcome"] == "hold", r.text
        finally:
            for http in pinned.values():
                await http.aclose()
        # Spread over three seconds: every worker's circuit closes again and again, and each
        # time the next call waits out its timeout in vain.
        slow_started = time.monotonic()
        slow = await _decide_series(client, "SL-SLOW", gap=SLOW_SERIES / STEPS)
        slow_took = time.monotonic() - slow_started
        assert await _readyz_cache(client) == "down"
        during = _delta(_cache_counts(await client.metrics()), before)
        # Both workers' first reads above, and again once a circuit closed (after 1 s).
        assert during["error"] >= 3, ("Redis was tried again after a cooldown", during)
        # No reply came within the timeout, so nothing was read from the cache: PostgreSQL
        # alone answered every read.
        assert during["hit"] == during["miss"] == 0, during
        assert slow_redis.delayed > 0, "the app tried Redis through the slow proxy"
        _assert_not_slower("slow", slow, baseline)

        # Redis answers promptly again: the cache is used within a couple of seconds (the
        # circuit stays open for 1 s after the last error), and nothing read from it is stale.
        slow_redis.set_delay(0)
        to_hit = await _wait_for_hits(client, "SL-SLOW")
        assert to_hit <= 3.0, to_hit
        assert await _readyz_cache(client) == "up"
        pinned = await pinned_clients(base, port)
        try:
            for http in pinned.values():
                for _ in range(2):  # the second read is served from the cache
                    body, _ = await client.exposure("SL-BASE", http=http)
                    assert (D(body["open_orders"]), body["held_count"]) == (
                        AMOUNT * APPROVALS, STEPS - APPROVALS + 2), body
                    body, _ = await client.exposure("SL-SLOW", http=http)
                    assert (D(body["open_orders"]), body["held_count"]) == (
                        AMOUNT * APPROVALS, STEPS - APPROVALS), body
                r, _ = await client.check("SL-BASE-dry", "SL-BASE", str(AMOUNT), dry_run=True,
                                          http=http)
                assert r.status_code == 200 and r.json()["outcome"] == "hold", r.text
        finally:
            for http in pinned.values():
                await http.aclose()
        hits_before_back = _cache_counts(await client.metrics())["hit"]
        back = await _decide_series(client, "SL-BACK")
        assert _cache_counts(await client.metrics())["hit"] > hits_before_back
        assert client.server_errors() == []
    finally:
        await client.aclose()
    await _assert_approvals_stored(db, ("SL-BASE", "SL-SLOW", "SL-BACK"))
    print(f"\nslow redis, replies held {ms(SLOW_REPLY)} ({time.perf_counter() - started:.1f} s, "
          f"{len(client.seen)} requests, {slow_redis.delayed} replies held, slow series "
          f"{slow_took:.1f} s)"
          f"\n  baseline: {_summary(baseline)}\n  slow:     {_summary(slow)}"
          f"\n  back:     {_summary(back)}"
          f"\n  cache while slow: {during['error']:.0f} errors, {during['hit']:.0f} hits, "
          f"{during['miss']:.0f} misses; first hit {to_hit:.2f} s after the delay was removed")


async def _time_to_notice(client: Client, pinned: dict[int, httpx.AsyncClient],
                          fault: Callable[[], None]) -> dict[str, Any]:
    """Reads and /readyz flow to every worker without pause while `fault` stops Redis: how
    soon after it the workers count a cache error and /readyz says the cache is down, and
    whether anything is still read from the cache after that."""
    stop = asyncio.Event()
    t0: list[float] = []
    down_at: dict[int, float] = {}
    all_down = asyncio.Event()
    read_times: list[float] = []

    async def traffic(pid: int, http: httpx.AsyncClient) -> None:
        while not stop.is_set():
            body, elapsed = await client.exposure("N", http=http)
            assert body["open_orders"] == "0.00", body
            if t0:
                read_times.append(elapsed)
            r, _ = await client.call("GET", "/readyz", role=None, http=http)
            assert r.status_code == 200, r.text
            cache = r.json()["checks"]["cache"]
            if not t0:
                assert cache == "up", (pid, r.json())
            elif cache == "down":
                down_at.setdefault(pid, time.monotonic() - t0[0])
                if len(down_at) == len(pinned):
                    all_down.set()

    async def observe() -> dict[str, Any]:
        try:
            await asyncio.sleep(0.3)  # traffic is flowing, Redis is in use
            before = _cache_counts(await client.metrics())
            t0.append(time.monotonic())
            fault()
            errors_at = None
            while time.monotonic() - t0[0] < 3.0:
                now = _cache_counts(await client.metrics())
                if now["error"] - before["error"] >= len(pinned):
                    errors_at = time.monotonic() - t0[0]
                    break
                await asyncio.sleep(0.005)
            assert errors_at is not None, ("no cache error counted within 3 s", now, before)
            noticed = now
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(all_down.wait(), 3.0)
            # Past one circuit cooldown: each worker tried Redis again and failed again.
            await asyncio.sleep(max(0.0, 1.8 - (time.monotonic() - t0[0])))
            after = _cache_counts(await client.metrics())
            return {"errors_at": errors_at, "down_at": dict(down_at),
                    "after_notice": _delta(after, noticed)}
        finally:
            stop.set()

    results = await asyncio.gather(observe(), *(traffic(p, h) for p, h in pinned.items()))
    return {**results[0], "reads": len(read_times), "read_median": statistics.median(read_times),
            "read_max": max(read_times)}


async def test_a_stopped_redis_is_noticed_within_a_second(redis_served, redis_server, keys):
    """Measured, not assumed: with requests flowing, every worker counts a cache error and
    reports the cache down within NOTICE_WITHIN of Redis being paused (SIGSTOP: no answer)
    or killed (SIGKILL: connection refused), and reads nothing from it afterwards."""
    base, port = redis_served
    started = time.perf_counter()
    client = Client(base, keys)
    runs: dict[str, dict[str, Any]] = {}
    try:
        await client.customer("N", "1000")
        await _wait_for_hits(client, "N")
        for name, fault, repair in (("paused", redis_server.pause, redis_server.resume),
                                    ("killed", redis_server.kill, redis_server.start)):
            pinned = await pinned_clients(base, port)
            try:
                run = await _time_to_notice(client, pinned, fault)
            finally:
                for http in pinned.values():
                    await http.aclose()
            repair()
            run["to_hit"] = await _wait_for_hits(client, "N")
            runs[name] = run
            assert run["errors_at"] <= NOTICE_WITHIN, (name, run)
            assert set(run["down_at"]) == set(pinned), (name, run)
            assert max(run["down_at"].values()) <= NOTICE_WITHIN, (name, run)
            assert run["after_notice"]["hit"] == run["after_notice"]["miss"] == 0, (name, run)
            assert run["after_notice"]["error"] >= 1, (name, run)  # tried again, still down
            assert run["to_hit"] <= 3.0, (name, run)
        assert client.server_errors() == []
    finally:
        await client.aclose()
    print(f"\nnoticing a stopped redis ({time.perf_counter() - started:.1f} s)")
    for name, run in runs.items():
        print(f"  {name}: first errors of both workers counted {ms(run['errors_at'])} after "
              f"the fault, /readyz cache down after "
              f"{', '.join(ms(t) for t in sorted(run['down_at'].values()))}; "
              f"{run['reads']} reads meanwhile, median {ms(run['read_median'])}, max "
              f"{ms(run['read_max'])}; after noticing: {run['after_notice']}; first hit "
              f"{run['to_hit']:.2f} s after Redis returned")


# --------------------------------------------------------------------------------------------
# PostgreSQL unreachable
# --------------------------------------------------------------------------------------------


OUTAGE_TIMEOUT = 5.0  # how long the test waits for any one answer while PostgreSQL is away


@pytest.fixture
async def pg_served(database_url, keys, clean_db, pg_proxy) -> AsyncIterator[str]:
    with serve(proxied_url(database_url, pg_proxy), workers=2, env=BASE_ENV) as base:
        yield base


async def _attempt(client: Client, method: str, path: str, **kw: Any
                   ) -> tuple[httpx.Response | None, float, str]:
    """One request that may get no answer: (response or None, seconds, what went wrong)."""
    started = time.perf_counter()
    try:
        r, elapsed = await client.call(method, path, timeout=OUTAGE_TIMEOUT, **kw)
    except httpx.TimeoutException:
        return None, time.perf_counter() - started, f"no answer within {OUTAGE_TIMEOUT:g} s"
    except httpx.TransportError as exc:
        return None, time.perf_counter() - started, f"connection lost ({type(exc).__name__})"
    return r, elapsed, ""


def _check_body(order_id: str) -> dict[str, Any]:
    return {"order_id": order_id, "customer_id": "PG", "amount": "100", "currency": "EUR",
            "channel": "erp"}


def _unavailable_problem(r: httpx.Response | None, elapsed: float, error: str) -> str:
    """'' if this is the promised answer: 503 problem+json `unavailable` by the deadline."""
    if r is None:
        return f"{error} after {elapsed:.2f} s"
    if r.status_code == 201 and r.json().get("outcome") == "approve":
        return f"APPROVED while PostgreSQL is down after {elapsed:.2f} s"
    if (r.status_code != 503 or not r.headers.get("content-type", "").startswith(PROBLEM)
            or r.json().get("code") != "unavailable"):
        return f"{r.status_code} {r.text[:160]!r} after {elapsed:.2f} s"
    if elapsed >= CHECK_DEADLINE:
        return f"503 only after {elapsed:.2f} s"
    return ""


async def _outage(client: Client, tag: str, seconds: float) -> dict[str, Any]:
    """Checks (four at a time), /readyz and /livez for `seconds` while PostgreSQL is away."""
    failed: list[str] = []
    check_times: list[float] = []
    ready_times: list[float] = []
    live_times: list[float] = []
    problems: list[str] = []
    started = time.monotonic()
    n = 0
    while time.monotonic() - started < seconds:
        order_ids = [f"{tag}-{n + i}" for i in range(4)]
        n += 4
        at = time.monotonic() - started
        results = await asyncio.gather(
            *(_attempt(client, "POST", "/v1/credit-checks", role="order-entry",
                       json=_check_body(o)) for o in order_ids),
            _attempt(client, "GET", "/readyz", role=None),
            _attempt(client, "GET", "/livez", role=None))
        for order_id, (r, elapsed, error) in zip(order_ids, results[:4], strict=True):
            failed.append(order_id)
            check_times.append(elapsed)
            if problem := _unavailable_problem(r, elapsed, error):
                problems.append(f"+{at:4.1f} s check {order_id}: {problem}")
        ready, ready_elapsed, error = results[4]
        ready_times.append(ready_elapsed)
        if ready is None or ready.status_code != 503:
            problems.append(f"+{at:4.1f} s /readyz: {ready.status_code if ready else error}")
        live, live_elapsed, error = results[5]
        live_times.append(live_elapsed)
        if live is None or live.status_code != 200:
            problems.append(f"+{at:4.1f} s /livez: {live.status_code if live else error}")
    return {"failed": failed, "check_times": check_times, "ready_times": ready_times,
            "live_times": live_times, "problems": problems}


async def _recover(client: Client, tag: str, limit: float = 15.0
                   ) -> tuple[float, int, list[str]]:
    """Poll until a check is decided again: the seconds, the 503s on the way, and any answer
    that was not a proper 503."""
    started = time.monotonic()
    unavailable = 0
    problems: list[str] = []
    n = 0
    while time.monotonic() - started < limit:
        order_id = f"{tag}-{n}"
        n += 1
        r, elapsed, error = await _attempt(client, "POST", "/v1/credit-checks",
                                           role="order-entry", json=_check_body(order_id))
        if r is not None and r.status_code == 201:
            return time.monotonic() - started, unavailable, problems
        if problem := _unavailable_problem(r, elapsed, error):
            problems.append(f"recovery check {order_id}: {problem}")
        else:
            unavailable += 1
        await asyncio.sleep(0.1)
    raise AssertionError(f"no decision within {limit} s after PostgreSQL returned: {problems}")


async def _after_recovery(client: Client, db, failed: list[str]) -> list[str]:
    """Nothing was recorded for the checks answered while PostgreSQL was away; retried now,
    each gets a fresh decision; no stale pooled connection surfaces later. The problems."""
    problems: list[str] = []
    async with db.autocommit() as conn:
        stored = (await conn.execute(text("SELECT order_id FROM orders WHERE order_id = ANY(:o)"),
                                     {"o": failed})).scalars().all()
    if stored:
        problems.append(f"orders recorded for checks that got no decision: {stored}")
    for chunk in range(0, len(failed), 8):
        results = await asyncio.gather(*(
            _attempt(client, "POST", "/v1/credit-checks", role="order-entry",
                     json=_check_body(o)) for o in failed[chunk:chunk + 8]))
        for order_id, (r, elapsed, error) in zip(failed[chunk:chunk + 8], results, strict=True):
            if r is None:
                problems.append(f"retry of {order_id} after recovery: {error} after "
                                f"{elapsed:.2f} s")
            elif r.status_code != 201 or r.json()["outcome"] != "approve":
                problems.append(f"retry of {order_id} after recovery: {r.status_code} "
                                f"{r.text[:160]!r}")
    r, _, error = await _attempt(client, "GET", "/readyz", role=None)
    if r is None or r.status_code != 200:
        problems.append(f"/readyz after recovery: {r.status_code if r else error}")
    return problems


async def _pg_outage_test(client: Client, proxy: PgProxy, db, mode: str,
                          seconds: float) -> dict[str, Any]:
    await client.customer("PG", "1000000")
    # Steady state before the outage: both workers know the key and hold pooled connections.
    warm = await asyncio.gather(*(client.check(f"warm-{i}", "PG", "100") for i in range(24)))
    assert [r.status_code for r, _ in warm] == [201] * 24
    if mode == "refuse":
        proxy.refuse()
    else:
        proxy.hang()
    outage = await _outage(client, mode, seconds)
    proxy.forward()
    recovered, unavailable, late = await _recover(client, f"{mode}-recovery")
    after = await _after_recovery(client, db, outage["failed"])
    metrics = await client.metrics()
    run = {**outage, "recovered": recovered, "unavailable_after": unavailable,
           "counted_500": metric_sum(metrics, "creditgate_http_requests_total",
                                     route="/v1/credit-checks", status="500"),
           "counted_503": metric_sum(metrics, "creditgate_http_requests_total",
                                     route="/v1/credit-checks", status="503"),
           "problems": outage["problems"] + late + after}
    _report_outage(mode, run)
    async with db.autocommit() as conn:
        assert await find_drift(conn) == []
    assert run["problems"] == [], "\n".join(run["problems"])
    assert recovered <= 5.0, f"recovered only after {recovered:.1f} s"
    assert [s for s in client.server_errors() if s[2] != 503] == []
    return run


def _report_outage(mode: str, run: dict[str, Any]) -> None:
    times = run["check_times"]
    print(f"\npostgres {mode}: {len(times)} checks while down, answered after median "
          f"{ms(statistics.median(times))}, max {ms(max(times))} "
          f"({sum(t >= CHECK_DEADLINE for t in times)} at or over {CHECK_DEADLINE:g} s); "
          f"/readyz max "
          f"{ms(max(run['ready_times']))}; /livez max {ms(max(run['live_times']))}; "
          f"first decision {run['recovered']:.2f} s after PostgreSQL returned "
          f"({run['unavailable_after']} more 503s); /metrics counted checks as 500: "
          f"{run['counted_500']:.0f}, as 503: {run['counted_503']:.0f}")
    for problem in run["problems"]:
        print(f"  {problem}")


async def test_postgres_refusing_connections(pg_served, pg_proxy, keys, db):
    started = time.perf_counter()
    client = Client(pg_served, keys)
    try:
        await _pg_outage_test(client, pg_proxy, db, "refuse", 4.0)
    finally:
        await client.aclose()
        print(f"  ({time.perf_counter() - started:.1f} s)")


async def test_postgres_hanging(pg_served, pg_proxy, keys, db):
    # Long enough for the key-revocation listener to notice (its probe waits up to 2 x 5 s).
    started = time.perf_counter()
    client = Client(pg_served, keys)
    try:
        await _pg_outage_test(client, pg_proxy, db, "hang", 13.0)
    finally:
        await client.aclose()
        print(f"  ({time.perf_counter() - started:.1f} s)")


# --------------------------------------------------------------------------------------------
# A worker killed mid-load
# --------------------------------------------------------------------------------------------

KILL_CUSTOMERS = ("K1", "K2", "K3")
KILL_LIMIT = D("6000")  # 60 approvals of 100 each, then holds
KILL_ORDERS = 300


@pytest.fixture
async def killable(database_url, keys, clean_db) -> AsyncIterator[tuple[str, int]]:
    port = free_port()
    with serve(database_url, workers=2, env=BASE_ENV, port=port) as base:
        yield base, port


async def test_worker_sigkill_mid_load_loses_no_decision(killable, keys, db, database_url):
    base, port = killable
    started = time.perf_counter()
    client = Client(base, keys, limits=httpx.Limits(max_connections=40))
    try:
        for customer_id in KILL_CUSTOMERS:
            await client.customer(customer_id, str(KILL_LIMIT))
        workers = worker_pids(port)
        assert len(workers) == 2, workers
        victim = min(workers)

        orders = [(f"KO-{i}", KILL_CUSTOMERS[i % 3]) for i in range(KILL_ORDERS)]
        queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        for order in orders:
            queue.put_nowait(order)
        received: dict[str, httpx.Response] = {}
        aborted: dict[str, str] = {}
        other: dict[str, httpx.Response] = {}
        done = asyncio.Event()
        killed_at: list[int] = []
        kill_time: list[float] = []

        async def worker() -> None:
            while not queue.empty():
                order_id, customer_id = queue.get_nowait()
                try:
                    r, _ = await client.check(order_id, customer_id, "100")
                except httpx.TransportError as exc:
                    aborted[order_id] = type(exc).__name__
                    continue
                (received if r.status_code in (200, 201) else other)[order_id] = r
                if len(received) + len(aborted) >= KILL_ORDERS // 3:
                    done.set()

        async def killer() -> None:
            await done.wait()
            os.kill(victim, signal.SIGKILL)
            killed_at.append(len(received) + len(aborted))
            kill_time.append(time.monotonic())

        load_started = time.perf_counter()
        await asyncio.gather(killer(), *(worker() for _ in range(20)))
        load_time = time.perf_counter() - load_started
        assert killed_at, "the worker was killed mid-load"
        assert other == {}, {o: (r.status_code, r.text[:200]) for o, r in other.items()}

        # uvicorn's supervisor replaces the dead worker.
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            now = worker_pids(port)
            if victim not in now and len(now) == 2:
                break
            await asyncio.sleep(0.2)
        replaced = worker_pids(port)
        replaced_after = time.monotonic() - kill_time[0]
        assert victim not in replaced and len(replaced) == 2, (victim, replaced)

        # Aborted requests retried with the same order_id: the committed decision, or a new one.
        replays = fresh = 0
        for order_id, customer_id in orders:
            if order_id in aborted:
                r, _ = await client.check(order_id, customer_id, "100")
                assert r.status_code in (200, 201), r.text
                if r.status_code == 200:
                    assert r.headers.get("idempotent-replayed") == "true"
                    replays += 1
                else:
                    fresh += 1
                received[order_id] = r
        assert client.server_errors() == [], client.server_errors()
    finally:
        await client.aclose()

    async with db.autocommit() as conn:
        stored = {row.order_id: row for row in await conn.execute(text(
            "SELECT order_id, customer_id, status, reserved, entry_decision_id FROM orders "
            "WHERE order_id LIKE 'KO-%'"))}
        entries: dict[str, list[Any]] = {}
        for row in await conn.execute(text(
                "SELECT order_id, entry_id, outcome FROM credit_file "
                "WHERE event = 'credit_check' AND order_id LIKE 'KO-%'")):
            entries.setdefault(row.order_id, []).append(row)
        orphans = (await conn.execute(text(
            "SELECT o.order_id FROM orders o LEFT JOIN credit_file f "
            "ON f.customer_id = o.customer_id AND f.entry_id = o.entry_decision_id "
            "WHERE o.reserved > 0 AND f.entry_id IS NULL"))).scalars().all()
        reserved = dict((await conn.execute(text(
            "SELECT customer_id, sum(reserved) FROM orders GROUP BY customer_id"))).all())
        drift = await find_drift(conn)

    # Every decision a client received is committed, as it was received; one decision each.
    assert set(received) == {o for o, _ in orders}
    for order_id, r in received.items():
        decision = r.json()
        row = stored.get(order_id)
        assert row is not None, f"{order_id} was answered {decision['outcome']} but not stored"
        assert row.entry_decision_id == decision["decision_id"], (order_id, decision)
        found = entries.get(order_id, [])
        assert [(e.entry_id, e.outcome) for e in found] == [
            (decision["decision_id"], decision["outcome"])], (order_id, found)
    assert orphans == []
    assert reserved == {c: KILL_LIMIT for c in KILL_CUSTOMERS}
    outcomes = [r.json()["outcome"] for r in received.values()]
    assert outcomes.count("approve") == 3 * int(KILL_LIMIT / 100)
    assert drift == []

    env = {**os.environ, "DATABASE_URL": database_url}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app.cli", "reconcile", cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    assert proc.returncode == 0, (out.decode(), err.decode())
    print(f"\nworker SIGKILL ({time.perf_counter() - started:.1f} s): {KILL_ORDERS} checks "
          f"from 20 clients in {load_time:.1f} s; worker {victim} killed after "
          f"{killed_at[0]} answers; {len(aborted)} requests cut off "
          f"({replays} replayed, {fresh} decided afresh on retry); replaced by "
          f"{sorted(replaced - workers)} (seen {replaced_after:.1f} s after the kill); "
          f"reconcile: {out.decode().strip()}")
