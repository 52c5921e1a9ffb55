"""The shipped default scorecard (version 1, seeded by migration 0008; README "Scorecard")."""

from __future__ import annotations

from typing import Any


def _band(lo: str | None, hi: str | None, points: int) -> dict[str, Any]:
    return {"min": lo, "max": hi, "points": points}


def _factor(name: str, weight: int, missing: int, *bands: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "weight": weight, "bands": list(bands), "missing_points": missing}


def _limits(tnw: str | None, wc: str | None, months: str | None, cap: str | None
            ) -> dict[str, str | None]:
    return {"pct_tangible_net_worth": tnw, "pct_working_capital": wc,
            "months_of_purchases": months, "max": cap}


DEFAULT_SCORECARD: dict[str, Any] = {
    "factors": [
        _factor("current_ratio", 12, 20, _band("2.0", None, 100), _band("1.5", "2.0", 75),
                _band("1.2", "1.5", 50), _band("1.0", "1.2", 25), _band(None, "1.0", 0)),
        _factor("quick_ratio", 8, 20, _band("1.0", None, 100), _band("0.7", "1.0", 60),
                _band("0.5", "0.7", 30), _band(None, "0.5", 0)),
        _factor("debt_ratio", 10, 20, _band(None, "0.4", 100), _band("0.4", "0.6", 70),
                _band("0.6", "0.8", 35), _band("0.8", None, 0)),
        _factor("net_margin", 10, 20, _band("0.10", None, 100), _band("0.05", "0.10", 75),
                _band("0.02", "0.05", 50), _band("0", "0.02", 25), _band(None, "0", 0)),
        _factor("interest_cover", 8, 50, _band("5", None, 100), _band("3", "5", 70),
                _band("1.5", "3", 40), _band(None, "1.5", 0)),
        _factor("years_in_business", 8, 20, _band("10", None, 100), _band("5", "10", 75),
                _band("2", "5", 40), _band(None, "2", 10)),
        _factor("external_score", 16, 30, _band("80", None, 100), _band("60", "80", 75),
                _band("40", "60", 45), _band("20", "40", 20), _band(None, "20", 0)),
        _factor("industry_risk", 6, 50, _band(None, "1", 100), _band("1", "2", 60),
                _band("2", None, 20)),
        _factor("payment_index", 14, 50, _band("80", None, 100), _band("70", "80", 80),
                _band("50", "70", 50), _band("30", "50", 20), _band(None, "30", 0)),
        _factor("days_beyond_terms", 8, 50, _band(None, "1", 100), _band("1", "15", 70),
                _band("15", "30", 40), _band("30", "60", 15), _band("60", None, 0)),
    ],
    "grades": [
        {"grade": "AAA", "min_score": "85"}, {"grade": "AA", "min_score": "75"},
        {"grade": "A", "min_score": "65"}, {"grade": "BBB", "min_score": "55"},
        {"grade": "BB", "min_score": "45"}, {"grade": "B", "min_score": "35"},
        {"grade": "CCC", "min_score": "0"},
    ],
    "limits": {
        "AAA": _limits("0.20", "0.30", "3", None),
        "AA": _limits("0.15", "0.25", "2.5", None),
        "A": _limits("0.12", "0.20", "2", None),
        "BBB": _limits("0.10", "0.15", "1.5", "250000"),
        "BB": _limits("0.07", "0.10", "1", "100000"),
        "B": _limits("0.05", "0.05", "0.5", "25000"),
        "CCC": _limits(None, None, None, "0"),
    },
    "limit_rounding": "1000",
    "terms_days": {"AAA": 60, "AA": 60, "A": 45, "BBB": 30, "BB": 30, "B": 14, "CCC": 0},
    "review_months": {"AAA": 12, "AA": 12, "A": 12, "BBB": 6, "BB": 6, "B": 3, "CCC": 3},
}
