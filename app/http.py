"""HTTP plumbing: JSON bodies parsed to Decimal (never float), replay headers."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from decimal import Decimal
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

REPLAYED_HEADER = "Idempotent-Replayed"


def _no_constants(name: str) -> Any:
    raise json.JSONDecodeError(f"{name} is not valid JSON", name, 0)


def loads(body: bytes | str) -> Any:
    """Parse JSON with every non-integer number as an exact Decimal; NaN/Infinity rejected."""
    return json.loads(body, parse_float=Decimal, parse_constant=_no_constants)


class DecimalJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = loads(await self.body())
        return self._json


class DecimalRoute(APIRoute):
    """Route class whose request bodies are parsed by `loads`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def decimal_handler(request: Request) -> Response:
            return await handler(DecimalJSONRequest(request.scope, request.receive))

        return decimal_handler


def mark_replayed(response: Response, replayed: bool) -> None:
    """Set the status and header DESIGN.md gives an idempotent replay."""
    if replayed:
        response.status_code = 200
        response.headers[REPLAYED_HEADER] = "true"
