"""The `creditgate` command line, as an operator runs it."""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from sqlalchemy import text

from app.importer import ImportError_, read_items
from app.metrics import CACHE_REQUESTS
from tests.conftest import _admin, _server_url
from tests.helpers import account, check, days, exposure, invoice
from tests.server import serve

ROOT = Path(__file__).resolve().parent.parent


def cli(*args: str, database_url: str | None, cwd: Path = ROOT,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")
           } | (env or {})
    if database_url is not None:
        env["DATABASE_URL"] = database_url
    return subprocess.run([sys.executable, "-m", "app.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_embedded_default_migrate_demo_and_one_check(tmp_path):
    """`make run`'s path: no DATABASE_URL at all, the embedded PostgreSQL with its data in
    the working directory, started by each command and stopped when it exits."""
    env_free = {"database_url": None, "cwd": tmp_path}
    assert cli("migrate", **env_free).returncode == 0
    demo = cli("demo", **env_free)
    assert demo.returncode == 0, demo.stderr
    key = next(w for w in demo.stdout.split() if w.startswith("cg_"))
    assert (tmp_path / ".creditgate" / "postgres" / "PG_VERSION").is_file(), \
        "the default database lives in the working directory"
    with serve(None, workers=1, cwd=tmp_path) as base:
        auth = {"Authorization": f"Bearer {key}"}
        r = httpx.post(f"{base}/v1/credit-checks", headers=auth, json={
            "order_id": "SMOKE-1", "customer_id": "ACME-001", "amount": "5000.00",
            "currency": "EUR"})
        assert r.status_code == 201, r.text
        assert r.json()["outcome"] == "approve"
        held = httpx.post(f"{base}/v1/credit-checks", headers=auth, json={
            "order_id": "SMOKE-2", "customer_id": "ACME-001", "amount": "16000.00",
            "currency": "EUR"}).json()
        assert held["outcome"] == "hold"
        ex = httpx.get(f"{base}/v1/customers/ACME-001/exposure", headers=auth).json()
        assert ex["open_orders"] == "5000.00" and ex["held_count"] == 1
    again = cli("demo", **env_free)
    assert "already present" in again.stdout
    assert cli("reconcile", **env_free).returncode == 0
    left = subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True, text=True)
    assert left.stdout == "", "the embedded server outlived the last command using it"


def test_keys_create_prints_the_key_alone_on_the_last_line(database_url):
    out = cli("keys", "create", "--role", "warehouse", "--name", "wh-cli",
              database_url=database_url)
    assert out.returncode == 0, out.stderr
    last = out.stdout.rstrip("\n").split("\n")[-1]
    assert last.startswith("cg_") and " " not in last
    listed = cli("keys", "list", database_url=database_url).stdout
    assert "wh-cli" in listed and last not in listed
    dup = cli("keys", "create", "--role", "warehouse", "--name", "wh-cli",
              database_url=database_url)
    assert dup.returncode != 0
    assert cli("keys", "revoke", "wh-cli", database_url=database_url).returncode == 0


async def test_import_open_items_applies_a_whole_file(api, database_url, tmp_path):
    await account(api, "A", limit="1000")
    await account(api, "B", limit="1000")
    await invoice(api, "OLD-A", "50", customer_id="A")
    csv = tmp_path / "items.csv"
    csv.write_text("customer_id,invoice_id,amount,currency,due_on\n"
                   f"A,A-1,100.50,EUR,{days(10)}\n"
                   f"A,A-2,-20,EUR,{days(-3)}\n"
                   f"B,B-1,300,EUR,{days(-40)}\n")
    out = cli("import-open-items", str(csv), database_url=database_url)
    assert out.returncode == 0, out.stderr
    assert "A: 2 added, 0 changed, 1 removed" in out.stdout
    assert (await exposure(api, "A"))["open_receivables"] == "80.50"
    assert (await exposure(api, "B"))["oldest_overdue_days"] == 40


async def test_import_reports_the_bad_line_and_applies_nothing(api, database_url, tmp_path):
    await account(api, "A", limit="1000")
    csv = tmp_path / "items.csv"
    csv.write_text("customer_id,invoice_id,amount,currency,due_on\n"
                   f"A,A-1,100,EUR,{days(10)}\n"
                   f"A,A-2,12.34567,EUR,{days(10)}\n"
                   f"A,A-3,5,EUR,not-a-date\n")
    out = cli("import-open-items", str(csv), database_url=database_url)
    assert out.returncode == 1
    assert "line 3: amount" in out.stderr and "line 4: due_on" in out.stderr
    assert "nothing was imported" in out.stderr
    assert (await exposure(api, "A"))["open_receivables"] == "0.00"


def _import_rows(tmp_path: Path, database_url: str, *rows: str
                 ) -> subprocess.CompletedProcess[str]:
    csv = tmp_path / "items.csv"
    csv.write_text("customer_id,invoice_id,amount,currency,due_on\n"
                   + "".join(f"{row}\n" for row in rows))
    return cli("import-open-items", str(csv), database_url=database_url)


async def test_import_of_an_unknown_customer_applies_nothing(api, database_url, tmp_path):
    await account(api, "A", limit="1000")
    out = _import_rows(tmp_path, database_url, f"A,A-1,100,EUR,{days(10)}",
                       f"ZZ-UNKNOWN,Z-1,100,EUR,{days(10)}")
    assert out.returncode == 1
    assert "line 3: customer ZZ-UNKNOWN: no credit account" in out.stderr, out.stderr
    assert (await exposure(api, "A"))["open_receivables"] == "0.00"


async def test_reconcile_finds_no_drift_and_reports_real_drift(api, db, database_url):
    await account(api, limit="1000")
    await invoice(api, "I1", "100")
    await check(api, "O1", "200")
    clean = cli("reconcile", database_url=database_url)
    assert clean.returncode == 0 and "no drift" in clean.stdout
    async with db.begin() as conn:
        await conn.execute(text("UPDATE accounts SET open_orders = open_orders + 1"))
    drift = cli("reconcile", database_url=database_url)
    assert drift.returncode == 1
    assert "DRIFT C1 open_orders: maintained 201.0000, recomputed 200.0000" in drift.stdout
    assert cli("reconcile", "--repair", database_url=database_url).returncode == 0
    assert cli("reconcile", database_url=database_url).returncode == 0


async def test_reconcile_covers_credit_groups(api, db, database_url):
    r = await api.put("/v1/groups/G1", {"name": "Holding", "currency": "EUR",
                                        "credit_limit": "5000"})
    assert r.status_code == 201, r.text
    await account(api, limit="1000", group_id="G1")
    await invoice(api, "I1", "100")
    assert cli("reconcile", database_url=database_url).returncode == 0
    async with db.begin() as conn:
        await conn.execute(text("UPDATE credit_groups SET open_receivables = 7, "
                                "member_count = 2"))
    drift = cli("reconcile", database_url=database_url)
    assert drift.returncode == 1
    assert "DRIFT G1 group open_receivables: maintained 7.0000, recomputed 100.0000" in \
        drift.stdout
    assert "DRIFT G1 group member_count: maintained 2, recomputed 1" in drift.stdout
    repaired = cli("reconcile", "--repair", database_url=database_url)
    assert repaired.returncode == 0 and "repaired 2 aggregates" in repaired.stdout
    assert cli("reconcile", database_url=database_url).returncode == 0


async def test_expire_command(api, db, database_url, tmp_path):
    await account(api, limit="1000")
    await check(api, "O1", "200")
    async with db.begin() as conn:
        await conn.execute(text("UPDATE orders SET expires_at = now() - interval '1 second'"))
    # As in the container image, whose environment names the servers' metrics directory.
    absent = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "not-here")}
    out = cli("expire", database_url=database_url, env=absent)
    assert out.returncode == 0, out.stderr
    assert out.returncode == 0 and "expired 1 reservations" in out.stdout
    assert (await exposure(api))["open_orders"] == "0.00"


