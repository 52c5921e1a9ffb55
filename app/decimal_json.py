"""Request bodies parsed as JSON with every non-integer number an exact Decimal (never float)."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from decimal import Decimal
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute


def _no_constants(name: str) -> Any:
    raise json.JSONDecodeError(f"{name} is not valid JSON", name, 0)


def loads(body: bytes | str) -> Any:
    """Parse JSON with every non-integer number as an exact Decimal; NaN/Infinity rejected."""
    if isinstance(body, bytes):
        try:
            body = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise json.JSONDecodeError("the body is not UTF-8", repr(body[:40]), 0) from exc
    return json.loads(body, parse_float=Decimal, parse_constant=_no_constants)


_MALFORMED = object()


class DecimalJSONRequest(Request):
    """Parses with `loads`. A malformed body is only reported once the caller is known to be
    allowed here, so that a stranger learns nothing from it (401/403 come first)."""

    malformed: json.JSONDecodeError | None = None

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            try:
                self._json = loads(await self.body())
            except json.JSONDecodeError as exc:
                self.malformed = exc
                self._json = _MALFORMED
        return self._json


class DecimalRoute(APIRoute):
    """Route class whose request bodies are parsed by `loads`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def decimal_handler(request: Request) -> Response:
            wrapped = DecimalJSONRequest(request.scope, request.receive)
            try:
                return await handler(wrapped)
            except RequestValidationError:
                if wrapped.malformed is not None:
                    raise _invalid_json(wrapped.malformed) from None
                raise

        return decimal_handler


def _invalid_json(exc: json.JSONDecodeError) -> RequestValidationError:
    return RequestValidationError([{"type": "json_invalid", "loc": ("body", exc.pos),
                                    "msg": "JSON decode error", "input": {},
                                    "ctx": {"error": exc.msg}}])
