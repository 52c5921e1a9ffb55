"""Exact amounts: what is accepted, what is refused, how it is written."""

from decimal import Decimal as D

import pytest

from app.decimal_json import loads
from app.money import AmountError, format_amount, parse_amount


@pytest.mark.parametrize(("raw", "exact"), [
    ("1000", D("1000")), (1000, D("1000")), ("1000.00", D("1000")), (D("0.0001"), D("0.0001")),
    ("99999999999999.9999", D("99999999999999.9999")), ("-5.5", D("-5.5")),
])
def test_accepts_exact_decimals(raw, exact):
    assert parse_amount(raw) == exact


@pytest.mark.parametrize("raw", [
    1.5, True, "NaN", "Infinity", "-Infinity", "1e20", "100000000000000", "1.00001", "", " 1",
    "1e3", "+5", ".5", "5.", "\uff11\uff10",
    "1_000", "abc", None, [], {},
])
def test_refuses_everything_else(raw):
    with pytest.raises(AmountError):
        parse_amount(raw)


@pytest.mark.parametrize(("value", "text"), [
    (D("1250"), "1250.00"), (D("1250.5"), "1250.50"), (D("12.3456"), "12.3456"),
    (D("12.3450"), "12.345"), (D("-3"), "-3.00"), (D("0"), "0.00"),
])
def test_formats_with_two_to_four_decimals(value, text):
    assert format_amount(value) == text


def test_json_numbers_become_decimals_never_floats():
    body = loads(b'{"a": 0.1, "b": 10, "c": 1e2}')
    assert body == {"a": D("0.1"), "b": 10, "c": D("1e2")}
    assert isinstance(body["a"], D)


@pytest.mark.parametrize("raw", [b'{"a": NaN}', b'{"a": Infinity}', b'{"a": -Infinity}'])
def test_json_constants_are_malformed(raw):
    import json

    with pytest.raises(json.JSONDecodeError):
        loads(raw)
