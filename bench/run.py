"""`make bench`: seed, serve as in production, drive with wrk, print ratios, write RESULTS.md.

Every figure is a ratio against a base measured in the same run on the same machine:
reserving checks against the floor (bench/floor.py), cached reads against the same server's
/livez, 10,000-item customers against 10-item customers, the hot customer against random
customers. Absolute requests/s are printed too but mean little on a shared 2-core machine.

Environment knobs (defaults in brackets): BENCH_PG [postgresql://postgres@127.0.0.1:5432],
BENCH_DB [creditgate_bench], BENCH_REDIS [redis://127.0.0.1:6379/14; "" for none],
BENCH_CUSTOMERS [100000], BENCH_DURATION [8] s at BENCH_CONNECTIONS [32],
BENCH_LAT_DURATION [8] s at BENCH_LAT_CONNECTIONS [8], BENCH_THREADS [2], BENCH_ROUNDS [3],
BENCH_WORKERS [2], BENCH_STATS_WAIT [11] s (PostgreSQL flushes idle backends' counters after
10 s), BENCH_RESULTS [bench/RESULTS.md; "" to skip writing].
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
BIN = Path(sys.executable).parent
sys.path.insert(0, str(BENCH))

import seed as seeding  # noqa: E402  (bench/seed.py)
from procstat import TICK, marked_json, proc_cpu  # noqa: E402  (bench/procstat.py)

PG = os.environ.get("BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
DB = os.environ.get("BENCH_DB", "creditgate_bench")
REDIS_URL = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/14")
CUSTOMERS = int(os.environ.get("BENCH_CUSTOMERS", "100000"))
DURATION = int(os.environ.get("BENCH_DURATION", "8"))
LAT_DURATION = int(os.environ.get("BENCH_LAT_DURATION", "8"))
CONNS = int(os.environ.get("BENCH_CONNECTIONS", "32"))
LAT_CONNS = int(os.environ.get("BENCH_LAT_CONNECTIONS", "8"))
THREADS = int(os.environ.get("BENCH_THREADS", "2"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))
STATS_WAIT = float(os.environ.get("BENCH_STATS_WAIT", "11"))
RESULTS = os.environ.get("BENCH_RESULTS", str(BENCH / "RESULTS.md"))
BEGIN, END = "<!-- bench:begin (written by bench/run.py) -->", "<!-- bench:end -->"


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- scenarios ------------------------------------------------------------------------------

@dataclass
class Scenario:
    key: str
    title: str
    server: str          # "app" or "floor"
    script: str
    args: list[str]      # "{prefix}" is replaced by a unique prefix per run
    base: str | None = None   # the scenario this one is a ratio of
    also: str | None = None   # a second base, reported beside the first
    target: float | None = None
    aim: float | None = None
    sat: list[dict[str, Any]] = field(default_factory=list)
    lat: dict[str, Any] | None = None
    xacts: float | None = None
    cpus: list[dict[str, float]] = field(default_factory=list)

    @property
    def cpu(self) -> dict[str, float]:
        """CPU accounting averaged over the rounds."""
        if not self.cpus:
            return {}
        return {k: statistics.mean(c[k] for c in self.cpus) for k in self.cpus[0]}

    @property
    def cost_ms(self) -> float:
        """Server + PostgreSQL CPU per request: what the request costs the machine."""
        c = self.cpu
        return c.get("server_ms", 0.0) + c.get("pg_ms", 0.0)
    rollbacks: float | None = None


def scenarios(key: str) -> list[Scenario]:
    rand = f"random:{CUSTOMERS}"
    cached = "list:" + ",".join(seeding.CACHED)
    return [
        Scenario("floor", "floor: UPDATE…RETURNING + INSERT, raw asyncpg (random customers)",
                 "floor", "floor.lua", ["{prefix}", rand]),
        Scenario("floor0", "floor without asyncpg's reset query (4 round trips, not 5)",
                 "floor0", "floor.lua", ["{prefix}", rand], base="floor"),
        Scenario("reserve", "reserve check, random customers", "app", "check.lua",
                 [key, "{prefix}", rand], base="floor", target=1.0, also="floor0"),
        Scenario("hot", "reserve check, one hot customer", "app", "check.lua",
                 [key, "{prefix}", "list:" + seeding.HOT], base="reserve"),
        Scenario("ten", "reserve check, 10-item customers (5; 1 overdue)", "app", "check.lua",
                 [key, "{prefix}", "list:" + ",".join(seeding.TEN)], base="reserve"),
        Scenario("holds", "reserve check, customers that hold (100; an invoice 31-60 days "
                 "overdue)", "app", "check.lua",
                 [key, "{prefix}", "list:" + ",".join(seeding.HOLDING)], base="reserve"),
        Scenario("big", "reserve check, 10,000-item customers (5; 2% overdue)", "app",
                 "check.lua", [key, "{prefix}", "list:" + ",".join(seeding.BIG)], base="ten",
                 target=0.9),
        Scenario("big0", "reserve check, 10,000-item customers (5; none overdue)", "app",
                 "check.lua", [key, "{prefix}", "list:" + ",".join(seeding.BIG_CURRENT)],
                 base="ten"),
        Scenario("livez", "GET /livez (same app server)", "app", "livez.lua", []),
        Scenario("dry", "dry-run check, 20 cached customers", "app", "check.lua",
                 [key, "{prefix}", cached, "dry"], base="livez", target=0.3),
        Scenario("exposure", "GET exposure, 20 cached customers", "app", "exposure.lua",
                 [key, cached], base="livez", target=0.3),
    ]


def run_wrk(url: str, sc: Scenario, conns: int, seconds: int, prefix: str) -> dict[str, Any]:
    args = [a.replace("{prefix}", prefix) for a in sc.args]
    cmd = ["wrk", "-t", str(min(THREADS, conns)), "-c", str(conns), "-d", f"{seconds}s",
           "--timeout", "5s", "-s", sc.script, url, "--", *args]
    out = subprocess.run(cmd, cwd=BENCH, capture_output=True, text=True,
                         timeout=seconds + 60)
    result = marked_json(out.stdout, "BENCHJSON")
    if result is not None:
        return result
    raise RuntimeError(f"wrk gave no result for {sc.key}:\n{out.stdout}\n{out.stderr}")


# -- where the CPU goes ---------------------------------------------------------------------

def descendants(root: int) -> list[int]:
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        parents.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(parents.get(pid, []))
    return out


def busy_cpu() -> float:
    """CPU seconds the whole machine has spent busy (all cores, all processes)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / TICK


