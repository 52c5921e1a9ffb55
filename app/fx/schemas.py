"""Request and response bodies of exchange rates, and the rate field types others share."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, WithJsonSchema

from app.fields import IsoDate, RateOut, RequestModel, ResponseModel

RATE_PLACES = 10  # what fx_rates.rate (NUMERIC(24,10)) holds
MAX_RATE_DIGITS = 9  # a rate is below 10^9: far above any real one, far below overflow
RATE_PATTERN = rf"^[0-9]{{1,{MAX_RATE_DIGITS}}}(\.[0-9]{{1,{RATE_PLACES}}})?$"
FX_CURSOR = r"^[A-Z]{3}:[A-Z]{3}:[0-9]{4}-[0-9]{2}-[0-9]{2}$"


def _rate(value: Any) -> Decimal:
    if isinstance(value, str) and not re.fullmatch(RATE_PATTERN, value, re.ASCII):
        raise ValueError(f'must be a decimal number such as "0.9215" (at most '
                         f"{MAX_RATE_DIGITS} digits before and {RATE_PLACES} after the point)")
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise ValueError("must be a decimal string or an exact JSON number")
    number = Decimal(value)
    if not number.is_finite():
        raise ValueError("must be a finite number")
    exponent = number.as_tuple().exponent
    assert isinstance(exponent, int)
    if exponent < -RATE_PLACES:
        raise ValueError(f"must have at most {RATE_PLACES} decimal places")
    if number <= 0:
        raise ValueError("must be greater than 0")
    # adjusted(): the leading digit's power of ten, without arithmetic (1e999999999 is safe).
    if number.adjusted() >= MAX_RATE_DIGITS:
        raise ValueError(f"must be below 10^{MAX_RATE_DIGITS}")
    return number


RateIn = Annotated[Decimal, BeforeValidator(_rate), WithJsonSchema({
    "anyOf": [{"type": "string", "pattern": RATE_PATTERN, "not": {"pattern": r"^[0.]+$"}},
              {"type": "number", "exclusiveMinimum": 0,
               "exclusiveMaximum": 10 ** MAX_RATE_DIGITS, "multipleOf": 1e-10}],
    "description": f"Exact decimal > 0, at most {RATE_PLACES} decimals, below "
                   f"10^{MAX_RATE_DIGITS}.",
    "examples": ["0.9215"]})]
class FxRateIn(RequestModel):
    rate: RateIn = Field(description="1 unit of `from` = `rate` units of `to`.")
    as_of: IsoDate = Field(description="The day (UTC) from which the rate applies; a later "
                                       "dated rate of the pair takes over on its day.")

    model_config = {"json_schema_extra": {"examples": [{"rate": "0.9215",
                                                        "as_of": "2026-11-23"}]}}


class FxRateOut(ResponseModel):
    from_: str = Field(alias="from", serialization_alias="from")
    to: str
    as_of: dt.date
    rate: RateOut
    updated_at: dt.datetime
    updated_by: str

    model_config = {"populate_by_name": True}


class FxRatesPage(ResponseModel):
    items: list[FxRateOut] = Field(description="By from, to, then as_of (oldest first).")
    next_cursor: str | None
