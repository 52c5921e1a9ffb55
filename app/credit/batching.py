"""Reserving checks in flight share statements: their unlocked reads, and their writes.

A check's unlocked read is only a snapshot: its guarded write verifies everything the
decision relied on (app/credit/service.py), so reading several checks' snapshots in one
statement changes no decision. A guarded write is a condition on its own account row;
decisions of different customers, written by one statement, each stand or fall on their own
guard, exactly as they would one by one, and commit together. Several decisions of one
customer land on its row together, each held to its guard after those ahead of it, or none
does (each is then decided again under the row lock). A hold or a prepay carries its event
and its webhook deliveries into the same statement, as it would alone.

The first check to arrive is sent at once, alone, with the statement it would use anyway;
checks that arrive while a statement is in flight wait for it to return and then go
together in the next one, as a database's group commit does. No check waits for a batch to
fill: at low load every check has statements of its own, under load one round trip, one plan
run and one commit serve many.
"""

from __future__ import annotations

import asyncio
import contextvars
import datetime as dt
import logging
import weakref
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from asyncpg import PostgresError

from app import json_text
from app.credit import sql
from app.credit.plans import CheckPlan
from app.credit.policy import Exposure
from app.db.engine import Database, touch

log = logging.getLogger("creditgate.credit")

# Big enough that a worker's whole pool of waiting checks fits in one statement, small
# enough that one statement stays a few milliseconds.
MAX_BATCH = 64
# Statements of one kind in flight at once, per process: while they are, arriving checks
# queue for the next. More than one, so that one batch waiting (on its WAL flush, or on a row
# another transaction holds) is not a pause for every other check of the process.
IN_FLIGHT = 2

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class Wanted(Generic[T, R]):
    item: T
    answer: asyncio.Future[R]


class _Batches(Generic[T, R]):
    """A queue of work and the one task per event loop that sends it in batches."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._queue: list[Wanted[T, R]] = []
        self._senders: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.batches: list[int] = []  # sizes of the last batches sent (tests, diagnosis)

    async def _submit(self, item: T) -> R:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            # The loop it ran on is gone (a test's): so is everyone who waited on it.
            self._loop, self._queue, self._senders = loop, [], set()
        wanted: Wanted[T, R] = Wanted(item, loop.create_future())
        self._queue.append(wanted)
        if len(self._senders) < IN_FLIGHT:
            # A context of its own: a sender serves many requests, and must not carry the
            # first one's request id or unit of work.
            sender = loop.create_task(self._send_queued(), context=contextvars.Context())
            self._senders.add(sender)
        return await wanted.answer

    async def _send_queued(self) -> None:
        waiting: list[Wanted[T, R]] = []
        try:
            while self._queue:
                waiting = [w for w in self._take() if not w.answer.done()]  # deadline passed
                if waiting:
                    del self.batches[:-100]
                    self.batches.append(len(waiting))
                    await self._send(waiting)
        except BaseException as exc:
            # Cancelled with the event loop (shutdown): nobody is left to answer the rest.
            for wanted in [*waiting, *self._queue]:
                _fail(wanted, exc)
            self._queue = []
            raise
        finally:
            # Leaves the senders in the same step as it saw the queue empty: a done callback
            # would run later, and a check queued in between would wait for a sender that
            # no longer sends.
            self._senders.discard(asyncio.current_task())

    def _take(self) -> list[Wanted[T, R]]:
        batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
        return batch

    async def _send(self, batch: list[Wanted[T, R]]) -> None:
        raise NotImplementedError

    @property
    def _timeout(self) -> float:
        # No check waits longer than its deadline; a statement outliving it answers nobody.
        return float(self._db.settings.check_timeout_seconds)


def _fail(wanted: Wanted[Any, Any], exc: BaseException) -> None:
    if not wanted.answer.done():
        if isinstance(exc, asyncio.CancelledError):
            wanted.answer.cancel()
        else:
            wanted.answer.set_exception(exc)


def _answer(wanted: Wanted[Any, R], result: R) -> None:
    if not wanted.answer.done():
        wanted.answer.set_result(result)


@dataclass(frozen=True)
class SnapshotWanted:
    customer_id: str
    order_id: str
    currency: str
    today: dt.date


class SnapshotReader(_Batches[SnapshotWanted, sql.Read]):
    """The checks' unlocked reads (sql.SNAPSHOT), batched as sql.SNAPSHOTS."""

    async def read(self, customer_id: str, order_id: str, today: dt.date, currency: str
                   ) -> sql.Read:
        return await self._submit(SnapshotWanted(customer_id, order_id, currency, today))

    async def _send(self, batch: list[Wanted[SnapshotWanted, sql.Read]]) -> None:
        # Around midnight two checks of one batch may see different days.
        for today in sorted({w.item.today for w in batch}):
            await self._read([w for w in batch if w.item.today == today], today)

    async def _read(self, batch: list[Wanted[SnapshotWanted, sql.Read]], today: dt.date
                    ) -> None:
        try:
            async with self._db.driver() as pg:
                if len(batch) == 1:
                    one = batch[0].item
                    rows = [await pg.fetchrow(sql.SNAPSHOT, one.customer_id, one.order_id,
                                              today, one.currency, timeout=self._timeout)]
                else:
                    payload = json_text.dumps([{"c": w.item.customer_id, "o": w.item.order_id,
                                           "k": w.item.currency} for w in batch])
                    rows = await pg.fetch(sql.SNAPSHOTS, payload, today, timeout=self._timeout)
        except PostgresError as exc:
            if len(batch) == 1:
                _fail(batch[0], exc)
                return
            # One check's input may be what the server refused: read each on its own, so the
            # others do not fail with it.
            log.info("batched check read refused (%s); reading one by one", type(exc).__name__)
            for wanted in batch:
                await self._read([wanted], today)
            return
        except Exception as exc:  # noqa: BLE001 - every waiting check hears why
            for wanted in batch:
                _fail(wanted, exc)
            return
        for wanted, row in zip(batch, rows, strict=True):
            _answer(wanted, sql.read_from_row(row, today))


