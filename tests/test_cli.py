"""The `creditgate` command line, as an operator runs it."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from app.importer import ImportError_, read_items
from app.metrics import CACHE_REQUESTS
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
def test_sqlite_default_migrate_demo_and_one_check(tmp_path):
    """`make run`'s path: no DATABASE_URL at all, an SQLite file in the working directory."""
    env_free = {"database_url": None, "cwd": tmp_path}
    assert cli("migrate", **env_free).returncode == 0
    demo = cli("demo", **env_free)
    assert demo.returncode == 0, demo.stderr
    key = next(w for w in demo.stdout.split() if w.startswith("cg_"))
    assert (tmp_path / "creditgate.db").exists()
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
    assert "line 3 (A-2): customer A: items not in EUR" in out.stderr, out.stderr
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
