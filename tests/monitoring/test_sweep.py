"""The daily sweep: what only time makes true, once across replicas, in the app and as
`creditgate monitor`; and its cost at 100,000 accounts."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select, text

from app import clock
from app.db.engine import Database
from app.main import create_app
from app.monitoring.sweep import daily_sweep, sweep
from app.monitoring.tables import alerts, monitor_sweeps
from tests.helpers import account, days, invoice
from tests.test_cli import cli


def move_clock(monkeypatch: pytest.MonkeyPatch) -> Callable[[int], None]:
    real = clock.now

    def to(days_ahead: int) -> None:
        monkeypatch.setattr(clock, "now", lambda: real() + dt.timedelta(days=days_ahead))

    return to


async def open_alerts(db: Database) -> list[tuple[str, str]]:
    async with db.autocommit() as conn:
        rows = (await conn.execute(select(alerts.c.customer_id, alerts.c.kind)
                                   .where(alerts.c.status != "resolved")
                                   .order_by(alerts.c.customer_id, alerts.c.kind))).all()
    return [(r[0], r[1]) for r in rows]


async def test_the_sweep_raises_and_resolves_what_time_changes(api, db, monkeypatch):
    await account(api, limit="1000", review_due_on=days(20),
                  temporary_limit={"amount": "500", "expires_on": days(20)})
    await invoice(api, "I1", "1000", due_in=-20)  # 20 days past due; 1000 of 1500 used
    assert await open_alerts(db) == []
    assert (await sweep(db)).raised == 0
    to = move_clock(monkeypatch)
    to(6)  # review and temporary limit 14 days ahead; the invoice 26 days past due
    run = await sweep(db)
    assert await open_alerts(db) == [("C1", "LIMIT_EXPIRING"), ("C1", "REVIEW_DUE")]
    assert run.raised == 2
    assert (await sweep(db)).raised == 0  # the same day again: nothing new
    to(11)  # 31 days past due
    await sweep(db)
    assert ("C1", "OVERDUE") in await open_alerts(db)
    to(21)  # the temporary limit lapsed: no longer expiring, and 1000 of 1000 is used
    run = await sweep(db)
    found = await open_alerts(db)
    assert ("C1", "LIMIT_EXPIRING") not in found
    assert {("C1", "UTILISATION_HIGH"), ("C1", "REVIEW_DUE"), ("C1", "OVERDUE")} <= set(found)
    assert run.resolved == 1
    r = await api.get("/v1/customers/C1/history", params={"limit": 200})
    file = [e["event"] for e in r.json()["items"]]
    assert file.count("alert_resolved") == 1 and file.count("alert_raised") == len(found) + 1


async def _many_due(db: Database, n: int) -> None:
    """n accounts, each with its review due in 5 days and an item 40 days past due (written
    with SQL, so that no event has raised their alerts yet)."""
    async with db.begin() as conn:
        await conn.execute(text("""
            INSERT INTO accounts (customer_id, name, currency, credit_limit, risk_class,
                payment_terms_days, blocked, review_due_on, open_receivables, open_orders,
                held_amount, held_count, terms_version, ledger_version, created_at, updated_at)
            SELECT 'M' || lpad(i::text, 4, '0'), 'Many ' || i, 'EUR', 10000, 'unrated', 30,
                false, CURRENT_DATE + 5, 100, 0, 0, 0, 1, 1, now(), now()
            FROM generate_series(1, :n) i"""), {"n": n})
        await conn.execute(text("""
            INSERT INTO open_items (customer_id, invoice_id, amount, open_amount, currency,
                due_on, origin, reservation_consumed, created_at, updated_at)
            SELECT 'M' || lpad(i::text, 4, '0'), 'MI' || i, 100, 100, 'EUR',
                CURRENT_DATE - 40, 'snapshot', 0, now(), now()
            FROM generate_series(1, :n) i"""), {"n": n})


async def test_two_sweeps_at_once_raise_each_alert_once(clean_db, settings):
    await _many_due(clean_db, 60)
    one, two = Database(settings), Database(settings)
    try:
        runs = await asyncio.gather(sweep(one, batch=7), sweep(two, batch=11))
    finally:
        await one.dispose()
        await two.dispose()
    found = await open_alerts(clean_db)
    assert len(found) == len(set(found))
    assert {k for _c, k in found} == {"OVERDUE", "REVIEW_DUE", "PAYMENT_INDEX_LOW"}
    assert len(found) == 180
    assert sum(r.raised for r in runs) == 180
    async with clean_db.autocommit() as conn:
        entries = await conn.scalar(text(
            "SELECT count(*) FROM credit_file WHERE event = 'alert_raised'"))
    assert entries == 180


async def test_the_daily_sweep_runs_once_a_day_across_replicas(clean_db, settings):
    await _many_due(clean_db, 20)
    one, two = Database(settings), Database(settings)
    try:
        runs = await asyncio.gather(daily_sweep(one, "replica-1"), daily_sweep(two, "replica-2"))
        assert sorted(r is None for r in runs) == [False, True]  # one swept, one skipped
        assert await daily_sweep(one, "replica-1") is None  # a restart the same day
        assert await daily_sweep(two, "replica-2") is None
    finally:
        await one.dispose()
        await two.dispose()
    async with clean_db.autocommit() as conn:
        [row] = (await conn.execute(select(monitor_sweeps))).mappings().all()
    assert row["day"] == clock.today() and row["finished_at"] is not None
    assert row["raised"] == 60 == len(await open_alerts(clean_db))


async def test_a_crashed_sweeps_claim_lapses(clean_db, monkeypatch):
    await _many_due(clean_db, 3)
    now = clock.now()
    async with clean_db.begin() as conn:  # a replica claimed today and died
        await conn.execute(monitor_sweeps.insert().values(
            day=now.date(), claimed_by="dead", claimed_at=now - dt.timedelta(minutes=2)))
    assert await daily_sweep(clean_db, "replica-2") is None  # its claim is still alive
    async with clean_db.begin() as conn:
        await conn.execute(monitor_sweeps.update().values(
            claimed_at=now - dt.timedelta(minutes=11)))
    run = await daily_sweep(clean_db, "replica-2")
    assert run is not None and run.raised == 9


async def test_the_app_sweeps_in_the_background(clean_db, settings):
    await _many_due(clean_db, 2)
    application = create_app(settings.model_copy(update={"monitor_interval_seconds": 0.05}))
    async with application.router.lifespan_context(application):
        for _ in range(200):
            async with clean_db.autocommit() as conn:
                done = await conn.scalar(select(func.count()).select_from(monitor_sweeps)
                                         .where(monitor_sweeps.c.finished_at.is_not(None)))
            if done:
                break
            await asyncio.sleep(0.05)
    assert done == 1
    assert len(await open_alerts(clean_db)) == 6


async def test_creditgate_monitor_sweeps_now(api, db, database_url):
    await _many_due(db, 1)
    out = await asyncio.to_thread(cli, "monitor", database_url=database_url)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == (
        "swept: 1 accounts evaluated, 3 alerts raised, 0 resolved")
    assert await open_alerts(db) == [("M0001", "OVERDUE"), ("M0001", "PAYMENT_INDEX_LOW"),
                                     ("M0001", "REVIEW_DUE")]
    assert await daily_sweep(db) is None  # the day is recorded as swept
    out = await asyncio.to_thread(cli, "monitor", database_url=database_url)
    assert out.stdout.strip().splitlines()[-1] == (
        "swept: 1 accounts evaluated, 0 alerts raised, 0 resolved")


@pytest.mark.slow
async def test_the_sweep_of_100000_accounts_takes_seconds(clean_db, settings):
    """100,000 accounts: every 10th with its review due, every 20th over 90 % used, every 25th
    with a temporary limit expiring, every 20th with an item 40 days past due; each has an
    open item not yet due."""
    n = 100_000
    async with clean_db.begin() as conn:
        await conn.execute(text("""
            INSERT INTO accounts (customer_id, name, currency, credit_limit, risk_class,
                payment_terms_days, blocked, review_due_on, temp_limit_amount,
                temp_limit_expires_on, open_receivables, open_orders, held_amount, held_count,
                terms_version, ledger_version, created_at, updated_at)
            SELECT 'S' || lpad(i::text, 6, '0'), 'Sweep ' || i, 'EUR', 10000,
                (ARRAY['AAA','AA','A','BBB','BB','B','unrated'])[1 + i % 7], 30, false,
                CASE WHEN i % 10 = 0 THEN CURRENT_DATE + i % 20 ELSE CURRENT_DATE + 400 END,
                CASE WHEN i % 25 = 0 THEN 1000 END,
                CASE WHEN i % 25 = 0 THEN CURRENT_DATE + i % 20 END,
                CASE WHEN i % 20 = 0 THEN 9500 ELSE 100 END, 0, 0, 0, 1, 1, now(), now()
            FROM generate_series(1, :n) i"""), {"n": n})
        await conn.execute(text("""
            INSERT INTO open_items (customer_id, invoice_id, amount, open_amount, currency,
                due_on, origin, reservation_consumed, created_at, updated_at)
            SELECT 'S' || lpad(i::text, 6, '0'), 'SI' || i, 100, 100, 'EUR',
                CURRENT_DATE + 10, 'snapshot', 0, now(), now()
            FROM generate_series(1, :n) i
            UNION ALL
            SELECT 'S' || lpad(i::text, 6, '0'), 'SO' || i, 100, 100, 'EUR',
                CURRENT_DATE - 40, 'snapshot', 0, now(), now()
            FROM generate_series(1, :n) i WHERE i % 20 = 1"""), {"n": n})
        for table in ("accounts", "open_items", "alerts"):
            await conn.execute(text(f"ANALYZE {table}"))
    started = time.perf_counter()
    run = await sweep(clean_db)
    first = time.perf_counter() - started
    started = time.perf_counter()
    again = await sweep(clean_db)
    second = time.perf_counter() - started
    print(f"\nsweep of {n} accounts: {first:.1f} s ({run.evaluated} evaluated, "
          f"{run.raised} raised); again the same day: {second:.1f} s "
          f"({again.evaluated} re-evaluated, {again.raised} raised)")
    counts: dict[str, Any] = {}
    async with clean_db.autocommit() as conn:
        for kind, count in (await conn.execute(
                select(alerts.c.kind, func.count()).group_by(alerts.c.kind))).all():
            counts[kind] = count
    assert counts["REVIEW_DUE"] == n // 10 and counts["OVERDUE"] == n // 20
    assert counts["UTILISATION_HIGH"] == n // 20 - n // 100  # (a temporary limit helps)
    assert counts["LIMIT_EXPIRING"] == sum(1 for i in range(25, n + 1, 25) if i % 20 <= 14)
    assert again.raised == 0 and again.resolved == 0
    assert first < 120
