"""Times, counts and logs every request: one JSON line each, request id echoed back.

A request line carries: timestamp, level, request id (X-Request-ID accepted or generated),
method, route template, status, duration, the caller's key *name*, and the decision id and
outcome where there is one. Never keys, secrets or request bodies.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import metrics

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
log = logging.getLogger("creditgate.request")


class RequestLog:
    """Request id, metrics and one JSON log line per request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = _request_id(scope)
        # One dict shared with the routes, whatever copies scope; deadlines count from here.
        scope.setdefault("state", {})["arrived"] = time.monotonic()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"],
                                      (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            method = scope["method"]
            requests, seconds = metrics.http_series(method, route, status)
            requests.inc()
            seconds.observe(elapsed)
            _log_request(scope, request_id, method, route, status, elapsed)


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", []):
        if name == b"x-request-id":
            text: str = value.decode("latin-1")
            if _REQUEST_ID.match(text):
                return text
    return uuid.uuid4().hex


def _log_request(scope: Scope, request_id: str, method: str, route: str, status: int,
                 elapsed: float) -> None:
    state = scope.get("state") or {}
    fields: dict[str, Any] = {"request_id": request_id, "method": method, "route": route,
                              "status": status, "duration_ms": round(elapsed * 1000, 2)}
    caller = state.get("caller")
    if caller is not None:
        fields["caller"] = caller.name
    decision = state.get("decision")
    if decision is not None:
        fields["decision_id"] = decision.decision_id
        fields["outcome"] = decision.outcome
    level = logging.ERROR if status >= 500 else logging.INFO
    log.log(level, "request", extra={"fields": fields})
