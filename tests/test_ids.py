"""app/ids.py: ULID layout and order, without a database."""

from __future__ import annotations

import time

from hypothesis import given
from hypothesis import strategies as st

from app.ids import new_id, spelled

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def digit_by_digit(value: int) -> str:
    """The ULID spelling of a 128-bit value, a digit at a time (the specification's way)."""
    digits = []
    for _ in range(26):
        value, digit = divmod(value, 32)
        digits.append(ALPHABET[digit])
    return "".join(reversed(digits))


def value_of(text: str) -> int:
    value = 0
    for char in text:
        value = value * 32 + ALPHABET.index(char)
    return value


@given(st.integers(min_value=0, max_value=2**128 - 1))
def test_a_value_is_spelled_in_crockfords_base32(value):
    assert spelled(value) == digit_by_digit(value)


def test_the_extremes_are_spelled_in_26_digits():
    assert spelled(0) == "0" * 26
    assert spelled(2**128 - 1) == "7" + "Z" * 25


def test_ids_carry_the_time_and_strictly_increase():
    start_ms = time.time_ns() // 1_000_000
    made = [new_id() for _ in range(1000)]
    assert made == sorted(made) and len(set(made)) == len(made)
    assert all(len(i) == 26 and set(i) <= set(ALPHABET) for i in made)
    assert start_ms <= value_of(made[0]) >> 80 <= time.time_ns() // 1_000_000
