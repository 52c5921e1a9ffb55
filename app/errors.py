"""Every failure as RFC 9457 problem+json, with a stable machine-readable `code`."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger("creditgate.errors")


class AppError(Exception):
    """A failure the client can act on; rendered as problem+json."""

    status = 400
    code = "bad_request"
    title = "Bad request"

    def __init__(self, detail: str, *, code: str | None = None,
                 extra: dict[str, Any] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code
        self.extra = extra or {}
        self.headers = headers or {}


class NotFound(AppError):
    status, code, title = 404, "not_found", "Not found"


class Conflict(AppError):
    status, code, title = 409, "conflict", "Conflict"


class Unprocessable(AppError):
    status, code, title = 422, "unprocessable", "Unprocessable request"


class Unauthorized(AppError):
    status, code, title = 401, "unauthorized", "Unauthorized"


class Forbidden(AppError):
    status, code, title = 403, "forbidden", "Forbidden"


class Unavailable(AppError):
    status, code, title = 503, "unavailable", "Service unavailable"


def problem(status: int, code: str, title: str, detail: str,
            headers: Mapping[str, str] | None = None, **extra: Any) -> JSONResponse:
    """A problem+json response."""
    body = {"type": f"urn:creditgate:problem:{code}", "title": title, "status": status,
            "detail": detail, "code": code, **extra}
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _field(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc)


async def _app_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    headers = dict(exc.headers)
    if exc.status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return problem(exc.status, exc.code, exc.title, exc.detail, headers=headers, **exc.extra)


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    if any(e.get("type") == "json_invalid" for e in errors):
        return problem(400, "invalid_json", "Malformed JSON",
                       "the request body is not valid JSON")
    fields = [{"field": _field(tuple(e.get("loc", ()))), "message": str(e.get("msg", ""))}
              for e in errors]
    names = ", ".join(f["field"] for f in fields)
    return problem(422, "validation_error", "Invalid request", f"invalid fields: {names}",
                   errors=fields)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 405:
        return _method_not_allowed(request)
    codes = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large",
             415: "unsupported_media_type", 400: "bad_request"}
    code = codes.get(exc.status_code, "http_error")
    title = code.replace("_", " ").capitalize()
    detail = exc.detail if isinstance(exc.detail, str) else title
    return problem(exc.status_code, code, title, detail, headers=exc.headers)


# Every method a route could be registered for (CONNECT is never served by an ASGI route).
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE")


def _allowed_methods(request: Request) -> list[str]:
    """The methods the router would dispatch for this path: each route is asked, through the
    routing protocol itself (`matches`), whether it would fully match the request made with
    that method. Reading `path_regex` off `app.routes` misses every route FastAPI keeps
    inside an included router (its `app.routes` holds one wrapper per `include_router`),
    while `matches` recurses into those wrappers, mounts and sub-routers as dispatch does."""
    allowed = []
    for method in _METHODS:
        # A fresh FastAPI scope namespace: matching records its choices there.
        probe = {**request.scope, "method": method, "fastapi": {}}
        if any(route.matches(probe)[0] is Match.FULL for route in request.app.routes):
            allowed.append(method)
    return allowed


def _method_not_allowed(request: Request) -> JSONResponse:
    """405 naming every method the path supports (RFC 9110 §15.5.6: with an `Allow`)."""
    allow = ", ".join(_allowed_methods(request))
    return problem(405, "method_not_allowed", "Method not allowed",
                   f"{request.method} is not supported here; use {allow}",
                   headers={"Allow": allow})


async def _infrastructure(request: Request, exc: Exception) -> JSONResponse:
    """Database and network failures, answered here so that they are never re-raised (a
    re-raised error would make the server drop the client's connection)."""
    if is_database_unavailable(exc):
        orig = getattr(exc, "orig", None)
        log.warning("database unavailable: %s (%s: %s)", type(exc).__name__,
                    type(orig).__name__, str(orig)[:200] if orig is not None else "")
        return problem(503, "unavailable", "Service unavailable",
                       "the database is not reachable; retry with the same request: a "
                       "decision that was taken is replayed, none is taken twice",
                       headers={"Retry-After": "1"})
    if is_schema_outdated(exc):
        return _schema_outdated(exc)
    if is_deadlock(exc):
        # Rolled back whole by the database; every write is idempotent by its natural key.
        log.warning("deadlock broken by the database: %s", type(exc).__name__)
        return problem(503, "busy", "Service busy",
                       "a concurrent change of the same customers got in the way; retry with "
                       "the same request: nothing of this one was recorded",
                       headers={"Retry-After": "1"})
    return await _unexpected(request, exc)


# undefined_table, undefined_column: the code runs against a schema it was not built for.
_SCHEMA_STATES = ("42P01", "42703")


def is_schema_outdated(exc: BaseException) -> bool:
    """True for failures that mean "the database is not migrated to this code's schema"."""
    return sqlstate(exc) in _SCHEMA_STATES


def _schema_outdated(exc: BaseException) -> JSONResponse:
    from app.schema import MIGRATE_HINT, shipped

    log.error("database schema outdated (SQLSTATE %s): %s", sqlstate(exc), MIGRATE_HINT)
    expected = ", ".join(shipped().heads) or None
    return problem(503, "schema_outdated", "Service unavailable",
                   f"the database schema is not the one this version needs (revision "
                   f"{expected}): an operator must {MIGRATE_HINT}",
                   headers={"Retry-After": "30"}, expected_revision=expected)


async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
    # Exception messages can quote data (asyncpg names the argument it could not encode,
    # PostgreSQL the input it could not parse, pydantic the value it refused), so only the
    # types, frames and SQLSTATE are logged; the messages too only at DEBUG, on purpose.
    log.error("unhandled error", extra={"fields": _described(exc)},
              exc_info=exc if log.isEnabledFor(logging.DEBUG) else None)
    return problem(500, "internal_error", "Internal error",
                   "an unexpected error occurred; nothing was recorded")


class _WithoutMessages(logging.Filter):
    """Starlette re-raises what `_unexpected` answered, and uvicorn logs it again with its
    traceback: the same exception, so the same redaction."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None and not logging.getLogger(record.name).isEnabledFor(logging.DEBUG):
            record.fields = {**getattr(record, "fields", {}), **_described(exc)}
            record.exc_info, record.exc_text = None, None
        return True


def _described(exc: BaseException) -> dict[str, str]:
    fields = {"error_type": _qualname(exc), "traceback": _traceback_without_messages(exc)}
    state = sqlstate(exc)
    if state:
        fields["sqlstate"] = state
    return fields


def _qualname(exc: BaseException) -> str:
    kind = type(exc)
    return f"{kind.__module__}.{kind.__qualname__}"


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception and those it was raised from or during, outermost first."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not seen for seen in chain):
        chain.append(current)
        current = current.__cause__ or (None if current.__suppress_context__
                                        else current.__context__)
    return chain


def _traceback_without_messages(exc: BaseException) -> str:
    """Python's traceback layout, innermost cause first, each exception by its type alone."""
    parts = ["Traceback (most recent call last):\n"
             + "".join(traceback.format_tb(e.__traceback__)) + _qualname(e)
             for e in reversed(_chain(exc))]
    return "\n\nwhich led to:\n\n".join(parts)


def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a database error, looked for down its chain of causes."""
    for e in _chain(exc):
        state = getattr(e, "sqlstate", None)
        if isinstance(state, str) and state:
            return state
    return None


def is_database_unavailable(exc: BaseException) -> bool:
    """True for failures that mean "the database cannot be reached right now"."""
    from sqlalchemy.exc import DBAPIError
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    if isinstance(exc, PoolTimeout | ConnectionError | TimeoutError | OSError):
        return True
    if isinstance(exc, DBAPIError):
        return bool(exc.connection_invalidated) or _is_connection_error(exc.orig)
    return _is_connection_error(exc)


_UNAVAILABLE_STATES = ("08", "53", "57P01", "57P02", "57P03")


def _is_connection_error(orig: BaseException | None) -> bool:
    # SQLAlchemy's asyncpg adapter wraps the driver's exception: look down the chain.
    while orig is not None:
        if isinstance(orig, ConnectionError | TimeoutError | OSError):
            return True
        state = str(getattr(orig, "sqlstate", "") or "")
        if state.startswith(_UNAVAILABLE_STATES):
            return True
        name = type(orig).__name__
        if any(w in name for w in ("ConnectionDoesNotExist", "CannotConnect", "ConnectionFailure",
                                   "TooManyConnections", "AdminShutdown", "InterfaceError")):
            return True
        orig = orig.__cause__ or orig.__context__
    return False


Handler = Callable[[Request, Exception], Awaitable[JSONResponse]]
# Answered where raised; anything else reaches `_unexpected` in the outermost layer, which
# answers 500 and re-raises for the server to log.
_HANDLERS: dict[type[Exception], Handler] = {
    AppError: _app_error, RequestValidationError: _validation_error,
    StarletteHTTPException: _http_error, SQLAlchemyError: _infrastructure,
    asyncpg.PostgresError: _infrastructure, asyncpg.InterfaceError: _infrastructure,
    OSError: _infrastructure}


def handler_for(exc: Exception) -> Handler | None:
    """The handler that answers `exc` where it was raised, found as Starlette finds it (the
    nearest class up the exception's MRO); None when it is left to the outermost layer."""
    for kind in type(exc).__mro__:
        if kind in _HANDLERS:
            return _HANDLERS[kind]
    return None


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into problem+json."""
    for kind, handler in _HANDLERS.items():
        app.add_exception_handler(kind, handler)
    app.add_exception_handler(Exception, _unexpected)
    server_log = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _WithoutMessages) for f in server_log.filters):
        server_log.addFilter(_WithoutMessages())



def is_deadlock(exc: BaseException) -> bool:
    """True when PostgreSQL broke a deadlock by failing this transaction (40P01)."""
    return sqlstate(exc) == "40P01"
