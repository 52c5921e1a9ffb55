"""HTML forms: read a urlencoded body, turn its strings into what the API's request models
take, and turn the models' refusals into sentences shown next to the fields."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import parse_qsl

from fastapi import Request
from pydantic import BaseModel, ValidationError

from app.errors import AppError

M = TypeVar("M", bound=BaseModel)
FORM_TYPE = "application/x-www-form-urlencoded"


class Form:
    """A submitted form: every field's values in order (checkboxes may repeat)."""

    def __init__(self, pairs: Iterable[tuple[str, str]]) -> None:
        self._values: dict[str, list[str]] = {}
        for name, value in pairs:
            self._values.setdefault(name, []).append(value)

    def get(self, name: str, default: str = "") -> str:
        values = self._values.get(name)
        return values[0] if values else default

    def all(self, name: str) -> list[str]:
        return list(self._values.get(name, []))

    def text(self, name: str) -> str | None:
        """The trimmed value; None when blank or absent."""
        value = self.get(name).strip()
        return value or None

    def as_dict(self) -> dict[str, str]:
        return {name: values[0] for name, values in self._values.items()}


async def read_form(request: Request) -> Form:
    """The urlencoded body (the BodyLimit middleware has bounded its size already)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != FORM_TYPE:
        return Form([])
    body = (await request.body()).decode("utf-8", errors="replace")
    return Form(parse_qsl(body, keep_blank_values=True, max_num_fields=2000))


def whole(value: str | None) -> Any:
    """A whole-number field: digits become an int, anything else goes on to be refused."""
    if value is None:
        return None
    stripped = value.strip()
    return int(stripped) if stripped.lstrip("-").isdigit() and len(stripped) < 12 else stripped


@dataclass
class Errors:
    """Sentences per field name ('' for the form as a whole)."""

    fields: dict[str, str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.fields)

    def add(self, name: str, sentence: str) -> None:
        self.fields.setdefault(name, sentence)

    def get(self, name: str) -> str | None:
        return self.fields.get(name)

    @property
    def general(self) -> str | None:
        return self.fields.get("")


def sentence(message: str) -> str:
    text = message.removeprefix("Value error, ").removeprefix("Assertion failed, ").strip()
    if not text:
        return "This value is not accepted."
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


def _field_name(loc: tuple[Any, ...], known: Mapping[str, str]) -> str:
    parts = [str(p) for p in loc if not isinstance(p, int)]
    while parts:
        name = ".".join(parts)
        if name in known:
            return known[name]
        parts = parts[:-1]
    return ""


def validate(model: type[M], data: dict[str, Any], errors: Errors,
             fields: Mapping[str, str] | None = None) -> M | None:
    """The model, or None with the refusals added to `errors`. `fields` maps a model path
    (e.g. "financials.equity") to the form field that shows it (default: the same name)."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        for e in exc.errors():
            loc = tuple(e.get("loc", ()))
            name = (".".join(str(p) for p in loc if not isinstance(p, int)) if fields is None
                    else _field_name(loc, fields))
            errors.add(name, sentence(str(e.get("msg", ""))))
        return None


def app_error(exc: AppError, errors: Errors, fields: Mapping[str, str] | None = None) -> None:
    """A service's refusal: next to the field it names, else for the whole form."""
    named = [e for e in exc.extra.get("errors", []) if isinstance(e, dict)]
    for e in named:
        path = str(e.get("field", "")).removeprefix("body.")
        errors.add((fields or {}).get(path, path), sentence(str(e.get("message", ""))))
    if not named:
        errors.add("", sentence(exc.detail))
