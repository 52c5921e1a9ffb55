"""Converting an amount into the account's currency (pure): half-even to 4 decimals."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Context, Decimal

from app.errors import Unprocessable
from app.money import MAX_AMOUNT, QUANTUM

# Money (NUMERIC(20,4)) times a rate (NUMERIC(24,10)) is exact in 44 digits: the product is
# rounded once, half-even, and not first to the default context's 28 digits.
_EXACT = Context(prec=50)


def convert(amount: Decimal, rate: Decimal) -> Decimal:
    """`amount` at `rate`, rounded half-even to 4 decimals (DESIGN.md 2.6)."""
    return _EXACT.multiply(amount, rate).quantize(QUANTUM, rounding=ROUND_HALF_EVEN,
                                                  context=_EXACT)


def counted_in(amount: Decimal, currency: str, account_currency: str, rate: Decimal | None
               ) -> Decimal | None:
    """What `amount` counts for in the account's currency at `rate`; None when it is in
    another currency and has no rate (a security then counts for nothing)."""
    if currency == account_currency:
        return amount
    return None if rate is None else convert(amount, rate)


@dataclass(frozen=True)
class Conversion:
    """A document amount and what it counts for in the account's currency; `fx_rate` is
    None when the document is in the account's currency."""

    amount: Decimal
    currency: str
    converted_amount: Decimal
    fx_rate: Decimal | None = None

    @classmethod
    def of(cls, amount: Decimal, currency: str, account_currency: str,
           rate: Decimal | None) -> Conversion:
        """The conversion of `amount` with the rate found for its date (None: none found)."""
        if currency == account_currency:
            return cls(amount, currency, amount)
        if rate is None:
            raise missing_rate(currency, account_currency)
        converted = convert(amount, rate)
        if abs(converted) >= MAX_AMOUNT:
            raise Unprocessable(f"{amount} {currency} at {rate} is {converted} "
                                f"{account_currency}: amounts must stay below 10^14",
                                code="converted_amount_too_large")
        return cls(amount, currency, converted, rate)


def missing_rate(currency: str, account_currency: str) -> Unprocessable:
    return Unprocessable(
        f"no exchange rate {currency} -> {account_currency} on or before the document's date; "
        f"PUT /v1/fx-rates/{currency}/{account_currency} first", code="fx_rate_missing")
