"""The deadline of a decision: counted from the request's arrival, enforced without waiting for
abandoned work to finish."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from typing import Any, TypeVar

from fastapi import Request

from app.errors import Unavailable
from app.settings import Settings

log = logging.getLogger("creditgate.errors")


def time_left(request: Request) -> float:
    """Seconds left of the request's decision deadline, counted from its arrival."""
    return seconds_left(request.app.state.db.settings, request.state.arrived)


def seconds_left(settings: Settings, arrived: float) -> float:
    """Seconds left of a decision deadline for a request that arrived at `arrived`
    (time.monotonic())."""
    return float(settings.check_timeout_seconds) - (time.monotonic() - arrived)


T = TypeVar("T")


async def within(seconds: float, work: Awaitable[T]) -> T:
    """The result of `work`, or a 503 once `seconds` have passed — at once, without waiting
    for the abandoned work to finish cancelling (closing a connection to a hung database
    can itself take seconds)."""
    task = asyncio.ensure_future(work)
    try:
        done, _ = await asyncio.wait({task}, timeout=max(seconds, 0.0))
    except asyncio.CancelledError:
        task.cancel()
        raise
    if task in done:
        result: T = task.result()
        return result
    task.cancel()
    task.add_done_callback(_forget)
    raise Unavailable(
        "the database did not answer in time; retry with the same request: a decision "
        "that was taken is replayed, none is taken twice", headers={"Retry-After": "1"})


def _forget(task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.info("abandoned work ended with %s", type(task.exception()).__name__)