class WriteAlone:
    """The answer to a decision whose batch failed as a whole: write it on its own."""


ALONE = WriteAlone()
Written = sql.Landed | None | WriteAlone


class DecisionWriter(_Batches[CheckPlan, Written]):
    """Guarded decisions of ungrouped customers (sql.batchable), batched as
    sql.WRITE_DECISIONS."""

    async def write(self, plan: CheckPlan) -> Written:
        """What the decision landed on; None when its guard failed; ALONE when it must be
        written on its own (its batch failed as a whole: a replayed order, a deadlock)."""
        return await self._submit(plan)

    async def _send(self, batch: list[Wanted[CheckPlan, Written]]) -> None:
        if len(batch) == 1:
            await self._write_one(batch[0])
            return
        batch.sort(key=lambda w: w.item.customer_id)  # stable: a customer's in their order
        try:
            async with self._db.driver() as pg:
                for wanted in batch:
                    touch(wanted.item.customer_id)
                payload = json_text.dumps([sql.decision_row(w.item) for w in batch])
                rows = await pg.fetch(sql.WRITE_DECISIONS, payload, timeout=self._timeout)
        except Exception as exc:  # noqa: BLE001 - nothing was written: each on its own
            log.info("batched decisions failed (%s); writing one by one", type(exc).__name__)
            for wanted in batch:
                _answer(wanted, ALONE)
            return
        landed = {row["i"]: sql.Landed(Exposure(row["recv"], row["before"]), None)
                  for row in rows}
        for i, wanted in enumerate(batch, start=1):
            _answer(wanted, landed.get(i))

    async def _write_one(self, wanted: Wanted[CheckPlan, Written]) -> None:
        try:
            async with self._db.driver() as pg:
                touch(wanted.item.customer_id)
                result = await sql.write(pg, wanted.item, seconds=self._timeout)
        except Exception as exc:  # noqa: BLE001 - the check handles it as its own
            _fail(wanted, exc)
            return
        _answer(wanted, result)


_readers: weakref.WeakKeyDictionary[Database, SnapshotReader] = weakref.WeakKeyDictionary()
_writers: weakref.WeakKeyDictionary[Database, DecisionWriter] = weakref.WeakKeyDictionary()


def reader_of(db: Database) -> SnapshotReader:
    reader = _readers.get(db)
    if reader is None:
        reader = _readers[db] = SnapshotReader(db)
    return reader


def writer_of(db: Database) -> DecisionWriter:
    writer = _writers.get(db)
    if writer is None:
        writer = _writers[db] = DecisionWriter(db)
    return writer
