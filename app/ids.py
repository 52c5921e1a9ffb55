"""Time-ordered identifiers (ULID layout: 48-bit milliseconds + 80 random bits, base32)."""

import secrets
import threading
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# Every pair of digits (10 bits): 13 look-ups spell an id, where 26 divisions by 32 took
# three times as long, on every check.
_PAIRS = [high + low for high in _ALPHABET for low in _ALPHABET]
_SHIFTS = range(120, -1, -10)
_lock = threading.Lock()
_last = 0


def new_id() -> str:
    """A 26-character id that sorts by creation time, strictly increasing within a process."""
    global _last
    with _lock:
        value = (time.time_ns() // 1_000_000) << 80 | secrets.randbits(80)
        if value <= _last:
            value = _last + 1
        _last = value
    return spelled(value)


def spelled(value: int) -> str:
    """A 128-bit value as 26 digits of Crockford's base32, the most significant first."""
    return "".join([_PAIRS[value >> shift & 1023] for shift in _SHIFTS])
