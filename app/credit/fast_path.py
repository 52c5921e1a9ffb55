"""POST /v1/credit-checks answered without the framework's per-request machinery, when the
request needs none of it.

Order entry waits on every check, and FastAPI's routing, dependency solving and body handling
cost about as much CPU as the check's own Python. The route in app/credit/views.py stays the
definition (OpenAPI, every refusal, every validation message); this layer answers only the
common case itself — a JSON body that validates, from a key the process has cached and that
may check — taking the route's steps in the route's order with the route's own functions:
caller, rate limit, deadline, `check_credit`, metrics, the same status, headers and body.
Anything else (no key, a key not cached, a role refused, a body that does not validate) is
handed on untouched, body included, and answered by the route as before.
"""

from __future__ import annotations

import time

from fastapi.routing import APIRoute
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import errors
from app.auth.roles import Caller
from app.auth.verifier import Miss
from app.credit.schemas import CreditCheckIn
from app.credit.service import check_credit
from app.credit.views import decision_response, router
from app.deadline import seconds_left, within
from app.decimal_json import loads
from app.deps import ORDER_ENTRY_ROLES, admits, bearer_key

PATH = "/v1/credit-checks"
_ROUTE = next(r for r in router.routes if isinstance(r, APIRoute) and r.path == PATH
              and "POST" in (r.methods or ()))


class CheckFastPath:
    """Answers well-formed, admitted credit checks; hands everything else to `app`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        # BodyLimit, outside this layer, passes every body on whole, in one message.
        first = await receive()
        replay = _replaying(first, receive)
        whole = first["type"] == "http.request" and not first.get("more_body", False)
        admitted = self._admitted(scope, first.get("body", b"")) if whole else None
        if admitted is None:
            await self.app(scope, replay, send)
            return
        caller, req = admitted
        try:
            response = await self._check(scope, caller, req)
        except Exception as exc:
            handler = errors.handler_for(exc)
            if handler is None:
                raise  # answered (500) and logged by the outermost layer, as for any route
            response = await handler(Request(scope), exc)
        await response(scope, replay, send)

    def _admitted(self, scope: Scope, body: bytes) -> tuple[Caller, CreditCheckIn] | None:
        """The caller and the check when the route would admit them without a refusal and
        without I/O; None to let the route answer (it refuses, or must look the key up)."""
        state = scope["app"].state
        headers = _headers(scope)
        if not _is_json(headers.get(b"content-type")):
            return None
        try:
            req = CreditCheckIn.model_validate(loads(body))
            key = bearer_key(_text(headers.get(b"authorization")))
        except (ValueError, RecursionError, ValidationError, errors.AppError):
            return None  # JSONDecodeError is a ValueError
        found = state.keys.cached(key)
        if isinstance(found, Miss) or found is None or not admits(found, ORDER_ENTRY_ROLES):
            return None
        return found, req

    async def _check(self, scope: Scope, caller: Caller, req: CreditCheckIn) -> Response:
        app = scope["app"]
        state, local = app.state, scope["state"]
        scope["route"] = _ROUTE  # the request log and the metrics name the route by it
        state.limiter.check(caller.key_id)
        local["caller"] = caller
        started = time.perf_counter()
        db = state.db
        result = await within(seconds_left(db.settings, local["arrived"]),
                              check_credit(db, state.cache, req, caller))
        local["decision"] = result.decision
        return decision_response(result, req, started, state.channels)


def _replaying(first: Message, receive: Receive) -> Receive:
    """A receive that gives the message already read once more, then the client's own."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return first

    return replay


def _headers(scope: Scope) -> dict[bytes, bytes]:
    wanted: dict[bytes, bytes] = {}
    for name, value in scope["headers"]:
        if name in (b"authorization", b"content-type"):
            if name in wanted:
                return {}  # repeated: the route's header handling decides, not this layer
            wanted[name] = value
    return wanted


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("latin-1")


def _is_json(content_type: bytes | None) -> bool:
    """FastAPI reads a body as JSON when it has no content type or a JSON one."""
    if content_type is None:
        return True
    media = content_type.split(b";", 1)[0].strip().lower()
    return media == b"application/json" or (media.startswith(b"application/")
                                            and media.endswith(b"+json"))

