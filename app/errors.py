"""Every failure as RFC 9457 problem+json, with a stable machine-readable `code`."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger("creditgate.errors")


class AppError(Exception):
    """A failure the client can act on; rendered as problem+json."""

    status = 400
    code = "bad_request"
    title = "Bad request"

    def __init__(self, detail: str, *, code: str | None = None,
                 extra: dict[str, Any] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code
        self.extra = extra or {}


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
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
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


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    codes = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large",
             415: "unsupported_media_type", 400: "bad_request"}
    code = codes.get(exc.status_code, "http_error")
    title = code.replace("_", " ").capitalize()
    detail = exc.detail if isinstance(exc.detail, str) else title
    return problem(exc.status_code, code, title, detail, headers=exc.headers)


async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
    if is_database_unavailable(exc):
        log.warning("database unavailable: %s", type(exc).__name__)
        return problem(503, "unavailable", "Service unavailable",
                       "the database is not reachable; nothing was recorded, retry later",
                       headers={"Retry-After": "1"})
    log.exception("unhandled error")
    return problem(500, "internal_error", "Internal error",
                   "an unexpected error occurred; nothing was recorded")


def is_database_unavailable(exc: BaseException) -> bool:
    """True for failures that mean "the database cannot be reached right now"."""
    from sqlalchemy.exc import DBAPIError
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    if isinstance(exc, PoolTimeout | ConnectionError | TimeoutError | OSError):
        return True
    if isinstance(exc, DBAPIError):
        return bool(exc.connection_invalidated) or _is_connection_error(exc.orig)
    return False


def _is_connection_error(orig: BaseException | None) -> bool:
    name = type(orig).__name__ if orig is not None else ""
    return any(word in name for word in ("Connection", "CannotConnect", "Timeout",
                                         "AdminShutdown", "CannotConnectNow"))


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into problem+json."""
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
