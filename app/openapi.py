"""The published OpenAPI document: every error response documented as problem+json."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

PROBLEM_JSON = "application/problem+json"
PROBLEM = {
    "type": "object",
    "title": "Problem",
    "description": "RFC 9457 problem details; `code` is stable and machine-readable.",
    "required": ["type", "title", "status", "detail", "code"],
    "properties": {
        "type": {"type": "string", "examples": ["urn:creditgate:problem:conflict"]},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string", "examples": ["conflict"]},
        "errors": {
            "type": "array",
            "description": "For validation errors: each offending field.",
            "items": {"type": "object", "required": ["field", "message"],
                      "properties": {"field": {"type": "string"},
                                     "message": {"type": "string"}}},
        },
        "checks": {"type": "object", "additionalProperties": {"type": "string"}},
        "invoice_ids": {
            "type": "array", "items": {"type": "string"},
            "description": "For a refused open-items snapshot: the items that caused it "
                           "(at most 100).",
        },
    },
}
_ERRORS = {
    "400": "Malformed JSON (`invalid_json`)",
    "401": "Missing, unknown or revoked API key (`unauthorized`)",
    "403": "The key's role may not call this endpoint (`forbidden`)",
    "404": "An id in the path or body names nothing (`*_not_found`)",
    "409": "Conflicts with what is stored: an idempotency key reused with a different body "
           "(`conflict`), or an order in the wrong state (`invalid_state`)",
    "413": "Body too large (`payload_too_large`)",
    "422": "Invalid fields (`validation_error`, with `errors`), or a currency other than "
           "the account's without an exchange rate for the day (`fx_rate_missing`)",
    "429": "Rate limit of the key exceeded (`rate_limited`); see `Retry-After`",
    "503": "The database is unavailable or too slow (`unavailable`); nothing is guessed. "
           "A policy change that could not get in between running decisions (`busy`)",
}
_BODYLESS = {"400", "413"}


def install(app: FastAPI) -> None:
    """Replace FastAPI's default document with one that tells clients every outcome."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _document(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _document(app: FastAPI) -> dict[str, Any]:
    doc = get_openapi(title=app.title, version=app.version, description=app.description,
                      routes=app.routes)
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    schemas["Problem"] = PROBLEM
    # Declared here rather than by a per-request dependency: authentication itself is
    # app/deps.py's `require`, on every /v1 route.
    doc["components"]["securitySchemes"] = {"apiKey": {
        "type": "http", "scheme": "bearer",
        "description": "`Authorization: Bearer <api key>` (`creditgate keys create`)"}}
    problem_ref = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for path, operations in doc.get("paths", {}).items():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            if not path.startswith("/v1/"):
                continue
            operation["security"] = [{"apiKey": []}]
            has_body = "requestBody" in operation
            for status, description in _ERRORS.items():
                if status in _BODYLESS and not has_body:
                    continue
                responses[status] = {"description": description, "content": problem_ref}
    return doc
