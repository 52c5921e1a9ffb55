"""Unlocked reads of the reserving checks in flight share one statement.

A check's unlocked read is only a snapshot: its guarded write verifies everything the
decision relied on (app/credit/service.py), so reading several checks' snapshots in one
statement changes no decision.

The first check to arrive is read at once, alone, with the statement it would use anyway;
checks that arrive while reads are in flight wait for one to return and then go together in
the next statement, as a database's group commit does. No check waits for a batch to fill:
at low load every check has a read of its own, under load one round trip and one plan run
serve many.
"""

from __future__ import annotations

import asyncio
import contextvars
import datetime as dt
import json
import logging
import weakref
from dataclasses import dataclass

from asyncpg import PostgresError

from app.credit import sql
from app.db.engine import Database

log = logging.getLogger("creditgate.credit")

# Big enough that a worker's whole pool of waiting checks fits in one statement, small
# enough that one statement stays a few milliseconds.
MAX_BATCH = 64
# Reads in flight at once per process: more than one, so that one slow read is not a pause
# for every other check of the process.
IN_FLIGHT = 2


@dataclass(frozen=True)
class _Wanted:
    customer_id: str
    order_id: str
    currency: str
    today: dt.date
    answer: asyncio.Future[sql.Read]


class SnapshotReader:
    """The checks' unlocked reads (sql.SNAPSHOT), batched as sql.SNAPSHOTS; one per
    Database."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._queue: list[_Wanted] = []
        self._senders: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.batches: list[int] = []  # sizes of the last batches sent (tests, diagnosis)

    async def read(self, customer_id: str, order_id: str, today: dt.date, currency: str
                   ) -> sql.Read:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            # The loop it ran on is gone (a test's): so is everyone who waited on it.
            self._loop, self._queue, self._senders = loop, [], set()
        wanted = _Wanted(customer_id, order_id, currency, today, loop.create_future())
        self._queue.append(wanted)
        if len(self._senders) < IN_FLIGHT:
            # A context of its own: a sender serves many requests, and must not carry the
            # first one's request id or unit of work.
            sender = loop.create_task(self._send_queued(), context=contextvars.Context())
            self._senders.add(sender)
            sender.add_done_callback(self._senders.discard)
        return await wanted.answer

    async def _send_queued(self) -> None:
        waiting: list[_Wanted] = []
        try:
            while self._queue:
                batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
                waiting = [w for w in batch if not w.answer.done()]  # a deadline passed
                if waiting:
                    del self.batches[:-100]
                    self.batches.append(len(waiting))
                    # Around midnight two checks of one batch may see different days.
                    for today in sorted({w.today for w in waiting}):
                        await self._read([w for w in waiting if w.today == today], today)
        except BaseException as exc:
            # Cancelled with the event loop (shutdown): nobody is left to answer the rest.
            for wanted in [*waiting, *self._queue]:
                _fail(wanted, exc)
            self._queue = []
            raise

    async def _read(self, batch: list[_Wanted], today: dt.date) -> None:
        # No check waits longer than its deadline; a read outliving it answers nobody.
        timeout = float(self._db.settings.check_timeout_seconds)
        try:
            async with self._db.driver() as pg:
                if len(batch) == 1:
                    one = batch[0]
                    rows = [await pg.fetchrow(sql.SNAPSHOT, one.customer_id, one.order_id,
                                              today, one.currency, timeout=timeout)]
                else:
                    payload = json.dumps([{"c": w.customer_id, "o": w.order_id,
                                           "k": w.currency} for w in batch])
                    rows = await pg.fetch(sql.SNAPSHOTS, payload, today, timeout=timeout)
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
            if not wanted.answer.done():
                wanted.answer.set_result(sql.read_from_row(row, today))


def _fail(wanted: _Wanted, exc: BaseException) -> None:
    if not wanted.answer.done():
        if isinstance(exc, asyncio.CancelledError):
            wanted.answer.cancel()
        else:
            wanted.answer.set_exception(exc)


_readers: weakref.WeakKeyDictionary[Database, SnapshotReader] = weakref.WeakKeyDictionary()


def reader_of(db: Database) -> SnapshotReader:
    reader = _readers.get(db)
    if reader is None:
        reader = _readers[db] = SnapshotReader(db)
    return reader
