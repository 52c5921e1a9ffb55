"""The webhook dispatcher: claims due deliveries, sends them signed, records each attempt.

Every worker of every replica runs one (and `creditgate webhooks deliver` runs one pass).
They share the work through the `webhook_deliveries` rows:

- **Claim**: `FOR UPDATE SKIP LOCKED` picks due rows no one else is claiming, and the same
  statement moves their `due_at` a lease ahead (LEASE_SECONDS, longer than any attempt) under
  a fresh `lease` token, then commits: no connection is held while the receiver answers. A
  worker that dies after claiming leaves the row pending; when the lease runs out, any
  dispatcher claims it again (at-least-once). Only the holder of the lease may finish it.
- **Order**: a delivery is claimable only when no earlier event (by position) of the same
  customer is still pending for the same endpoint, so a customer's events reach an endpoint
  in order, retries included.
- **Wake-up**: NOTIFY at the commit of an event with deliveries, and a poll every
  `webhook_poll_seconds` for retries and missed notifications.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import math
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from app import clock, metrics
from app.db.engine import Database
from app.events import client
from app.events.signing import signature_header
from app.ids import new_id

log = logging.getLogger("creditgate.webhooks")

# After the 1st, 2nd, ... failed attempt (DESIGN.md 2.5); each ±20 % (JITTER).
RETRY_SCHEDULE = (dt.timedelta(seconds=5), dt.timedelta(minutes=5), dt.timedelta(minutes=30),
                  dt.timedelta(hours=2), dt.timedelta(hours=5), dt.timedelta(hours=10),
                  dt.timedelta(hours=14), dt.timedelta(hours=20), dt.timedelta(hours=24))
JITTER = 0.2
MAX_ATTEMPTS = len(RETRY_SCHEDULE) + 1
MAX_RETRY_AFTER = dt.timedelta(hours=24)
DISABLE_AFTER = dt.timedelta(days=5)
LEASE_SECONDS = client.DELIVERY_TIMEOUT + 45.0
CONCURRENCY = 16
PRUNE_EVERY_SECONDS = 3600.0

_CLAIM = text("""
WITH due AS (
  SELECT d.webhook_id, d.position FROM webhook_deliveries d
  JOIN webhooks w ON w.webhook_id = d.webhook_id AND w.status = 'active'
  WHERE d.status = 'pending' AND d.due_at <= :now
    AND NOT EXISTS (SELECT 1 FROM webhook_deliveries p
                    WHERE p.webhook_id = d.webhook_id AND p.customer_id = d.customer_id
                      AND p.status = 'pending' AND p.position < d.position)
  ORDER BY d.due_at, d.position
  LIMIT :limit
  FOR UPDATE OF d SKIP LOCKED)
UPDATE webhook_deliveries d
SET due_at = :lease_until, lease = :lease, attempts = d.attempts + 1
FROM due, events e, webhooks w
WHERE d.webhook_id = due.webhook_id AND d.position = due.position
  AND e.position = d.position AND w.webhook_id = d.webhook_id
RETURNING d.webhook_id, d.position, d.event_id, d.attempts, e.type, e.timestamp, e.data,
  w.url, w.secret, w.previous_secret, w.previous_secret_expires_at