def _hits() -> float:
    return CACHE_REQUESTS.labels("hit")._value.get()


@pytest.mark.parametrize("with_redis", [True, False], ids=["redis", "notify-only"])
async def test_cli_changes_retire_what_servers_cached(api, db, settings, database_url,
                                                      with_redis):
    """A batch job (here `creditgate expire`) must not leave servers answering from the cache.

    With REDIS_URL the command retires the customer's entry itself; without it, it signals
    every serving process over NOTIFY and they retire their whole cache.
    """
    await account(api, limit="1000")
    await check(api, "O1", "200")
    assert (await exposure(api))["open_orders"] == "200.00"
    hits = _hits()
    assert (await exposure(api))["open_orders"] == "200.00"
    assert _hits() == hits + 1, "the second read is served from Redis"
    async with db.begin() as conn:
        await conn.execute(text("UPDATE orders SET expires_at = now() - interval '1 second'"))
    env = {"CREDITGATE_CACHE_NAMESPACE": settings.cache_namespace}
    if with_redis:
        env["REDIS_URL"] = settings.redis_url
    out = cli("expire", database_url=database_url, env=env)
    assert out.returncode == 0 and "expired 1 reservations" in out.stdout, out.stderr
    deadline = asyncio.get_running_loop().time() + 3
    while (seen := (await exposure(api))["open_orders"]) != "0.00":
        assert not with_redis, "the command retired the entry before it exited"
        assert asyncio.get_running_loop().time() < deadline, f"still cached: {seen}"
        await asyncio.sleep(0.05)


