"""convert(): the product rounded once, half-even, to 4 decimals; Conversion.of around it."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

import pytest

from app.errors import Unprocessable
from app.fields import format_rate
from app.fx.convert import Conversion, convert

D = Decimal


@pytest.mark.parametrize(("amount", "rate", "expected"), [
    # Exactly half a unit of the 4th decimal: to the even neighbour, down and up.
    ("1.0001", "0.5", "0.5000"),
    ("1.0003", "0.5", "0.5002"),
    ("2", "1.000025", "2.0000"),
    ("2", "1.000075", "2.0002"),
    ("-1.0001", "0.5", "-0.5000"),
    ("-1.0003", "0.5", "-0.5002"),
    # Just off the half: the nearest, whatever the parity.
    ("1.0001", "0.5000000001", "0.5001"),
    ("1.0001", "0.4999999999", "0.5000"),
    ("4800", "0.9215", "4423.2000"),
    ("0.0001", "0.0000000001", "0.0000"),
])
def test_convert_rounds_half_even_to_four_decimals(amount: str, rate: str, expected: str
                                                   ) -> None:
    result = convert(D(amount), D(rate))
    assert result == D(expected)
    assert result.as_tuple().exponent == -4


def test_the_product_is_rounded_once_not_first_to_28_digits() -> None:
    # Exactly 210000000002000.00105000000001 (29 digits): rounding it to the default
    # context's 28 digits first would leave ...0010500000000, which half-even takes down.
    amount, rate = D("20000000000000.0001"), D("10.5000000001")
    assert (amount * rate).quantize(D("0.0001"), rounding=ROUND_HALF_EVEN) == \
        D("210000000002000.0010")
    assert convert(amount, rate) == D("210000000002000.0011")


def test_the_same_currency_is_not_converted() -> None:
    same = Conversion.of(D("12.5000"), "EUR", "EUR", None)
    assert same == Conversion(D("12.5000"), "EUR", D("12.5000"), None)
    assert Conversion.of(D("12.5"), "EUR", "EUR", D("2")).fx_rate is None


def test_another_currency_is_converted_at_the_rate() -> None:
    conv = Conversion.of(D("100.0001"), "USD", "EUR", D("0.5"))
    assert conv == Conversion(D("100.0001"), "USD", D("50.0000"), D("0.5"))


def test_without_a_rate_it_is_fx_rate_missing() -> None:
    with pytest.raises(Unprocessable) as caught:
        Conversion.of(D("1"), "USD", "EUR", None)
    assert caught.value.code == "fx_rate_missing"
    assert "USD -> EUR" in caught.value.detail


def test_a_converted_amount_must_stay_below_10_to_the_14() -> None:
    assert Conversion.of(D("99999999999999.9999"), "USD", "EUR", D("1")).converted_amount == \
        D("99999999999999.9999")
    with pytest.raises(Unprocessable) as caught:
        Conversion.of(D("10000000"), "USD", "EUR", D("10000000"))
    assert caught.value.code == "converted_amount_too_large"
    with pytest.raises(Unprocessable):
        Conversion.of(D("-10000000"), "USD", "EUR", D("10000000"))


@pytest.mark.parametrize(("rate", "text"), [
    ("0.9200000000", "0.92"), ("100", "100"), ("100.0000000000", "100"),
    ("0.0000001", "0.0000001"), ("123456789.0000000001", "123456789.0000000001")])
def test_rates_are_written_plainly(rate: str, text: str) -> None:
    assert format_rate(D(rate)) == text
