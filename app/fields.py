"""Pydantic field types shared by every request and response model."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel as _BaseModel
from pydantic import (
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    WithJsonSchema,
    model_validator,
)

from app.money import MAX_AMOUNT, ZERO, AmountError, format_amount, parse_amount

ID_PATTERN = r"^[A-Za-z0-9._:-]{1,64}$"
CURRENCY_PATTERN = r"^[A-Z]{3}$"
RESPONSE_AMOUNT_PATTERN = r"^-?[0-9]+\.[0-9]{2,4}$"
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class RequestModel(_BaseModel):
    """Request bodies: unknown fields are an error, never silently dropped."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _json_object(cls, data: Any) -> Any:
        # FastAPI validates bodies leniently (attributes of any object count as fields); a
        # JSON number or string is not an object with fields.
        if not isinstance(data, dict | _BaseModel):
            raise ValueError("must be a JSON object")
        return data


class ResponseModel(_BaseModel):
    """Response bodies."""

    model_config = ConfigDict(from_attributes=True)


@dataclass(frozen=True)
class _AmountRule:
    """One kind of amount: the text a string must match, and which values are allowed.

    The same pattern is published in the OpenAPI schema and enforced here, so that what the
    schema calls valid is accepted and what it calls invalid is refused.
    """

    pattern: str
    negative: bool
    zero: bool
    description: str
    maximum: Decimal | None = None

    def validate(self, value: Any) -> Decimal:
        if isinstance(value, str) and not re.fullmatch(self.pattern, value, re.ASCII):
            raise ValueError('must be a decimal number such as "1250.00" (at most 14 digits '
                             "before and 4 after the point)")
        try:
            number = parse_amount(value)
        except AmountError as exc:
            raise ValueError(str(exc)) from exc
        if number < ZERO and not self.negative:
            raise ValueError("must not be negative")
        if number == ZERO and not self.zero:
            raise ValueError("must be greater than 0" if not self.negative else "must not be 0")
        if self.maximum is not None and number > self.maximum:
            raise ValueError(f"must not be above {self.maximum}")
        return number

    def schema(self) -> dict[str, Any]:
        string: dict[str, Any] = {"type": "string", "pattern": self.pattern}
        number: dict[str, Any] = {"type": "number", "multipleOf": 0.0001,
                                  "exclusiveMaximum": float(MAX_AMOUNT)}
        if self.negative:
            number["exclusiveMinimum"] = -float(MAX_AMOUNT)
        elif self.zero:
            number["minimum"] = 0
        else:
            number["exclusiveMinimum"] = 0
        if not self.zero:
            string["not"] = {"pattern": r"^-?[0.]+$"}
            number["not"] = {"const": 0}
        if self.maximum is not None:
            number.pop("exclusiveMaximum")
            number["maximum"] = int(self.maximum)
        return {"anyOf": [string, number], "description": self.description,
                "examples": ["1250.00" if self.maximum is None else "0.20"]}

    def annotated(self) -> Any:
        return Annotated[Decimal, BeforeValidator(self.validate), WithJsonSchema(self.schema())]


_UNSIGNED = r"^[0-9]{1,14}(\.[0-9]{1,4})?$"
_SIGNED = r"^-?[0-9]{1,14}(\.[0-9]{1,4})?$"
_POSITIVE = _AmountRule(_UNSIGNED, negative=False, zero=False,
                        description="Exact decimal > 0, at most 4 decimals, < 10^14.")
_NON_NEGATIVE = _AmountRule(_UNSIGNED, negative=False, zero=True,
                            description="Exact decimal >= 0, at most 4 decimals, < 10^14.")
_NON_ZERO = _AmountRule(_SIGNED, negative=True, zero=False,
                        description="Exact decimal, not 0, at most 4 decimals; negative is a "
                                    "credit item.")

PositiveAmount = _POSITIVE.annotated()
NonNegativeAmount = _NON_NEGATIVE.annotated()
SignedAmount = _NON_ZERO.annotated()
AmountOut = Annotated[
    Decimal,
    PlainSerializer(format_amount, return_type=str),
    WithJsonSchema({"type": "string", "pattern": RESPONSE_AMOUNT_PATTERN, "examples": ["1250.00"]}),
]

Id = Annotated[str, StringConstraints(pattern=ID_PATTERN, strict=True)]
Currency = Annotated[str, StringConstraints(pattern=CURRENCY_PATTERN, strict=True)]
# PostgreSQL text cannot hold NUL; refusing it in the schema tells clients up front.
NO_NUL = r"^[^\u0000]*$"
Text = Annotated[str, StringConstraints(min_length=1, max_length=500, strict=True,
                                        pattern=NO_NUL)]


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


Ratio = _AmountRule(r"^(10(\.0{1,4})?|[0-9](\.[0-9]{1,4})?)$", negative=False, zero=True,
                    maximum=Decimal(10),
                    description="A fraction from 0 to 10, e.g. 0.20 for 20%.").annotated()


def _whole(value: Any) -> Any:
    """JSON has one number type: 30 and 30.0 are the same whole number; 30.5 is not."""
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise ValueError("must be a whole number")


def whole_number(minimum: int, maximum: int) -> Any:
    """An integer field; the bounds are published in the schema and enforced."""
    return Annotated[int, BeforeValidator(_whole), Field(ge=minimum, le=maximum),
                     WithJsonSchema({"type": "integer", "minimum": minimum,
                                     "maximum": maximum})]


Days = whole_number(0, 3650)
PaymentIndex = whole_number(1, 100)
RatioOut = Annotated[
    Decimal,
    PlainSerializer(lambda d: str(d.normalize() if d != d.to_integral() else d.quantize(
        Decimal(1))), return_type=str),
    WithJsonSchema({"type": "string", "examples": ["0.2"]}),
]


def format_rate(value: Decimal) -> str:
    """A rate as plain decimal text without trailing zeros (never an exponent)."""
    return format(value.normalize(), "f")


RateOut = Annotated[Decimal, PlainSerializer(format_rate, return_type=str), WithJsonSchema({
    "type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?$", "examples": ["0.9215"]})]
