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

from app.credit.policy import Decision

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
ASSESSMENTS = Counter("creditgate_assessments_total", "Assessments proposed, by grade",
                      ["grade"])
RESERVATIONS_EXPIRED = Counter("creditgate_reservations_expired_total",
                               "Reservations released because they lapsed")
ALERTS_RAISED = Counter("creditgate_alerts_raised_total", "Early-warning alerts raised, by kind",
                        ["kind"])
EVENTS = Counter("creditgate_events_total", "Events committed to the outbox, by type", ["type"])
WEBHOOK_DELIVERIES = Counter("creditgate_webhook_deliveries_total", "Webhook delivery attempts "
                             "by result (delivered, retried, failed: given up)", ["result"])
DB_POOL_IN_USE = Gauge("creditgate_db_pool_connections_in_use", "Database connections checked "
                       "out of the pool and in use (kept idle ones not counted)",
                       multiprocess_mode="livesum")

CONTENT_TYPE = CONTENT_TYPE_LATEST
# Decisions committed by one request or task, each with its order's channel (for counting).
Decided = list[tuple[Decision, str | None]]


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


def count_decisions(decided: Decided, channels: Channels) -> None:
    """One increment per decision, labelled with its primary reason."""
    for decision, channel in decided:
        decision_series(decision.outcome.value, decision.primary_reason.value,
                        channels.label(channel)).inc()


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
    def __init__(self, holds_open: int | None, alerts_open: dict[str, int] | None,
                 webhook_backlog: int | None = None) -> None:
        self._holds_open = holds_open
        self._alerts_open = alerts_open
        self._webhook_backlog = webhook_backlog

    def collect(self) -> Iterable[GaugeMetricFamily]:
        if self._holds_open is not None:
            yield GaugeMetricFamily("creditgate_holds_open", "Orders waiting in the hold queue",
                                    value=self._holds_open)
        if self._alerts_open is not None:
            family = GaugeMetricFamily("creditgate_alerts_open", "Open (incl. acknowledged) "
                                       "early-warning alerts, by kind", labels=["kind"])
            for kind, n in sorted(self._alerts_open.items()):
                family.add_metric([kind], n)
            yield family
        # Declared even while the database is down (no sample then), like the counters.
        backlog = GaugeMetricFamily("creditgate_webhook_backlog", "Events not yet delivered to "
                                    "every webhook endpoint that should receive them")
        if self._webhook_backlog is not None:
            backlog.add_metric([], self._webhook_backlog)
        yield backlog


def render(holds_open: int | None, alerts_open: dict[str, int] | None = None,
           webhook_backlog: int | None = None) -> bytes:
    """The exposition text: every worker's counters plus gauges read at scrape time."""
    directory = multiprocess_dir()
    if directory:
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
        text = generate_latest(registry)
    else:
        text = generate_latest(REGISTRY)
    extra = CollectorRegistry()
    extra.register(_Snapshot(holds_open, alerts_open, webhook_backlog))
    return text + generate_latest(extra)