class Monitor:
    """One connection to the `postgres` database, opened before the servers start and kept:
    reading statistics never needs a new connection on a server that may be out of them."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.conn: asyncpg.Connection | None = None

    def _run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def _query(self, sql: str, *args: Any) -> list[Any] | None:
        for attempt in range(3):
            try:
                if self.conn is None or self.conn.is_closed():
                    self.conn = self._run(asyncpg.connect(f"{PG}/postgres"))
                return list(self._run(self.conn.fetch(sql, *args)))
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log(f"statistics query failed ({type(exc).__name__}), attempt {attempt + 1}")
                self.conn = None
                time.sleep(1)
        return None

    def backends(self) -> tuple[dict[int, str], int]:
        """The PostgreSQL backends serving the bench database (pid: its application name, or
        its type for PostgreSQL's own workers), and sessions opened so far."""
        pids = self._query("SELECT pid, backend_type, application_name FROM pg_stat_activity "
                           "WHERE datname = $1", DB) or []
        rows = self._query("SELECT sessions FROM pg_stat_database WHERE datname = $1", DB)
        return ({int(r["pid"]): (r["application_name"] or r["backend_type"]
                                 if r["backend_type"] == "client backend" else r["backend_type"])
                 for r in pids}, int(rows[0]["sessions"] or 0) if rows else -1)

    def xacts(self) -> tuple[int, int] | None:
        rows = self._query("SELECT xact_commit, xact_rollback FROM pg_stat_database "
                           "WHERE datname = $1", DB)
        return (int(rows[0]["xact_commit"]), int(rows[0]["xact_rollback"])) if rows else None

    def version(self) -> str:
        rows = self._query("SHOW server_version")
        return str(rows[0][0]) if rows else "?"

    def close(self) -> None:
        if self.conn is not None:
            self._run(self.conn.close())
        self.loop.close()


MONITOR = Monitor()


def measured(server_pid: int, run: Any) -> tuple[dict[str, Any], dict[str, float]]:
    """Run `run()` and account the CPU it took: server tree, its PG backends, wrk, others."""
    tree = descendants(server_pid)
    pg_before, sessions_before = MONITOR.backends()
    app0 = {p: proc_cpu(p) for p in tree}
    pg0 = {p: proc_cpu(p) for p in pg_before}
    kids0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy0, wall0 = busy_cpu(), time.monotonic()
    res = run()
    busy1, wall1 = busy_cpu(), time.monotonic()
    kids1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    pg_after, sessions_after = MONITOR.backends()
    app_cpu = sum(proc_cpu(p) - app0.get(p, 0.0) for p in descendants(server_pid))
    by_kind: dict[str, float] = {}
    for p, kind in pg_after.items():
        by_kind[kind] = by_kind.get(kind, 0.0) + proc_cpu(p) - pg0.get(p, 0.0)
    pg_cpu = sum(by_kind.values())
    wrk_cpu = (kids1.ru_utime + kids1.ru_stime) - (kids0.ru_utime + kids0.ru_stime)
    n = max(int(res["requests"]), 1)
    wall = wall1 - wall0
    cpu = {"server_ms": 1000 * app_cpu / n, "pg_ms": 1000 * pg_cpu / n,
           "wrk_ms": 1000 * wrk_cpu / n, "busy_cores": (busy1 - busy0) / wall,
           "other_cores": max(busy1 - busy0 - app_cpu - pg_cpu - wrk_cpu, 0.0) / wall,
           "sessions_per_1k": 1000 * (sessions_after - sessions_before) / n
           if sessions_before >= 0 and sessions_after >= 0 else float("nan")}
    log("  PostgreSQL CPU ms/req by backend: " + ", ".join(
        f"{kind or '(no name)'} {1000 * v / n:.2f}"
        for kind, v in sorted(by_kind.items(), key=lambda kv: -kv[1])[:4]))
    return res, cpu


# -- processes ------------------------------------------------------------------------------

class Servers:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, cmd: list[str], env: dict[str, str]) -> None:
        logf = open(self.tmp / f"{name}.log", "wb")  # noqa: SIM115
        self.procs[name] = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=logf,
                                            stderr=subprocess.STDOUT, start_new_session=True)

    def alive(self, name: str) -> bool:
        return self.procs[name].poll() is None

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def log_tail(self, name: str, lines: int = 30) -> str:
        text = (self.tmp / f"{name}.log").read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])


