"""Prometheus collectors. Exact across uvicorn workers via prometheus-client's multiprocess mode.

`creditgate serve` points PROMETHEUS_MULTIPROC_DIR at a fresh directory before the workers
start; this module must be imported after that.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from app.credit.schemas import DecisionOut

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5,
                   1.0, 2.5)

DECISIONS = Counter("creditgate_decisions_total", "Credit decisions by outcome and primary "
                    "reason", ["outcome", "reason", "channel"])
DECISION_SECONDS = Histogram("creditgate_decision_seconds", "Time to decide a credit or "
                             "dispatch check", buckets=LATENCY_BUCKETS)
HTTP_REQUESTS = Counter("creditgate_http_requests_total", "HTTP requests",
                        ["method", "route", "status"])
HTTP_SECONDS = Histogram("creditgate_http_request_seconds", "HTTP request duration",
                         ["method", "route"], buckets=LATENCY_BUCKETS)
CACHE_REQUESTS = Counter("creditgate_cache_requests_total", "Redis cache lookups", ["result"])
RESERVATIONS_EXPIRED = Counter("creditgate_reservations_expired_total",
                               "Reservations released because they lapsed")
DB_POOL_IN_USE = Gauge("creditgate_db_pool_connections_in_use", "Database connections checked "
                       "out of the pool", multiprocess_mode="livesum")

CONTENT_TYPE = CONTENT_TYPE_LATEST


@functools.lru_cache(maxsize=4096)
def http_series(method: str, route: str, status: int) -> tuple[Any, Any]:
    """The request counter and duration histogram of one (method, route, status); memoised
    because `labels()` validates its arguments on every call."""
    return (HTTP_REQUESTS.labels(method, route, str(status)),
            HTTP_SECONDS.labels(method, route))


@functools.lru_cache(maxsize=4096)
def decision_series(outcome: str, reason: str, channel: str) -> Any:
    return DECISIONS.labels(outcome, reason, channel)


class Channels:
    """Maps a request's channel to a bounded label set (no unbounded label values)."""

    def __init__(self, known: frozenset[str]) -> None:
        self._known = known

    def label(self, channel: str | None) -> str:
        if channel is None:
            return "unspecified"
        return channel if channel in self._known else "other"


def count_decisions(decided: Iterable[tuple[DecisionOut, str | None]], channels: Channels
                    ) -> None:
    """One increment per decision, labelled with its primary reason."""
    for decision, channel in decided:
        decision_series(decision.outcome, primary_reason(decision),
                        channels.label(channel)).inc()


def primary_reason(decision: DecisionOut) -> str:
    """The first listed reason of the decision's outcome (reasons are in policy-table order)."""
    from app.credit.policy import REASON_OUTCOME, ReasonCode

    for reason in decision.reasons:
        if REASON_OUTCOME[ReasonCode(reason.code)].value == decision.outcome:
            return reason.code
    return decision.reasons[0].code


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR")


def forget_dead_workers() -> None:
    """Drop live gauges of worker processes that no longer exist (a restarted worker)."""
    directory = multiprocess_dir()
    if not directory:
        return
    for name in os.listdir(directory):
        if not name.startswith("gauge_live"):
            continue
        pid = name.rsplit("_", 1)[-1].split(".", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            mark_process_dead(int(pid), directory)  # type: ignore[no-untyped-call]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _Snapshot:
    def __init__(self, holds_open: int | None) -> None:
        self._holds_open = holds_open

    def collect(self) -> Iterable[GaugeMetricFamily]:
        if self._holds_open is not None:
            yield GaugeMetricFamily("creditgate_holds_open", "Orders waiting in the hold queue",
                                    value=self._holds_open)


def render(holds_open: int | None) -> bytes:
    """The exposition text: every worker's counters plus gauges read at scrape time."""
    directory = multiprocess_dir()
    if directory:
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
        text = generate_latest(registry)
    else:
        text = generate_latest(REGISTRY)
    extra = CollectorRegistry()
    extra.register(_Snapshot(holds_open))
    return text + generate_latest(extra)
