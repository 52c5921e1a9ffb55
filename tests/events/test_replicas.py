"""Many dispatchers at once share the work: every event delivered, none twice, each
customer's in order; a worker SIGKILLed mid-delivery loses nothing (its lease runs out)."""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from sqlalchemy import text

from app import clock
from app.db.engine import Database
from app.events.outbox import emit
from tests.conftest import ROOT
from tests.events.conftest import create_webhook, dispatcher
from tests.events.receiver import Reply, receiver


async def _emit_many(db, n, customers):
    ids = []
    async with db.begin() as conn:
        for i in range(n):
            customer = f"C{i % customers}"
            ids.append(await emit(conn, "order.held", {"customer": customer, "n": i},
                                  customer_id=customer, now=clock.now()))
    return ids


async def _delivered(db):
    async with db.autocommit() as conn:
        return await conn.scalar(text(
            "SELECT count(*) FROM webhook_deliveries WHERE status = 'delivered'"))


async def _run_replicas(settings, count, until):
    replicas = [Database(settings) for _ in range(count)]
    tasks = [asyncio.create_task(dispatcher(db).run(0.05)) for db in replicas]
    try:
        await until()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for db in replicas:
            await db.dispose()


async def test_three_replicas_deliver_every_event_once_in_order_per_customer(
        eapi, edb, events_settings):
    per_customer: dict[str, list[int]] = collections.defaultdict(list)
    lock = threading.Lock()

    def record(got):
        body = json.loads(got.body)["data"]
        with lock:
            per_customer[body["customer"]].append(body["n"])
        return Reply()

    with receiver(record) as r:
        await create_webhook(eapi, r.url)
        ids = await _emit_many(edb, 300, customers=20)

        async def all_delivered():
            for _ in range(1200):
                if await _delivered(edb) >= 300:
                    return
                await asyncio.sleep(0.05)
            raise AssertionError("not delivered within 60 s")

        small = events_settings.model_copy(update={"webhook_batch_size": 7})
        await _run_replicas(small, 3, all_delivered)
    assert sorted(r.ids()) == sorted(ids), "every event exactly once"
    assert len(r.ids()) == 300
    for customer, seen in per_customer.items():
        assert seen == sorted(seen), f"{customer} out of order"


async def test_a_worker_killed_between_claim_and_finish_loses_nothing(eapi, edb, events_url):
    release = threading.Event()

    def hang_first(got):
        if got.number == 1:
            release.wait(30)  # the worker dies while waiting for this answer
        return Reply()

    with receiver(hang_first) as r:
        await create_webhook(eapi, r.url)
        (event_id,) = await _emit_many(edb, 1, customers=1)
        env = {**os.environ, "DATABASE_URL": events_url,
               "CREDITGATE_WEBHOOK_ALLOW_PRIVATE": "true", "CREDITGATE_LOG_LEVEL": "WARNING"}
        env.pop("REDIS_URL", None)
        worker = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "app.cli", "webhooks", "deliver", cwd=ROOT, env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            assert await asyncio.to_thread(r.arrived.wait, 30), "the worker never sent"
            os.kill(worker.pid, signal.SIGKILL)  # claimed, sent, waiting for the answer
            assert await asyncio.wait_for(worker.wait(), 10) == -signal.SIGKILL
        finally:
            release.set()
            if worker.returncode is None:
                worker.kill()
        async with edb.autocommit() as conn:
            row = (await conn.execute(text(
                "SELECT status, attempts, lease IS NOT NULL AS leased FROM webhook_deliveries")
            )).one()
        assert tuple(row) == ("pending", 1, True)  # claimed, never finished
        # While the lease runs, nobody else sends it again ...
        assert (await dispatcher(edb).drain()).claimed == 0
        # ... once it has run out, the next dispatcher does.
        later = clock.now() + dispatcher(edb).lease + dt.timedelta(seconds=1)
        done = await dispatcher(edb, now=lambda: later).drain()
        assert done.delivered == 1
        assert r.ids() == [event_id, event_id]  # at least once: the receiver deduplicates
    async with edb.autocommit() as conn:
        status = await conn.scalar(text("SELECT status FROM webhook_deliveries"))
        attempts = (await conn.execute(text(
            "SELECT attempt, result FROM webhook_attempts"))).all()
    assert status == "delivered"
    assert [tuple(a) for a in attempts] == [(2, "delivered")]


async def test_creditgate_webhooks_deliver_does_one_pass(eapi, edb, events_url):
    with receiver() as r:
        await create_webhook(eapi, r.url)
        ids = await _emit_many(edb, 3, customers=3)
        env = {**os.environ, "DATABASE_URL": events_url,
               "CREDITGATE_WEBHOOK_ALLOW_PRIVATE": "true", "CREDITGATE_LOG_LEVEL": "WARNING"}
        env.pop("REDIS_URL", None)
        done = await asyncio.to_thread(
            subprocess.run, [sys.executable, "-m", "app.cli", "webhooks", "deliver"], cwd=ROOT,
            env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert "webhooks: 3 delivered, 0 to retry, 0 failed" in done.stdout
        assert sorted(r.ids()) == sorted(ids)


@pytest.mark.slow
async def test_throughput_to_a_local_receiver(eapi, edb, events_settings):
    n = 2000
    with receiver() as r:
        first = await create_webhook(eapi, r.url)
        await _emit_many(edb, n, customers=500)
        started = time.monotonic()
        await dispatcher(edb).drain()
        one = n / (time.monotonic() - started)
        assert len(r.ids()) == n
    assert (await eapi.request("DELETE", f"/v1/webhooks/{first['webhook_id']}")).status_code == 204
    with receiver() as r:
        await create_webhook(eapi, r.url)
        await _emit_many(edb, n, customers=500)
        started = time.monotonic()

        async def all_delivered():
            for _ in range(6000):
                if await _delivered(edb) >= 2 * n:
                    return
                await asyncio.sleep(0.02)

        await _run_replicas(events_settings, 3, all_delivered)
        three = n / (time.monotonic() - started)
        assert len(r.ids()) == n
    print(f"\nwebhook throughput to a local receiver: {one:.0f} events/s with one dispatcher, "
          f"{three:.0f} events/s with three")


def test_a_lease_outlasts_the_slowest_round_of_its_batch(edb):
    """A batch is sent CONCURRENCY at a time; if its lease ran out before the last round's
    timeout, another dispatcher would claim and send those deliveries again."""
    from app.events.client import DELIVERY_TIMEOUT
    from app.events.dispatcher import CONCURRENCY

    rounds = -(-edb.settings.webhook_batch_size // CONCURRENCY)
    assert dispatcher(edb).lease.total_seconds() > rounds * DELIVERY_TIMEOUT