async def test_import_names_the_line_of_an_item_the_ledger_refuses(api, database_url,
                                                                   tmp_path):
    await account(api, "A", limit="1000")
    await account(api, "B", limit="1000", currency="USD")
    await invoice(api, "B-7", "10", customer_id="B", currency="USD")
    out = _import_rows(tmp_path, database_url, f"A,A-1,100,EUR,{days(10)}",
                       f"A,A-2,5,USD,{days(10)}")
    assert out.returncode == 1
    assert "line 3 (A-2): customer A: no exchange rate into EUR" in out.stderr, out.stderr
    out = _import_rows(tmp_path, database_url, f"A,A-1,100,EUR,{days(10)}",
                       f"A,B-7,5,EUR,{days(10)}")
    assert out.returncode == 1
    assert "line 3 (B-7): customer A: invoice ids belong to other customers" in out.stderr
    assert (await exposure(api, "A"))["open_receivables"] == "0.00"
    assert (await exposure(api, "B"))["open_receivables"] == "10.00"


def test_import_refuses_a_file_over_the_row_cap_before_touching_the_database(tmp_path):
    csv = tmp_path / "items.csv"
    csv.write_text("customer_id,invoice_id,amount,currency,due_on\n"
                   + "".join(f"A,A-{n},1,EUR,2026-12-01\n" for n in range(6)))
    with pytest.raises(ImportError_) as refused:
        read_items(csv, max_rows=5)
    assert refused.value.problems == [
        "line 7: more than 5 rows; split the file (nothing was read into the database)"]
    assert len(read_items(csv, max_rows=6).groups["A"]) == 6


# --- failures: one sentence on stderr, exit 1, no traceback, nothing half-done --------------

UNREACHABLE = "postgresql://postgres@127.0.0.1:1/x"
HEADER = "customer_id,invoice_id,amount,currency,due_on\n"


def _error(out: subprocess.CompletedProcess[str], *, alone: bool = True) -> str:
    """The `creditgate: error: ...` line of a failed command (its last line on stderr)."""
    assert out.returncode == 1, (out.returncode, out.stdout, out.stderr)
    assert "Traceback" not in out.stderr, out.stderr
    lines = out.stderr.rstrip("\n").split("\n")
    errors = [line for line in lines if line.startswith("creditgate: error: ")]
    assert errors == lines[-1:], out.stderr
    if alone:
        assert len(lines) == 1, out.stderr
    return errors[0].removeprefix("creditgate: error: ")


def test_keys_create_with_a_taken_name_says_so(database_url):
    first = cli("keys", "create", "--role", "ledger", "--name", "taken-name",
                database_url=database_url)
    assert first.returncode == 0, first.stderr
    again = cli("keys", "create", "--role", "admin", "--name", "taken-name",
                database_url=database_url)
    message = _error(again)
    assert "a key named 'taken-name' already exists" in message and "--name" in message
    assert again.stdout == "", "no key was printed"
    listed = [line for line in cli("keys", "list", database_url=database_url).stdout.split("\n")
              if line.startswith("taken-name ")]
    assert len(listed) == 1 and " ledger " in listed[0], "the first key is untouched"


def test_keys_revoke_of_an_unknown_name_says_so(database_url):
    message = _error(cli("keys", "revoke", "no-such-key", database_url=database_url))
    assert "no active key named 'no-such-key'" in message and "keys list" in message


def test_usage_errors_exit_2_as_argparse_does(database_url):
    out = cli("keys", "create", "--role", "emperor", database_url=database_url)
    assert out.returncode == 2 and "usage:" in out.stderr and "Traceback" not in out.stderr


@pytest.fixture
async def a_file_was_imported(api, database_url, tmp_path):
    """Customer A with one open item from an earlier import: what a failed import must keep."""
    await account(api, "A", limit="1000")
    good = tmp_path / "good.csv"
    good.write_text(HEADER + f"A,A-1,100,EUR,{days(10)}\n")
    assert cli("import-open-items", str(good), database_url=database_url).returncode == 0
    yield api
    assert (await exposure(api, "A"))["open_receivables"] == "100.00", "nothing changed"


async def test_import_of_a_missing_file(a_file_was_imported, database_url, tmp_path):
    missing = tmp_path / "missing.csv"
    message = _error(cli("import-open-items", str(missing), database_url=database_url))
    assert message == f"cannot read {missing}: there is no such file; nothing was imported"


async def test_import_of_a_directory(a_file_was_imported, database_url, tmp_path):
    message = _error(cli("import-open-items", str(tmp_path), database_url=database_url))
    assert f"cannot read {tmp_path}: it is a directory, not a CSV file" in message


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file")
async def test_import_of_an_unreadable_file(a_file_was_imported, database_url, tmp_path):
    locked = tmp_path / "locked.csv"
    locked.write_text(HEADER + f"A,A-2,5,EUR,{days(10)}\n")
    locked.chmod(0)
    message = _error(cli("import-open-items", str(locked), database_url=database_url))
    assert f"cannot read {locked}: permission denied" in message


