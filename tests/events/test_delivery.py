"""Webhook delivery to real HTTP receivers on 127.0.0.1: Standard Webhooks signatures (checked
with the independent `standardwebhooks` package), the retry schedule on an injected clock,
410, timeouts, Retry-After, the 5-day rule, per-customer order, redelivery, pruning."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time

import pytest
from sqlalchemy import text
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from app import clock
from app.events import client
from app.events.dispatcher import JITTER, MAX_ATTEMPTS, RETRY_SCHEDULE
from app.events.outbox import emit
from app.main import create_app
from tests.api import Api
from tests.events.conftest import create_webhook, dispatcher
from tests.events.receiver import Reply, receiver


async def _emit(db, kind="order.held", customer_id="C1", now=None, **data):
    async with db.begin() as conn:
        return await emit(conn, kind, {"order_id": "O1", **data}, customer_id=customer_id,
                          now=now or clock.now())


async def _attempts(api, webhook_id):
    r = await api.get(f"/v1/webhooks/{webhook_id}/deliveries", params={"limit": 200})
    assert r.status_code == 200, r.text
    return list(reversed(r.json()["items"]))  # oldest first


async def _hook(api, webhook_id):
    items = (await api.get("/v1/webhooks")).json()["items"]
    return next(h for h in items if h["webhook_id"] == webhook_id)


def _sigs(received):
    return received.headers["webhook-signature"].split(" ")


async def test_every_delivery_verifies_with_standardwebhooks_during_rotation_too(eapi, edb):
    verified: list[tuple[str, str]] = []
    keys: dict[str, str] = {}

    def verify(got):
        payload = None
        for name, secret in keys.items():
            try:
                payload = Webhook(secret).verify(got.body, got.headers)
                verified.append((name, got.headers["webhook-id"]))
            except WebhookVerificationError:
                pass
        return Reply(200 if payload is not None or not keys else 401)

    with receiver(verify) as r:
        hook = await create_webhook(eapi, r.url, ["order.held", "alert.raised"],
                                    description="ERP")
        assert hook["secret"].startswith("whsec_") and len(hook["secret"]) >= 6 + 32
        assert hook["status"] == "active" and hook["description"] == "ERP"
        keys["old"] = hook["secret"]
        first = await _emit(edb, amount="10.00")
        assert (await dispatcher(edb).drain()).delivered == 1
        assert verified == [("old", first)]
        got = r.received[0]
        assert got.headers["webhook-id"] == first
        assert abs(int(got.headers["webhook-timestamp"]) - time.time()) < 5
        body = json.loads(got.body)
        assert body["type"] == "order.held" and body["data"] == {"order_id": "O1",
                                                                 "amount": "10.00"}
        assert dt.datetime.fromisoformat(body["timestamp"]).tzinfo is not None
        assert len(_sigs(got)) == 1

        rotated = (await eapi.post(f"/v1/webhooks/{hook['webhook_id']}/rotate-secret")).json()
        assert rotated["secret"].startswith("whsec_") and rotated["secret"] != hook["secret"]
        keys["new"] = rotated["secret"]
        second = await _emit(edb, "alert.raised", customer_id="C2")
        assert (await dispatcher(edb).drain()).delivered == 1
        assert sorted(verified[1:]) == [("new", second), ("old", second)]
        assert len(_sigs(r.received[1])) == 2

        # 24 h later the old secret no longer signs. (standardwebhooks refuses a timestamp
        # 5 minutes off its real clock, so this signature is checked with its `sign`.)
        new = keys.pop("new")
        keys.clear()
        later = clock.now() + dt.timedelta(hours=24, seconds=1)
        third = await _emit(edb, now=later)
        assert (await dispatcher(edb, now=lambda: later).drain()).delivered == 1
        got = r.received[2]
        assert got.headers["webhook-id"] == third
        assert got.headers["webhook-signature"] == Webhook(new).sign(
            third, later, got.body.decode())
        assert int(got.headers["webhook-timestamp"]) == int(later.timestamp())
    listed = (await eapi.get("/v1/webhooks")).json()["items"]
    assert "secret" not in json.dumps(listed) and "whsec_" not in json.dumps(listed)
    assert not [h for h in listed if "secret" in h]


async def test_a_receiver_failing_three_times_gets_four_attempts_on_schedule(eapi, edb,
                                                                              fake_clock):
    with receiver(lambda got: Reply(500, b"boom" * 400) if got.number <= 3 else Reply()) as r:
        hook = await create_webhook(eapi, r.url)
        event_id = await _emit(edb, now=fake_clock())
        d = dispatcher(edb, now=fake_clock)
        steps = []
        for attempt in range(1, 5):
            done = await d.drain()
            steps.append((done.delivered, done.retried))
            if attempt < 4:
                low, high = (RETRY_SCHEDULE[attempt - 1] * (1 - JITTER),
                             RETRY_SCHEDULE[attempt - 1] * (1 + JITTER))
                fake_clock.advance(low - dt.timedelta(seconds=0.5))
                assert (await d.drain()).claimed == 0, "retried before the schedule"
                fake_clock.advance(high - low + dt.timedelta(seconds=1))
        assert steps == [(0, 1), (0, 1), (0, 1), (1, 0)]
        assert (await d.drain()).claimed == 0
        assert r.ids() == [event_id] * 4
    attempts = await _attempts(eapi, hook["webhook_id"])
    assert [(a["attempt"], a["result"], a["status_code"]) for a in attempts] == [
        (1, "retried", 500), (2, "retried", 500), (3, "retried", 500), (4, "delivered", 200)]
    assert len(attempts[0]["response"]) == client.EXCERPT_BYTES
    assert attempts[0]["error"] == "HTTP 500" and attempts[3]["error"] is None
    for i in range(3):
        gap = (dt.datetime.fromisoformat(attempts[i + 1]["attempted_at"])
               - dt.datetime.fromisoformat(attempts[i]["attempted_at"]))
        assert RETRY_SCHEDULE[i] * (1 - JITTER) <= gap <= RETRY_SCHEDULE[i] * (1 + JITTER) + \
            dt.timedelta(seconds=1)
        assert attempts[i]["next_attempt_at"] is not None
    assert all(a["duration_ms"] >= 0 for a in attempts)


async def test_the_jittered_schedule_and_retry_after(edb):
    d = dispatcher(edb)
    for attempt, base in enumerate(RETRY_SCHEDULE, start=1):
        delays = [d.retry_delay(attempt, None) for _ in range(200)]
        assert min(delays) >= base * 0.8 and max(delays) <= base * 1.2
        assert max(delays) - min(delays) > base * 0.2  # jittered, not fixed
    assert d.retry_delay(1, 120) == dt.timedelta(seconds=120)
    assert d.retry_delay(1, 10**9) == dt.timedelta(hours=24)
    assert client.retry_after("30") == 30
    assert client.retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0
    assert client.retry_after("soon") is None


async def test_retry_after_is_honoured(eapi, edb, fake_clock):
    with receiver(lambda got: Reply(503, headers=(("Retry-After", "600"),))
                  if got.number == 1 else Reply()) as r:
        hook = await create_webhook(eapi, r.url)
        await _emit(edb, now=fake_clock())
        d = dispatcher(edb, now=fake_clock)
        assert (await d.drain()).retried == 1
        fake_clock.advance(599)
        assert (await d.drain()).claimed == 0
        fake_clock.advance(2)
        assert (await d.drain()).delivered == 1
    attempts = await _attempts(eapi, hook["webhook_id"])
    assert [a["status_code"] for a in attempts] == [503, 200]


async def test_410_disables_the_endpoint(eapi, edb):
    with receiver(lambda _got: Reply(410, b"gone")) as r:
        hook = await create_webhook(eapi, r.url)
        await _emit(edb)
        await _emit(edb, customer_id="C2")
        done = await dispatcher(edb).drain()
        assert done.disabled == [hook["webhook_id"]] and done.failed >= 1
        listed = await _hook(eapi, hook["webhook_id"])
        assert listed["status"] == "disabled" and "410" in listed["disabled_reason"]
        await _emit(edb, customer_id="C3")
        assert (await dispatcher(edb).drain()).claimed == 0
        assert len(r.received) <= 2
    async with edb.autocommit() as conn:
        actions = (await conn.execute(text(
            "SELECT action, actor, details->>'reason' FROM webhook_changes "
            "WHERE webhook_id = :w ORDER BY change_id"), {"w": hook["webhook_id"]})).all()
        pending = await conn.scalar(text(
            "SELECT count(*) FROM webhook_deliveries WHERE status = 'pending'"))
    assert [a[0] for a in actions] == ["created", "disabled"]
    assert actions[1][1] == "dispatcher" and "410" in actions[1][2]
    assert pending == 0
    r2 = await eapi.post(f"/v1/webhooks/{hook['webhook_id']}/redeliver/"
                         f"{(await _attempts(eapi, hook['webhook_id']))[0]['event_id']}")
    assert r2.status_code == 409


async def test_a_slow_receiver_times_out_and_is_retried(eapi, edb, fake_clock):
    assert client.DELIVERY_TIMEOUT == 15.0
    with receiver(lambda got: Reply(delay=3.0) if got.number == 1 else Reply()) as r:
        hook = await create_webhook(eapi, r.url)
        await _emit(edb, now=fake_clock())
        d = dispatcher(edb, now=fake_clock, timeout=0.5)  # the receiver outlasts the client
        started = time.monotonic()
        assert (await d.drain()).retried == 1
        assert time.monotonic() - started < 2.5
        fake_clock.advance(7)
        assert (await d.drain()).delivered == 1
        assert len(r.received) == 2
    first, second = await _attempts(eapi, hook["webhook_id"])
    assert first["result"] == "retried" and first["status_code"] is None
    assert first["error"] == "no answer within 0.5 s" and second["result"] == "delivered"


async def test_an_endpoint_failing_for_five_days_is_disabled(eapi, edb, fake_clock):
    with receiver(lambda _got: Reply(500)) as r:
        hook = await create_webhook(eapi, r.url)
        start = fake_clock()
        await _emit(edb, now=start)
        d = dispatcher(edb, now=fake_clock)
        await d.drain()
        for _ in range(MAX_ATTEMPTS - 1):  # the whole schedule: about 3 days, then given up
            last = (await _attempts(eapi, hook["webhook_id"]))[-1]
            fake_clock.at = dt.datetime.fromisoformat(last["next_attempt_at"])
            await d.drain()
        attempts = await _attempts(eapi, hook["webhook_id"])
        assert fake_clock() - start < dt.timedelta(days=4)
        assert [a["result"] for a in attempts] == ["retried"] * 9 + ["failed"]
        assert (await _hook(eapi, hook["webhook_id"]))["status"] == "active"
        fake_clock.at = start + dt.timedelta(days=5, seconds=1)
        await _emit(edb, customer_id="C2", now=fake_clock())
        done = await d.drain()
        assert done.disabled == [hook["webhook_id"]]
        assert len(r.received) == 11
    listed = await _hook(eapi, hook["webhook_id"])
    assert listed["status"] == "disabled" and "5 days" in listed["disabled_reason"]


async def test_a_success_resets_the_five_day_clock(eapi, edb, fake_clock):
    with receiver(lambda got: Reply(200 if got.number == 2 else 500)) as r:
        hook = await create_webhook(eapi, r.url)
        start = fake_clock()
        await _emit(edb, now=start)
        d = dispatcher(edb, now=fake_clock)
        await d.drain()  # fails
        fake_clock.advance(10)
        await d.drain()  # succeeds
        fake_clock.at = start + dt.timedelta(days=5, seconds=1)
        await _emit(edb, customer_id="C2", now=fake_clock())
        assert (await d.drain()).disabled == []
        assert len(r.received) == 3
    assert (await _hook(eapi, hook["webhook_id"]))["status"] == "active"


async def test_a_customers_events_stay_in_order_across_retries(eapi, edb, fake_clock):
    fail_first = {"left": 2}

    def behaviour(got):
        body = json.loads(got.body)
        if body["data"]["n"] == 0 and fail_first["left"]:
            fail_first["left"] -= 1
            return Reply(500)
        return Reply()

    with receiver(behaviour) as r:
        await create_webhook(eapi, r.url, ["order.held"])
        c1 = [await _emit(edb, customer_id="C1", now=fake_clock(), n=i) for i in range(3)]
        other = await _emit(edb, customer_id="C2", now=fake_clock(), n=9)
        d = dispatcher(edb, now=fake_clock)
        await d.drain()
        # C1's first failed: its later events wait; C2's is not held up by it.
        assert sorted(r.ids()) == sorted([c1[0], other])
        fake_clock.advance(7)
        await d.drain()
        fake_clock.advance(400)
        await d.drain()
        delivered = [i for i in r.ids() if i in c1]
        assert delivered == [c1[0], c1[0], c1[0], c1[1], c1[2]]


async def test_an_endpoint_gets_only_its_types_and_only_events_after_it_was_created(eapi, edb):
    before = await _emit(edb)
    with receiver() as r:
        await create_webhook(eapi, r.url, ["order.held"])
        held = await _emit(edb)
        await _emit(edb, "order.prepay")
        await dispatcher(edb).drain()
        assert r.ids() == [held]
        assert before not in r.ids()


async def test_delivery_time_checks_the_address_again(eapi, edb, events_settings):
    from app.db.engine import Database

    with receiver() as r:
        hook = await create_webhook(eapi, r.url)  # allowed: this app allows private
        await _emit(edb)
        strict = Database(events_settings.model_copy(update={"webhook_allow_private": False}))
        try:
            assert (await dispatcher(strict).drain()).retried == 1
        finally:
            await strict.dispose()
        assert r.received == []
    (attempt,) = await _attempts(eapi, hook["webhook_id"])
    assert attempt["error"].startswith("refused: must be an https URL")


async def test_redirects_are_not_followed(eapi, edb, fake_clock):
    with receiver(lambda _got: Reply(302, headers=(("Location", "http://10.0.0.1/"),))) as r:
        hook = await create_webhook(eapi, r.url)
        await _emit(edb, now=fake_clock())
        assert (await dispatcher(edb, now=fake_clock).drain()).retried == 1
        assert len(r.received) == 1
    (attempt,) = await _attempts(eapi, hook["webhook_id"])
    assert attempt["status_code"] == 302 and "not followed" in attempt["error"]


async def test_redeliver_sends_an_event_again(eapi, edb):
    with receiver() as r:
        hook = await create_webhook(eapi, r.url)
        event_id = await _emit(edb)
        await dispatcher(edb).drain()
        resp = await eapi.post(f"/v1/webhooks/{hook['webhook_id']}/redeliver/{event_id}")
        assert resp.status_code == 202, resp.text
        assert resp.json() == {"webhook_id": hook["webhook_id"], "event_id": event_id,
                               "status": "pending"}
        await dispatcher(edb).drain()
        assert r.ids() == [event_id, event_id]
    async with edb.autocommit() as conn:
        actions = (await conn.scalars(text(
            "SELECT action FROM webhook_changes ORDER BY change_id"))).all()
    assert actions == ["created", "redelivery_requested"]


async def test_delete_stops_deliveries_and_is_audited(eapi, edb):
    with receiver() as r:
        hook = await create_webhook(eapi, r.url)
        await _emit(edb)
        resp = await eapi.request("DELETE", f"/v1/webhooks/{hook['webhook_id']}")
        assert resp.status_code == 204 and resp.content == b""
        assert (await dispatcher(edb).drain()).claimed == 0
        assert r.received == []
    assert (await eapi.get("/v1/webhooks")).json()["items"] == []
    again = await eapi.request("DELETE", f"/v1/webhooks/{hook['webhook_id']}")
    assert again.status_code == 404
    async with edb.autocommit() as conn:
        rows = (await conn.execute(text(
            "SELECT action, actor FROM webhook_changes ORDER BY change_id"))).all()
    assert [tuple(x) for x in rows] == [("created", "events-admin"), ("deleted", "events-admin")]
    with pytest.raises(Exception, match="append-only"):
        async with edb.begin() as conn:
            await conn.execute(text("DELETE FROM webhook_changes"))


async def test_delivered_events_are_pruned_after_the_retention(eapi, edb, fake_clock):
    with receiver(lambda got: Reply(200 if "C1" in got.body.decode() else 500)) as r:
        await create_webhook(eapi, r.url)
        old = fake_clock() - dt.timedelta(days=31)
        await _emit(edb, customer_id="C1", now=old, who="C1")
        await _emit(edb, customer_id="C2", now=old, who="C2")
        await _emit(edb, customer_id="C1", now=fake_clock(), who="C1")
        d = dispatcher(edb, now=fake_clock)
        await d.drain()
        assert len(r.received) == 3
        assert await d.prune() == 1  # the old, delivered one; the old pending one stays
    async with edb.autocommit() as conn:
        left = (await conn.scalars(text(
            "SELECT customer_id FROM events ORDER BY position"))).all()
        deliveries = await conn.scalar(text("SELECT count(*) FROM webhook_deliveries"))
    assert left == ["C2", "C1"] and deliveries == 2


async def test_the_app_delivers_within_five_seconds_of_the_commit(edb, ekeys, events_settings,
                                                                 eapi):
    live = events_settings.model_copy(update={"webhook_poll_seconds": 1.0})
    application = create_app(live)
    with receiver() as r:
        async with application.router.lifespan_context(application):
            api = Api(application, ekeys)
            await create_webhook(api, r.url)
            await asyncio.sleep(0.3)  # the listener is up
            committed = time.monotonic()
            event_id = await _emit(edb)
            assert await asyncio.to_thread(r.arrived.wait, 5)
            assert r.ids() == [event_id]
            took = time.monotonic() - committed
            for _ in range(100):  # the attempt is recorded just after the answer
                metrics_text = (await api.get("/metrics", role=None)).text
                if "creditgate_webhook_backlog 0.0" in metrics_text:
                    break
                await asyncio.sleep(0.02)
        assert took < 5
    print(f"\nfirst attempt {took * 1000:.0f} ms after the commit")
    assert "creditgate_webhook_backlog 0.0" in metrics_text
    assert 'creditgate_webhook_deliveries_total{result="delivered"}' in metrics_text
    assert 'creditgate_events_total{type="order.held"}' in metrics_text


async def test_the_backlog_gauge_counts_undelivered_events(eapi, edb):
    await create_webhook(eapi, "http://127.0.0.1:9/a")
    await create_webhook(eapi, "http://127.0.0.1:9/b")
    await _emit(edb)
    await _emit(edb, customer_id="C2")
    text_ = (await eapi.get("/metrics", role=None)).text
    assert "creditgate_webhook_backlog 2.0" in text_
