"""Pydantic field types shared by every request and response model."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    PlainSerializer,
    StringConstraints,
    WithJsonSchema,
)
from pydantic import BaseModel as _BaseModel

from app.money import MAX_AMOUNT, ZERO, AmountError, format_amount, parse_amount

ID_PATTERN = r"^[A-Za-z0-9._:-]{1,64}$"
CURRENCY_PATTERN = r"^[A-Z]{3}$"
AMOUNT_STRING_PATTERN = r"^-?[0-9]{1,14}(\.[0-9]{1,4})?$"
RESPONSE_AMOUNT_PATTERN = r"^-?[0-9]+\.[0-9]{2,4}$"
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class RequestModel(_BaseModel):
    """Request bodies: unknown fields are an error, never silently dropped."""

    model_config = ConfigDict(extra="forbid")


class ResponseModel(_BaseModel):
    """Response bodies."""

    model_config = ConfigDict(from_attributes=True)


def _positive(value: Decimal) -> Decimal:
    if value <= ZERO:
        raise ValueError("must be greater than 0")
    return value


def _non_negative(value: Decimal) -> Decimal:
    if value < ZERO:
        raise ValueError("must not be negative")
    return value


def _non_zero(value: Decimal) -> Decimal:
    if value == ZERO:
        raise ValueError("must not be 0")
    return value


def _to_amount(value: Any) -> Decimal:
    try:
        return parse_amount(value)
    except AmountError as exc:
        raise ValueError(str(exc)) from exc


def _amount_schema(minimum: str, description: str) -> dict[str, Any]:
    number: dict[str, Any] = {
        "type": "number",
        "multipleOf": 0.0001,
        "exclusiveMaximum": float(MAX_AMOUNT),
    }
    string: dict[str, Any] = {"type": "string", "pattern": AMOUNT_STRING_PATTERN}
    if minimum == "positive":
        number["exclusiveMinimum"] = 0
        string["pattern"] = r"^[0-9]{1,14}(\.[0-9]{1,4})?$"
    elif minimum == "non_negative":
        number["minimum"] = 0
        string["pattern"] = r"^[0-9]{1,14}(\.[0-9]{1,4})?$"
    else:
        number["exclusiveMinimum"] = -float(MAX_AMOUNT)
    return {"anyOf": [string, number], "description": description, "examples": ["1250.00"]}


PositiveAmount = Annotated[
    Decimal,
    BeforeValidator(_to_amount),
    AfterValidator(_positive),
    WithJsonSchema(_amount_schema("positive", "Exact decimal > 0, at most 4 decimals, < 10^14.")),
]
NonNegativeAmount = Annotated[
    Decimal,
    BeforeValidator(_to_amount),
    AfterValidator(_non_negative),
    WithJsonSchema(_amount_schema("non_negative", "Exact decimal >= 0, at most 4 decimals.")),
]
SignedAmount = Annotated[
    Decimal,
    BeforeValidator(_to_amount),
    AfterValidator(_non_zero),
    WithJsonSchema(_amount_schema("signed", "Exact decimal, not 0; negative is a credit item.")),
]
AmountOut = Annotated[
    Decimal,
    PlainSerializer(format_amount, return_type=str),
    WithJsonSchema({"type": "string", "pattern": RESPONSE_AMOUNT_PATTERN, "examples": ["1250.00"]}),
]

Id = Annotated[str, StringConstraints(pattern=ID_PATTERN, strict=True)]
Currency = Annotated[str, StringConstraints(pattern=CURRENCY_PATTERN, strict=True)]
def without_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


Text = Annotated[str, StringConstraints(min_length=1, max_length=500, strict=True),
                 AfterValidator(without_nul)]


def _iso_date(value: Any) -> Any:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if not isinstance(value, str) or not _DATE.match(value):
        raise ValueError("must be a calendar date as YYYY-MM-DD")
    return dt.date.fromisoformat(value)


IsoDate = Annotated[
    dt.date,
    BeforeValidator(_iso_date),
    WithJsonSchema({"type": "string", "format": "date", "examples": ["2026-12-31"]}),
]


def _ratio(value: Decimal) -> Decimal:
    if not ZERO <= value <= 10:
        raise ValueError("must be between 0 and 10")
    return value


Ratio = Annotated[
    Decimal,
    BeforeValidator(_to_amount),
    AfterValidator(_ratio),
    WithJsonSchema({"anyOf": [
        {"type": "string", "pattern": r"^[0-9]{1,2}(\.[0-9]{1,4})?$"},
        {"type": "number", "minimum": 0, "maximum": 10, "multipleOf": 0.0001}],
        "description": "A fraction, e.g. 0.20 for 20%.", "examples": ["0.20"]}),
]
RatioOut = Annotated[
    Decimal,
    PlainSerializer(lambda d: str(d.normalize() if d != d.to_integral() else d.quantize(
        Decimal(1))), return_type=str),
    WithJsonSchema({"type": "string", "examples": ["0.2"]}),
]