""")


@dataclass(frozen=True)
class Claim:
    webhook_id: str
    position: int
    event_id: str
    attempt: int
    url: str
    body: bytes
    secrets: list[str]
    lease: str


@dataclass
class Pass:
    """What one pass did."""

    claimed: int = 0
    delivered: int = 0
    retried: int = 0
    failed: int = 0
    disabled: list[str] = field(default_factory=list)


def body_of(event_type: str, timestamp: dt.datetime, data: Any) -> bytes:
    """The Standard Webhooks payload `{type, timestamp, data}`."""
    stamp = timestamp.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    raw = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"),
                                                        ensure_ascii=False)
    head = json.dumps({"type": event_type, "timestamp": stamp}, separators=(",", ":"))
    return f'{head[:-1]},"data":{raw}}}'.encode()


class Dispatcher:
    """Delivers due webhook attempts; `now` and `rng` are injectable for tests."""

    def __init__(self, db: Database, *, now: Callable[[], dt.datetime] = clock.now,
                 rng: random.Random | None = None, timeout: float = client.DELIVERY_TIMEOUT,
                 lease_seconds: float = LEASE_SECONDS) -> None:
        self.db = db
        self.settings = db.settings
        self.now = now
        self.rng = rng or random.Random()
        self.timeout = timeout
        # A claimed batch is sent CONCURRENCY at a time: its last round may start only after
        # the others have taken their whole timeout, and the lease must outlast it, or another
        # dispatcher would claim (and send) the same deliveries again.
        rounds = math.ceil(self.settings.webhook_batch_size / CONCURRENCY)
        self.lease = dt.timedelta(seconds=max(lease_seconds, timeout * (rounds + 1)))
        self._wake = asyncio.Event()
        self._last_prune = 0.0

    def wake(self, _payload: str = "") -> None:
        """A NOTIFY handler: something became due."""
        self._wake.set()

    async def run(self, poll_seconds: float) -> None:
        """Deliver forever (cancel to stop)."""
        while True:
            self._wake.clear()
            try:
                done = await self.run_once()
                if time.monotonic() - self._last_prune > PRUNE_EVERY_SECONDS:
                    self._last_prune = time.monotonic()
                    await self.prune()
            except Exception:
                log.exception("webhook dispatch pass failed")
                done = Pass()
            if done.claimed >= self.settings.webhook_batch_size:
                continue  # more may be due right now
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), poll_seconds)

    async def drain(self) -> Pass:
        """Passes until nothing is due (one cron run, or a test's step)."""
        total = Pass()
        while True:
            done = await self.run_once()
            total.claimed += done.claimed
            total.delivered += done.delivered
            total.retried += done.retried
            total.failed += done.failed
            total.disabled += done.disabled
            if done.claimed == 0:
                return total

    async def run_once(self) -> Pass:
        """Claim up to one batch of due deliveries, send them, record the outcomes."""
        claims = await self.claim()
        if not claims:
            return Pass()
        semaphore = asyncio.Semaphore(CONCURRENCY)

        async def send(claim: Claim) -> tuple[Claim, dt.datetime, client.Answer]:
            async with semaphore:
                at = self.now()
                return claim, at, await self._send(claim, at)

        results = await asyncio.gather(*(send(c) for c in claims))
        return await self.finish(list(results))

    async def claim(self) -> list[Claim]:
        now = self.now()
        lease = uuid.uuid4().hex
        async with self.db.begin() as conn:
            rows = (await conn.execute(_CLAIM, {
                "now": now, "limit": self.settings.webhook_batch_size,
                "lease_until": now + self.lease, "lease": lease})).mappings().all()
        claims = []
        for r in sorted(rows, key=lambda r: r["position"]):
            live = [r["secret"]]
            expires = r["previous_secret_expires_at"]
            if r["previous_secret"] and expires is not None and expires > now:
                live.append(r["previous_secret"])
            claims.append(Claim(r["webhook_id"], r["position"], r["event_id"], r["attempts"],
                                r["url"], body_of(r["type"], r["timestamp"], r["data"]), live,
                                lease))
        return claims

    async def _send(self, claim: Claim, at: dt.datetime) -> client.Answer:
        stamp = int(at.timestamp())
        headers = {"webhook-id": claim.event_id, "webhook-timestamp": str(stamp),
                   "webhook-signature": signature_header(claim.secrets, claim.event_id, stamp,
                                                         claim.body)}
        return await client.post(claim.url, claim.body, headers,
                                 allow_private=self.settings.webhook_allow_private,
                                 timeout=self.timeout)

    def retry_delay(self, attempt: int, retry_after: float | None) -> dt.timedelta:
        """The wait after failed attempt number `attempt` (1-based): the schedule ±20 %, and
        never sooner than the receiver's Retry-After."""
        base = RETRY_SCHEDULE[attempt - 1]
        delay = base * self.rng.uniform(1 - JITTER, 1 + JITTER)
        if retry_after is not None:
            delay = max(delay, min(dt.timedelta(seconds=retry_after), MAX_RETRY_AFTER))
        return delay

    async def finish(self, results: list[tuple[Claim, dt.datetime, client.Answer]]) -> Pass:
        done = Pass(claimed=len(results))
        now = self.now()
        attempts: list[dict[str, Any]] = []
        finished: list[dict[str, Any]] = []
        retries: list[dict[str, Any]] = []
        succeeded: set[str] = set()
        failing: set[str] = set()
        gone: dict[str, str] = {}
        for claim, at, answer in results:
            next_at: dt.datetime | None = None
            if answer.ok:
                result = "delivered"
                succeeded.add(claim.webhook_id)
            elif answer.status == 410:
                result = "failed"
                gone[claim.webhook_id] = "the receiver answered 410 Gone"
            elif claim.attempt >= MAX_ATTEMPTS:
                result = "failed"
                failing.add(claim.webhook_id)
            else:
                result = "retried"
                next_at = now + self.retry_delay(claim.attempt, answer.retry_after)
                failing.add(claim.webhook_id)
            key = {"webhook_id": claim.webhook_id, "position": claim.position,
                   "lease": claim.lease, "now": now}
            if next_at is None:
                finished.append({**key, "status": result})
            else:
                retries.append({**key, "due_at": next_at})
            attempts.append({
                "attempt_id": new_id(), "webhook_id": claim.webhook_id,
                "event_id": claim.event_id, "attempt": claim.attempt, "attempted_at": at,
                "result": result, "status_code": answer.status,
                "duration_ms": round(answer.seconds * 1000), "response": answer.excerpt or None,
                "error": answer.error, "next_attempt_at": next_at})
            setattr(done, result, getattr(done, result) + 1)
            metrics.WEBHOOK_DELIVERIES.labels(result).inc()
            if result != "delivered":
                log.info("webhook attempt failed", extra={"fields": {
                    "webhook_id": claim.webhook_id, "event_id": claim.event_id,
                    "attempt": claim.attempt, "status": answer.status, "error": answer.error,
                    "result": result}})
        async with self.db.begin() as conn:
            await conn.execute(text(
                "INSERT INTO webhook_attempts (attempt_id, webhook_id, event_id, attempt, "
                "attempted_at, result, status_code, duration_ms, response, error, "
                "next_attempt_at) VALUES (:attempt_id, :webhook_id, :event_id, :attempt, "
                ":attempted_at, :result, :status_code, :duration_ms, :response, :error, "
                ":next_attempt_at)"), attempts)
            if finished:
                await conn.execute(text(
                    "UPDATE webhook_deliveries SET status = :status, finished_at = :now, "
                    "lease = NULL WHERE webhook_id = :webhook_id AND position = :position "
                    "AND lease = :lease AND status = 'pending'"), finished)
            if retries:
                await conn.execute(text(
                    "UPDATE webhook_deliveries SET due_at = :due_at, lease = NULL "
                    "WHERE webhook_id = :webhook_id AND position = :position "
                    "AND lease = :lease AND status = 'pending'"), retries)
            # Endpoint rows in one order, so that two dispatchers never deadlock on them.
            for webhook_id in sorted(succeeded | failing | gone.keys()):
                reason: str | None
                if webhook_id in gone:
                    reason = gone[webhook_id]
                elif webhook_id in failing and webhook_id not in succeeded:
                    reason = await _still_failing(conn, webhook_id, now)
                else:
                    await conn.execute(text(
                        "UPDATE webhooks SET failing_since = NULL WHERE webhook_id = :w "
                        "AND failing_since IS NOT NULL"), {"w": webhook_id})
                    continue
                if reason is not None and await disable(conn, webhook_id, reason, now=now,
                                                        actor="dispatcher"):
                    done.disabled.append(webhook_id)
        return done

    async def prune(self) -> int:
        """Drop events older than the retention that nothing still waits to deliver, their
        deliveries, and attempts older than the retention."""
        cutoff = self.now() - dt.timedelta(days=self.settings.event_retention_days)
        async with self.db.begin() as conn:
            await conn.execute(text("DELETE FROM webhook_attempts WHERE attempted_at < :c"),
                               {"c": cutoff})
            gone = await conn.scalar(text("""
                WITH old AS (
                  SELECT e.position FROM events e WHERE e.timestamp < :c
                    AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d
                                    WHERE d.position = e.position AND d.status = 'pending')
                  ORDER BY e.position LIMIT 10000),
                dropped AS (DELETE FROM webhook_deliveries d USING old
                            WHERE d.position = old.position RETURNING 1),
                pruned AS (DELETE FROM events e USING old WHERE e.position = old.position
                           RETURNING 1)
                SELECT (SELECT count(*) FROM pruned) + 0 * (SELECT count(*) FROM dropped)
                """), {"c": cutoff})
        return int(gone or 0)


async def _still_failing(conn: AsyncConnection, webhook_id: str, now: dt.datetime
                         ) -> str | None:
    since = await conn.scalar(text(
        "UPDATE webhooks SET failing_since = COALESCE(failing_since, :now) "
        "WHERE webhook_id = :w AND status = 'active' RETURNING failing_since"),
        {"w": webhook_id, "now": now})
    if since is not None and now - since >= DISABLE_AFTER:
        return f"every delivery attempt failed for {DISABLE_AFTER.days} days"
    return None


async def disable(conn: AsyncConnection, webhook_id: str, reason: str, *, now: dt.datetime,
                  actor: str) -> bool:
    """Disable an active endpoint, cancel what it still had pending, record why."""
    changed = await conn.scalar(text(
        "UPDATE webhooks SET status = 'disabled', disabled_reason = :r, updated_at = :now "
        "WHERE webhook_id = :w AND status = 'active' RETURNING 1"),
        {"w": webhook_id, "r": reason, "now": now})
    if not changed:
        return False
    await conn.execute(text(
        "UPDATE webhook_deliveries SET status = 'cancelled', finished_at = :now, lease = NULL "
        "WHERE webhook_id = :w AND status = 'pending'"), {"w": webhook_id, "now": now})
    await record(conn, webhook_id, "disabled", actor, now, {"reason": reason})
    log.warning("webhook endpoint disabled", extra={"fields": {"webhook_id": webhook_id,
                                                              "reason": reason}})
    return True


async def record(conn: AsyncConnection, webhook_id: str, action: str, actor: str,
                 now: dt.datetime, details: dict[str, Any] | None = None) -> None:
    """Append to the endpoints' audit trail."""
    await conn.execute(text(
        "INSERT INTO webhook_changes (change_id, webhook_id, at, actor, action, details) "
        "VALUES (:c, :w, :at, :actor, :action, CAST(:details AS jsonb))"),
        {"c": new_id(), "w": webhook_id, "at": now, "actor": actor, "action": action,
         "details": json.dumps(details) if details is not None else None})