async def test_import_of_a_file_that_is_not_utf8(a_file_was_imported, database_url, tmp_path):
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes((HEADER + f"A,A-1,100,EUR,{days(10)}\nA,Caf\u00e9-1,5,EUR,{days(10)}\n"
                        ).encode("latin-1"))
    message = _error(cli("import-open-items", str(latin1), database_url=database_url))
    assert message.startswith("line 3: not UTF-8 text (byte 0xe9 at column 6)"), message
    assert message.endswith(f"nothing was imported from {latin1}")


async def test_import_of_a_file_with_the_wrong_header(a_file_was_imported, database_url,
                                                      tmp_path):
    wrong = tmp_path / "wrong.csv"
    wrong.write_text(f"customer,invoice,amount,currency,due\nA,A-9,1,EUR,{days(10)}\n")
    message = _error(cli("import-open-items", str(wrong), database_url=database_url))
    assert message.startswith("line 1: missing column(s) customer_id, invoice_id, due_on;")
    assert "customer_id,invoice_id,amount,currency,due_on" in message


async def test_import_with_many_bad_lines_lists_them_then_one_error(a_file_was_imported,
                                                                    database_url, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + f"A,A-1,1.23456,EUR,{days(10)}\nA,A-2,5,EUR,soon\n")
    out = cli("import-open-items", str(bad), database_url=database_url)
    assert _error(out, alone=False) == (f"{bad} has the problems listed above; nothing was "
                                         "imported")
    assert out.stderr.startswith("line 2: amount") and "\nline 3: due_on" in out.stderr


def _valid_csv(tmp_path: Path) -> str:
    path = tmp_path / "items.csv"
    path.write_text(HEADER + f"A,A-1,100,EUR,{days(10)}\n")
    return str(path)


COMMANDS = {
    "migrate": lambda _: ["migrate"],
    "keys create": lambda _: ["keys", "create", "--role", "admin", "--name", "k"],
    "keys list": lambda _: ["keys", "list"],
    "keys revoke": lambda _: ["keys", "revoke", "k"],
    "demo": lambda _: ["demo"],
    "import-open-items": lambda tmp: ["import-open-items", _valid_csv(tmp)],
    "expire": lambda _: ["expire"],
    "reconcile": lambda _: ["reconcile"],
}


@pytest.mark.parametrize("command", COMMANDS)
def test_an_unreachable_database_is_named(command, tmp_path):
    message = _error(cli(*COMMANDS[command](tmp_path), database_url=UNREACHABLE))
    assert message == ("cannot reach the database at 127.0.0.1:1 (connection refused); is it "
                       "running? check DATABASE_URL")


def test_a_database_that_does_not_exist_is_named(database_url):
    missing = database_url.rsplit("/", 1)[0] + "/creditgate_no_such_db"
    message = _error(cli("keys", "list", database_url=missing))
    assert "there is no database 'creditgate_no_such_db' at 127.0.0.1:5432" in message
    assert "check DATABASE_URL" in message


@pytest.fixture(scope="module")
def empty_database_url() -> Iterator[str]:
    """A database nobody migrated."""
    name = f"creditgate_unmigrated_{os.getpid()}_{secrets.token_hex(3)}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    try:
        yield _server_url(name)
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _tables(url: str) -> list[str]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    finally:
        await conn.close()
    return [r["tablename"] for r in rows]


@pytest.mark.parametrize("command", [c for c in COMMANDS if c != "migrate"])
async def test_an_unmigrated_database_says_run_migrate(command, empty_database_url, tmp_path):
    out = await asyncio.to_thread(cli, *COMMANDS[command](tmp_path),
                                  database_url=empty_database_url)
    message = _error(out)
    assert message.startswith("the database has no schema yet"), message
    assert message.endswith("run creditgate migrate")
    assert await _tables(empty_database_url) == [], "the command created nothing"


async def test_migrate_refuses_a_database_ahead_of_the_code(empty_database_url):
    conn = await asyncpg.connect(empty_database_url)
    try:
        await conn.execute("CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY);"
                           "INSERT INTO alembic_version VALUES ('ffffffffffff')")
        for command in (["migrate"], ["keys", "list"]):
            out = await asyncio.to_thread(cli, *command, database_url=empty_database_url)
            message = _error(out, alone=False)
            assert "ffffffffffff" in message and "newer version" in message, message
        assert await _tables(empty_database_url) == ["alembic_version"]
    finally:
        await conn.execute("DROP TABLE alembic_version")
        await conn.close()
