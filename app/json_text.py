"""JSON text of plain values (str, int, bool, None, and lists and dicts of them), for the
hot path's jsonb parameters.

orjson rather than the standard library: a check's approval row with its recorded inputs
costs about 25 µs to encode with `json.dumps` and about 3 µs with orjson (bench/RESULTS.md).
Amounts are exact strings before they get here; anything else, a Decimal say, raises
TypeError, as it would with `json.dumps`.
"""

from __future__ import annotations

from typing import Any

import orjson


def dumps(value: Any) -> str:
    return orjson.dumps(value).decode()
