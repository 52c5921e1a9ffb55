"""Exact money: parsing, bounds and formatting. Decimal only, never float."""

from __future__ import annotations

import re
from decimal import Decimal

SCALE = 4
QUANTUM = Decimal(1).scaleb(-SCALE)
MAX_AMOUNT = Decimal(10) ** 14
ZERO = Decimal(0)
_DECIMAL_TEXT = re.compile(r"-?[0-9]+(\.[0-9]+)?", re.ASCII)


class AmountError(ValueError):
    """An amount that is not an exact, bounded decimal."""


def parse_amount(value: object) -> Decimal:
    """Turn a JSON string or number into an exact Decimal with at most four decimals."""
    if isinstance(value, bool | float):
        raise AmountError("must be a decimal string or an exact JSON number")
    if isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, Decimal):
        number = value
    elif isinstance(value, str):
        # Plain ASCII digits only: Decimal() itself would also take " 1", "1_0", "1e3",
        # "NaN" and non-ASCII digits.
        if not _DECIMAL_TEXT.fullmatch(value):
            raise AmountError("must be a decimal number such as \"1250.00\"")
        number = Decimal(value)
    else:
        raise AmountError("must be a decimal string or number")
    if not number.is_finite():
        raise AmountError("must be a finite number")
    exponent = number.as_tuple().exponent
    assert isinstance(exponent, int)
    if exponent < -SCALE:
        raise AmountError(f"must have at most {SCALE} decimal places")
    # adjusted() is the power of ten of the leading digit: no arithmetic, so no overflow
    # for inputs like 1e999999999.
    if number and number.adjusted() >= 14:
        raise AmountError("must be below 10^14")
    return number.quantize(QUANTUM)


def format_amount(value: Decimal) -> str:
    """Render with two decimals, or up to four when the cents are not enough."""
    exact = value.quantize(QUANTUM)
    two = exact.quantize(Decimal("0.01"))
    return str(two if two == exact else exact.normalize().quantize(_places(exact)))


def _places(value: Decimal) -> Decimal:
    exponent = value.normalize().as_tuple().exponent
    assert isinstance(exponent, int)
    return Decimal(1).scaleb(max(exponent, -SCALE))