def http_get(url: str, timeout: float = 2.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def wait_http(servers: Servers, name: str, url: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not servers.alive(name):
            raise RuntimeError(f"{name} exited:\n{servers.log_tail(name)}")
        try:
            status, _ = http_get(url, timeout=1)
            if status < 500:
                return
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{name} did not answer {url}:\n{servers.log_tail(name)}")


def cli(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    out = subprocess.run([str(BIN / "creditgate"), *args], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=600)
    if check and out.returncode != 0:
        raise RuntimeError(f"creditgate {' '.join(args)} failed ({out.returncode}):\n"
                           f"{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
    return out


# -- database -------------------------------------------------------------------------------

async def recreate_db() -> None:
    conn = await asyncpg.connect(f"{PG}/postgres")
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{DB}"')
    finally:
        await conn.close()


async def settle_db() -> None:
    conn = await asyncpg.connect(f"{PG}/{DB}")
    try:
        await conn.execute("VACUUM ANALYZE")
        await conn.execute("CHECKPOINT")
    finally:
        await conn.close()


def flush_redis(url: str) -> str | None:
    """Empty the bench's Redis database; returns the server version, None if unreachable."""
    try:
        import redis
        client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        client.flushdb()
        version = str(client.info("server").get("redis_version"))
        client.close()
        return version
    except Exception as exc:  # noqa: BLE001 - any failure means: run without Redis
        log(f"Redis at {url} not usable ({type(exc).__name__}: {exc}); running without it")
        return None


# -- the run --------------------------------------------------------------------------------

def machine() -> dict[str, str]:
    def sh(cmd: str) -> str:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True).stdout.strip()

    cpu = sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2").strip()
    commit = sh(f"git -C {ROOT} rev-parse --short HEAD")
    dirty = sh(f"git -C {ROOT} status --porcelain -- app migrations pyproject.toml")
    wrk_v = sh("wrk -v 2>&1 | head -1")
    return {
        "date": sh("date"), "nproc": sh("nproc"), "cpu": cpu or platform.processor(),
        "free": sh("free -h"), "kernel": platform.release(), "python": platform.python_version(),
        "wrk": wrk_v, "commit": commit + (" + uncommitted changes in app/" if dirty else ""),
    }


def metric_lines(url: str, prefix: str) -> list[str]:
    try:
        _, body = http_get(url + "/metrics", timeout=5)
    except OSError:
        return []
    return [ln for ln in body.splitlines() if ln.startswith(prefix)]


def errors_in_log(path: Path) -> Counter[str]:
    """Logged exceptions by their last line (the app logs JSON lines, uvicorn maybe plain)."""
    found: Counter[str] = Counter()
    if not path.exists():
        return found
    lines = path.read_text(errors="replace").splitlines()
    for i, line in enumerate(lines):
        text = None
        if line.startswith("{"):
            try:
                record = json.loads(line)
            except ValueError:
                continue
            text = record.get("error") if isinstance(record, dict) else None
        elif line.startswith("Traceback"):
            rest = [ln for ln in lines[i + 1:i + 200] if ln and not ln.startswith(" ")]
            text = rest[0] if rest else "?"
        if text:
            found[str(text).strip().splitlines()[-1][:160]] += 1
    return found


def main() -> int:
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install -y wrk)", file=sys.stderr)
        return 2
    started = time.monotonic()
    info = machine()
    tmp = Path(tempfile.mkdtemp(prefix="creditgate-bench-"))
    db_url = f"{PG}/{DB}"
    env = {**os.environ, "DATABASE_URL": db_url, "CREDITGATE_ENV": "production",
           "CREDITGATE_KEY_CACHE_SECONDS": "60", "PROMETHEUS_MULTIPROC_DIR": str(tmp / "metrics")}
    env.pop("REDIS_URL", None)

    log(f"database {DB}: drop, create, migrate, seed {CUSTOMERS:,} customers")
    asyncio.run(recreate_db())
    cli(env, "migrate")
    counts = asyncio.run(seeding.seed(db_url, CUSTOMERS))
    # The seed writes line items and the aggregates kept beside them; the payment index is
    # derived from those, as the daily sweep would set it: let reconcile compute it.
    cli(env, "reconcile", "--repair", check=False)
    rec = cli(env, "reconcile", check=False)
    if rec.returncode != 0 or "no drift" not in rec.stdout:
        print(rec.stdout[-5000:], rec.stderr[-3000:], file=sys.stderr)
        print("the seeded aggregates drift from their line items: fix bench/seed.py",
              file=sys.stderr)
        return 1
    log("reconcile after seeding: no drift")
    # Today's alert sweep, done as the first replica (or a cron job) does it once a day:
    # otherwise the servers' own daily sweep would start five minutes into the measurement and
    # lock batches of the accounts the random checks are spread over.
    log("the day's alert sweep (creditgate monitor)")
    cli(env, "monitor")
    # The repair and the sweep rewrote every account: vacuum and checkpoint now, as a restore
    # would be followed, so neither runs inside the measurement (the checkpoint of these
    # writes stalled the first rounds: the floor's p99 at 8 connections was 46 ms, now 7).
    asyncio.run(settle_db())
    pg_version = MONITOR.version()   # opens the statistics connection before the servers start
    # Four order-entry keys used in turn: the product's default rate limit (2,000 requests/s
    # per key and worker) is not what a throughput bench should measure.
    keys = [cli(env, "keys", "create", "--role", "order-entry", "--name",
                f"bench-order-entry-{i}").stdout.strip().splitlines()[-1] for i in range(1, 5)]
    key = ",".join(keys)

    redis_version = flush_redis(REDIS_URL) if REDIS_URL else None
    if redis_version:
        env["REDIS_URL"] = REDIS_URL
    app_port, floor_port, floor0_port = free_port(), free_port(), free_port()
    app_url, floor_url = f"http://127.0.0.1:{app_port}", f"http://127.0.0.1:{floor_port}"
    floor0_url = f"http://127.0.0.1:{floor0_port}"
    urls = {"app": app_url, "floor": floor_url, "floor0": floor0_url}
    servers = Servers(tmp)
    floor_env = {**env, "BENCH_FLOOR_DSN": db_url}
    all_sc = scenarios(key)
    by_key = {s.key: s for s in all_sc}
    trace: dict[str, Any] = {}
    post: subprocess.CompletedProcess[str] | None = None
    cache_metrics: list[str] = []
    try:
        servers.start("app", [str(BIN / "creditgate"), "serve", "--workers", str(WORKERS),
                              "--port", str(app_port)], env)
        servers.start("floor", [str(BIN / "uvicorn"), "floor:app", "--app-dir", str(BENCH),
                                "--host", "127.0.0.1", "--port", str(floor_port),
                                "--workers", str(WORKERS), "--proxy-headers",
                                "--log-level", "info", "--timeout-graceful-shutdown", "10"],
                       floor_env)
        servers.start("floor0", [str(BIN / "uvicorn"), "floor:app", "--app-dir", str(BENCH),
                                 "--host", "127.0.0.1", "--port", str(floor0_port),
                                 "--workers", str(WORKERS), "--proxy-headers",
                                 "--log-level", "info", "--timeout-graceful-shutdown", "10"],
                       {**floor_env, "BENCH_FLOOR_RESET": "skip"})
        wait_http(servers, "app", app_url + "/readyz")
        wait_http(servers, "floor", floor_url + "/docs")
        wait_http(servers, "floor0", floor0_url + "/docs")
        log(f"app on :{app_port} and floor on :{floor_port}, {WORKERS} workers each; "
            f"Redis {'db ' + REDIS_URL.rsplit('/', 1)[-1] if redis_version else 'off'}")

        log("counting PostgreSQL round trips per request on the wire (bench/trace.py)")
        u = urlsplit(PG)
        out = subprocess.run([sys.executable, str(BENCH / "trace.py"), u.hostname or "127.0.0.1",
                              str(u.port or 5432), DB, env.get("REDIS_URL", ""), keys[0],
                              str(CUSTOMERS)], cwd=ROOT, capture_output=True, text=True,
                             timeout=300)
        trace = marked_json(out.stdout, "BENCHTRACE") or {}
        if not trace:
            log("trace failed:\n" + out.stdout[-2000:] + out.stderr[-4000:])

        log("warm-up")
        for sc in all_sc:
            run_wrk(urls[sc.server], sc, CONNS, 3 if sc.key in ("floor", "reserve") else 2,
                    f"w-{sc.key}")

        for rnd in range(1, ROUNDS + 1):
            for sc in all_sc:
                url = urls[sc.server]
                server_pid = servers.procs[sc.server].pid
                measure_xacts = rnd == 1 and STATS_WAIT > 0
                before = MONITOR.xacts() if measure_xacts else None
                res, cpu = measured(server_pid, lambda sc=sc, url=url, rnd=rnd: run_wrk(
                    url, sc, CONNS, DURATION, f"r{rnd}-{sc.key}"))
                sc.sat.append(res)
                sc.cpus.append(cpu)
                if measure_xacts:
                    time.sleep(STATS_WAIT)
                    after = MONITOR.xacts()
                    if before is not None and after is not None:
                        sc.xacts = (after[0] - before[0]) / max(res["requests"], 1)
                        sc.rollbacks = (after[1] - before[1]) / max(res["requests"], 1)
                else:
                    time.sleep(1)
                log(f"round {rnd} {sc.key:<9} {res['rps']:>9.1f} req/s  "
                    f"p99 {res['p99_ms']:.1f} ms  non-2xx {res['bad']}  "
                    f"server {cpu['server_ms']:.2f} ms CPU/req, PG {cpu['pg_ms']:.2f}, "
                    f"others {cpu['other_cores']:.2f} cores")
        for sc in all_sc:
            sc.lat = run_wrk(urls[sc.server], sc, LAT_CONNS, LAT_DURATION, f"lat-{sc.key}")
            log(f"latency @{LAT_CONNS} {sc.key:<9} {sc.lat['rps']:.0f} req/s  "
                f"p50 {sc.lat['p50_ms']:.2f} ms  "
                f"p99 {sc.lat['p99_ms']:.2f} ms")
            time.sleep(1)
        cache_metrics = metric_lines(app_url, "creditgate_cache_requests_total")
    finally:
        servers.stop()
        app_errors = errors_in_log(tmp / "app.log")
        keep = Path(tempfile.gettempdir()) / "creditgate-bench-logs"
        shutil.rmtree(keep, ignore_errors=True)
        keep.mkdir()
        for name in ("app.log", "floor.log", "floor0.log"):
            if (tmp / name).exists():
                shutil.copy(tmp / name, keep / name)
        log(f"server logs kept in {keep}")
    log("CPU per check by layer, in one process (bench/components.py)")
    comp = subprocess.run([sys.executable, str(BENCH / "components.py"), db_url,
                           env.get("REDIS_URL", ""), str(CUSTOMERS)], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    components = marked_json(comp.stdout, "BENCHCOMPONENTS") or {}
    if not components:
        log("components failed:\n" + comp.stdout[-2000:] + comp.stderr[-4000:])
    MONITOR.close()
    post = cli(env, "reconcile", check=False)
    drift_after = "DRIFT " in post.stdout
    if post.returncode != 0 and not drift_after:
        log("reconcile after the load could not run:\n" + post.stderr[-2000:])
    log("reconcile after the load: " + ("DRIFT" if drift_after else "no drift"
                                         if post.returncode == 0 else "failed to run"))

    report = render(info, counts, all_sc, by_key, trace, redis_version, cache_metrics,
                    app_errors, drift_after, post.stdout if drift_after else "",
                    pg_version, time.monotonic() - started, components)
    print("\n" + report)
    if RESULTS:
        write_results(Path(RESULTS), report)
        log(f"wrote {RESULTS}")
    shutil.rmtree(tmp, ignore_errors=True)
    return 1 if drift_after else 0


# -- the report -----------------------------------------------------------------------------

def ratios(sc: Scenario, base: Scenario) -> list[float]:
    # Scenarios that are compared run next to each other in every round, so each pair of
    # runs shares (as far as possible) the same background load.
    """Per-round ratios (each against the base measured in the same round)."""
    return [a["rps"] / b["rps"] for a, b in zip(sc.sat, base.sat, strict=True) if b["rps"]]


def render(info: dict[str, str], counts: dict[str, int], all_sc: list[Scenario],
           by_key: dict[str, Scenario], trace: dict[str, Any], redis_version: str | None,
           cache_metrics: list[str], app_errors: Counter[str], drift_after: bool, drift_text: str,
           pg_version: str, elapsed: float, components: dict[str, Any]) -> str:
    lines = [
        f"Run: {info['date']} — {info['nproc']} cores, {info['cpu']}, kernel {info['kernel']}; "
        f"PostgreSQL {pg_version}, Redis {redis_version or 'not used'}, {info['wrk']}, "
        f"Python {info['python']}; code {info['commit']}.",
        "",
        "```", info["free"], "```",
        "",
        f"Data: {counts['accounts']:,} accounts, {counts['open_items']:,} open items, "
        f"{counts['orders']:,} orders, {counts['credit_file']:,} credit-file entries, "
        f"{counts.get('check_days', 0):,} daily check tallies "
        f"(`creditgate reconcile`: no drift after seeding"
        f"{'; DRIFT after the load' if drift_after else ', none after the load either'}). "
        f"Load: wrk -t{THREADS} -c{CONNS} -d{DURATION}s x {ROUNDS} rounds for req/s, "
        f"-c{LAT_CONNS} -d{LAT_DURATION}s for latency; servers: {WORKERS} uvicorn workers "
        f"each, app with CREDITGATE_ENV=production, KEY_CACHE_SECONDS=60"
        f"{', REDIS_URL set' if redis_version else ', no Redis'}.",
        "",
        "| scenario | req/s (per round) | ratio | of | target | | CPU-cost ratio "
        "| req/s @c8 | p50 @c8 | p99 @c8 | approve | non-2xx |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for sc in all_sc:
        per_round = " / ".join(f"{r['rps']:.0f}" for r in sc.sat)
        ratio = verdict = of = target = cost = ""
        if sc.base is not None:
            if sc.cost_ms:
                cost = f"{by_key[sc.base].cost_ms / sc.cost_ms:.2f}x"
            rs = ratios(sc, by_key[sc.base])
            mean = statistics.median(rs) if rs else float("nan")
            spread = f" ({min(rs):.2f}-{max(rs):.2f})" if len(rs) > 1 else ""
            ratio = f"**{mean:.2f}x**{spread}"
            of = by_key[sc.base].key
            if sc.also is not None:
                more = ratios(sc, by_key[sc.also])
                ratio += f"; {statistics.median(more):.2f}x" if more else ""
                of += f"; {sc.also}"
            if sc.target is not None:
                target = f"≥ {sc.target}" + (f" (aim {sc.aim})" if sc.aim else "")
                verdict = "pass" if mean >= sc.target else "**FAIL**"
                if sc.aim and mean < sc.aim and verdict == "pass":
                    verdict = "pass (below aim)"
            else:
                target = "report"
        elif sc.key in ("floor", "livez"):
            ratio = "1.00x (base)"
        total = sum(r["requests"] for r in sc.sat)
        approved = sum(r["approved"] for r in sc.sat)
        bad = sum(r["bad"] for r in sc.sat)
        timeouts = sum(r["err_timeout"] + r["err_connect"] for r in sc.sat)
        approve = (f"{100 * approved / total:.1f}%" if sc.script in ("check.lua", "floor.lua")
                   and total else "")
        lat = sc.lat or {}
        lines.append(
            f"| {sc.title} | {per_round} | {ratio} | {of} | {target} | {verdict} | {cost} "
            f"| {lat.get('rps', 0):.0f} | {lat.get('p50_ms', 0):.1f} ms "
            f"| {lat.get('p99_ms', 0):.1f} ms | {approve} "
            f"| {bad}{f' +{timeouts} timeouts' if timeouts else ''} |")
    others = statistics.mean(sc.cpu.get("other_cores", 0.0) for sc in all_sc)
    lines += ["", "*ratio*: requests/s against the base measured in the same round (median, "
              "with the range over rounds). *CPU-cost ratio*: the base's CPU per request (server "
              "workers + their PostgreSQL backends) divided by this scenario's; it predicts the "
              "throughput ratio when CPU is the bottleneck and is much less disturbed by other "
              "load on the machine. Random checks mostly approve by design: the bench measures "
              "the approve path (see the approve column).",
              "", f"Other processes used {others:.2f} of the {info['nproc']} cores on average "
              "during the measurements" + (
                  ": the machine was shared, so requests/s and their ratios are noisy; the "
                  "CPU-cost ratios are the steadier figure." if others > 0.3 else "."),
              "", "Where the time goes (saturating load, mean over rounds): CPU per request of "
              "the server's workers, of the PostgreSQL backends serving the bench database "
              "(backends that exit during the run are not counted), and of wrk; the CPU other "
              "processes on the machine used meanwhile (cores, of 2); PostgreSQL transactions "
              "per request (pg_stat_database, round 1) and connections opened per 1,000 "
              "requests:", "",
              "| scenario | server CPU ms/req | PG CPU ms/req | wrk CPU ms/req "
              "| other processes (cores) | PG xacts/req | PG sessions/1k req |",
              "|---|---|---|---|---|---|---|"]
    for sc in all_sc:
        c = sc.cpu
        xacts = "" if sc.xacts is None else f"{sc.xacts:.2f}" + (
            f" (+{sc.rollbacks:.2f} rollbacks)" if sc.rollbacks and sc.rollbacks >= 0.005
            else "")
        lines.append(f"| {sc.key} | {c.get('server_ms', 0):.2f} | {c.get('pg_ms', 0):.2f} "
                     f"| {c.get('wrk_ms', 0):.2f} | {c.get('other_cores', 0):.2f} | {xacts} "
                     f"| {c.get('sessions_per_1k', 0):.1f} |")
    lines += ["", "Round trips to PostgreSQL per request, counted on the wire by bench/trace.py "
              "(sequential requests after warm-up; Sync + simple Query messages):", ""]
    if trace:
        lines += ["| request | round trips | statements | prepares | statuses "
                  "| cache lookups | SQL (per request) |",
                  "|---|---|---|---|---|---|---|"]
        names = {"reserve_check": "reserve check (random customer)",
                 "dry_run_cached": "dry-run check (cached customer)",
                 "exposure_cached": "exposure read (cached customer)",
                 "floor_check": "floor check"}
        for k, title in names.items():
            t = trace.get(k)
            if not t:
                continue
            sql = "<br>".join(f"{v:.2f} x `{s.replace('|', '/')}`" for s, v in t["sql"].items()
                              if v >= 0.01) or "(no SQLAlchemy statements)"
            if k == "floor_check":
                sql = "BEGIN; UPDATE bench_floor_accounts … RETURNING; INSERT …; COMMIT"
            cache = ", ".join(f"{n} {result}" for result, n in t.get("cache", {}).items())
            lines.append(f"| {title} | **{t['round_trips']:.2f}** | {t['statements']:.2f} "
                         f"| {t['prepares']:.2f} | {t['statuses']} | {cache or '-'} | {sql} |")
    else:
        lines.append("(the trace failed; see the bench output)")
    lines += ["", "CPU per reserving check by layer, without HTTP, in one process "
              "(bench/components.py: 1,500 checks per figure, median of 3 alternating runs; "
              "µs of this process's Python and of the bench database's PostgreSQL backends):",
              ""]
    if components:
        titles = {"floor": "floor statements (asyncpg pool: BEGIN, UPDATE, INSERT, COMMIT)",
                  "service": "check_credit (no Redis, no deadline)",
                  "redis": "+ Redis retirement after commit",
                  "deadline": "+ Redis + deadline task (as the route runs it)"}
        lines += ["| layer | Python µs @1 | PG µs @1 | Python µs @16 | PG µs @16 "
                  "| total µs @16 |", "|---|---|---|---|---|---|"]
        for k, title in titles.items():
            one, many = components.get(f"{k}@1"), components.get(f"{k}@16")
            if not one or not many:
                continue
            lines.append(f"| {title} | {one['py_us']:.0f} | {one['pg_us']:.0f} "
                         f"| {many['py_us']:.0f} | {many['pg_us']:.0f} "
                         f"| {many['py_us'] + many['pg_us']:.0f} |")
    else:
        lines.append("(the layer measurement failed; see the bench output)")
    lines.append("")
    lines.append("Redis cache counters after the run: "
                 + (", ".join(f"`{m}`" for m in cache_metrics) or "none reported") + ".")
    if app_errors:
        lines.append(f"\n**The app logged {sum(app_errors.values())} exceptions during the run:** "
                     + "; ".join(f"{n} x `{e}`" for e, n in app_errors.most_common(5)) + ".")
    if drift_after:
        lines += ["", "**`creditgate reconcile` found drift after the load:**", "```",
                  drift_text[-3000:], "```"]
    lines += ["", f"Bench wall time: {elapsed / 60:.1f} min."]
    return "\n".join(lines)


def write_results(path: Path, report: str) -> None:
    header = ("# Benchmark results\n\nProduced by `make bench` (bench/run.py); the block "
              "between the markers is rewritten by every run, the rest is kept.\n\n")
    old = path.read_text() if path.exists() else ""
    block = f"{BEGIN}\n{report}\n{END}"
    if BEGIN in old and END in old:
        head, rest = old.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        text = head + block + tail
    else:
        text = header + block + "\n" + (old if old else "")
    path.write_text(text)


if __name__ == "__main__":
    sys.exit(main())
