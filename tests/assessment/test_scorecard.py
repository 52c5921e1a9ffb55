"""The pure scorecard: bands, missing data, division by zero, score, grade, limits, dates."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

import pytest

from app.assessment.defaults import DEFAULT_SCORECARD
from app.assessment.schemas import ScorecardIn
from app.assessment.scorecard import (
    Band,
    Evidence,
    Factor,
    Financials,
    LimitRules,
    Scorecard,
    add_months,
    assess,
    factor_values,
    grade_of,
    score_of,
    suggested_limit,
    validate,
)

CARD = ScorecardIn.model_validate(DEFAULT_SCORECARD).to_card()
CURRENT_RATIO = next(f for f in CARD.factors if f.name == "current_ratio")


def card(**changes: object) -> Scorecard:
    fields = {k: getattr(CARD, k) for k in CARD.__dataclass_fields__}
    return Scorecard(**{**fields, **changes})  # type: ignore[arg-type]


@pytest.mark.parametrize(("band", "value", "matches"), [
    (Band(D("1.2"), D("2.0"), 60), D("1.2"), True),      # min is inclusive
    (Band(D("1.2"), D("2.0"), 60), D("1.9999"), True),
    (Band(D("1.2"), D("2.0"), 60), D("2.0"), False),     # max is exclusive
    (Band(D("1.2"), D("2.0"), 60), D("1.1999"), False),
    (Band(None, D("1.2"), 10), D("-50"), True),          # open below
    (Band(D("2.0"), None, 100), D("1000000"), True),     # open above
    (Band(None, None, 5), D("0"), True),
])
def test_band_edges(band: Band, value: D, matches: bool) -> None:
    assert band.matches(value) is matches


@pytest.mark.parametrize(("value", "points"), [
    (D("2.0"), 100), (D("1.9999"), 75), (D("1.5"), 75), (D("1.4999"), 50), (D("1.2"), 50),
    (D("1.1999"), 25), (D("1.0"), 25), (D("0.9999"), 0), (D("0"), 0), (None, 20),
])
def test_default_current_ratio_bands(value: D | None, points: int) -> None:
    assert CURRENT_RATIO.points(value) == points


def test_the_first_matching_band_scores_and_no_match_is_missing() -> None:
    overlapping = Factor("x", 1, (Band(D(0), D(10), 30), Band(D(5), None, 90)), 7)
    assert overlapping.points(D(6)) == 30
    assert overlapping.points(D(-1)) == 7  # no band matches: missing_points


def test_factor_values_from_evidence() -> None:
    values = factor_values(Evidence(
        financials=Financials(current_assets=D(600), current_liabilities=D(400),
                              inventory=D(150), total_assets=D(1500), total_liabilities=D(900),
                              revenue=D(3000), net_income=D(-120), operating_income=D(200),
                              interest_expense=D(50)),
        external_score=D(72), years_in_business=14, industry_risk="high", payment_index=61,
        days_beyond_terms=D("-3.5")))
    assert values == {"current_ratio": D("1.5"), "quick_ratio": D("1.125"),
                      "debt_ratio": D("0.6"), "net_margin": D("-0.04"),
                      "interest_cover": D(4), "years_in_business": D(14),
                      "external_score": D(72), "industry_risk": D(2), "payment_index": D(61),
                      "days_beyond_terms": D("-3.5")}


@pytest.mark.parametrize("financials", [
    Financials(current_assets=D(100), current_liabilities=D(0)),         # current, quick ÷ 0
    Financials(total_liabilities=D(5), total_assets=D(0)),               # debt ÷ 0
    Financials(net_income=D(5), revenue=D(0)),                           # margin ÷ 0
    Financials(operating_income=D(5), interest_expense=D(0)),            # cover ÷ 0
])
def test_division_by_zero_is_missing_not_an_error(financials: Financials) -> None:
    values = factor_values(Evidence(financials=financials))
    assert all(v is None for v in values.values())


def test_missing_evidence_scores_missing_points_and_is_listed() -> None:
    # No evidence at all: every factor scores its missing_points.
    # 12x20 + 8x20 + 10x20 + 10x20 + 8x50 + 8x20 + 16x30 + 6x50 + 14x50 + 8x50
    # = 240+160+200+200+400+160+480+300+700+400 = 3240 → 32.40 → CCC (< 35)
    result = assess(CARD, Evidence(), dt.date(2026, 1, 15))
    assert result.missing == tuple(f.name for f in CARD.factors)
    assert result.score == D("32.40")
    assert result.grade == "CCC"
    assert all(f.value is None for f in result.factors)
    # quick_ratio needs inventory: absent inventory is missing even with the other figures.
    values = factor_values(Evidence(financials=Financials(current_assets=D(1),
                                                          current_liabilities=D(1))))
    assert values["current_ratio"] == D(1) and values["quick_ratio"] is None


def test_ratios_are_banded_unrounded_and_shown_to_4_decimals() -> None:
    # 39999 / 20000 = 1.99995: shown as 2.0000 (half-up) but banded below 2.0 → 75 points.
    ev = Evidence(financials=Financials(current_assets=D(39999), current_liabilities=D(20000)))
    _score, factors, _missing = score_of(CARD, factor_values(ev))
    current = next(f for f in factors if f.name == "current_ratio")
    assert (current.value, current.points) == (D("2.0000"), 75)
    # 2 / 3 = 0.666…: shown 0.6667.
    ev = Evidence(financials=Financials(current_assets=D(2), current_liabilities=D(3)))
    _score, factors, _missing = score_of(CARD, factor_values(ev))
    assert factors[0].value == D("0.6667")


def test_score_is_the_weighted_mean_rounded_half_up() -> None:
    one = Factor("years_in_business", 1, (Band(None, None, 1),))
    seven = Factor("external_score", 7, (Band(None, None, 0),))
    # (1x1 + 7x0) / 8 = 0.125 → 0.13 (half-up, not half-even 0.12)
    score, _f, _m = score_of(card(factors=(one, seven)),
                             {"years_in_business": D(1), "external_score": D(1)})
    assert score == D("0.13")
    two = Factor("external_score", 2, (Band(None, None, 0),))
    # (1x100 ... ) weights 1 and 2, points 100 and 0 → 33.333… → 33.33
    hundred = Factor("years_in_business", 1, (Band(None, None, 100),))
    score, _f, _m = score_of(card(factors=(hundred, two)),
                             {"years_in_business": D(1), "external_score": D(1)})
    assert score == D("33.33")


@pytest.mark.parametrize(("score", "grade"), [
    (D("100"), "AAA"), (D("85"), "AAA"), (D("84.99"), "AA"), (D("75"), "AA"),
    (D("74.99"), "A"), (D("65"), "A"), (D("55"), "BBB"), (D("54.99"), "BB"), (D("45"), "BB"),
    (D("35"), "B"), (D("34.99"), "CCC"), (D("0"), "CCC"),
])
def test_grade_edges(score: D, grade: str) -> None:
    assert grade_of(CARD, score) == grade


RULES = LimitRules(pct_tangible_net_worth=D("0.20"), pct_working_capital=D("0.30"),
                   months_of_purchases=D(3), max=D(100000))


def _limit(rules: LimitRules = RULES, rounding: str = "1000", **evidence: object
           ) -> tuple[D, dict[str, tuple[D, D, bool]]]:
    fin = {k: D(str(v)) for k, v in evidence.items()
           if k in Financials.__dataclass_fields__}
    rest = {k: D(str(v)) for k, v in evidence.items() if k not in fin}
    limit, basis = suggested_limit(rules, Evidence(financials=Financials(**fin), **rest),  # type: ignore[arg-type]
                                   D(rounding))
    return limit, {b.rule: (b.base, b.amount, b.binding) for b in basis}


def test_each_limit_rule_binds_in_turn() -> None:
    rich = {"equity": 1_000_000, "current_assets": 900_000, "current_liabilities": 200_000,
            "expected_monthly_purchases": 50_000}
    # TNW 1,000,000 x 0.20 = 200,000; WC 700,000 x 0.30 = 210,000; 3 x 50,000 = 150,000;
    # max 100,000 → max binds.
    limit, basis = _limit(**rich)
    assert limit == D(100000)
    assert basis == {"pct_tangible_net_worth": (D(1000000), D("200000.00"), False),
                     "pct_working_capital": (D(700000), D("210000.00"), False),
                     "months_of_purchases": (D(50000), D(150000), False),
                     "max": (D(100000), D(100000), True)}
    # Purchases 20,000 → 3 x 20,000 = 60,000 binds.
    limit, basis = _limit(**{**rich, "expected_monthly_purchases": 20_000})
    assert limit == D(60000) and basis["months_of_purchases"][2]
    # Working capital 250,000 - 200,000 = 50,000 x 0.30 = 15,000 binds.
    limit, basis = _limit(**{**rich, "current_assets": 250_000})
    assert limit == D(15000) and basis["pct_working_capital"][2]
    # TNW 60,000 - 10,000 intangibles = 50,000 x 0.20 = 10,000 binds.
    limit, basis = _limit(**{**rich, "equity": 60_000, "intangible_assets": 10_000})
    assert limit == D(10000) and basis["pct_tangible_net_worth"] == (D(50000), D("10000.00"),
                                                                      True)


def test_limit_rounds_down_and_negative_bases_give_zero() -> None:
    # 0.20 x 123,456.78 = 24,691.356 → rounded DOWN to 24,000 (not 25,000).
    limit, basis = _limit(LimitRules(pct_tangible_net_worth=D("0.20")), equity="123456.78")
    assert limit == D(24000)
    assert basis["pct_tangible_net_worth"][1] == D("24691.356")  # before rounding
    limit, _ = _limit(LimitRules(pct_tangible_net_worth=D("0.20")), rounding="500",
                      equity="123456.78")
    assert limit == D(24500)
    # Intangibles above equity: a negative base gives 0, and that rule binds.
    limit, basis = _limit(equity=10_000, intangible_assets=50_000)
    assert limit == D(0)
    assert basis["pct_tangible_net_worth"] == (D(-40000), D(0), True)


def test_limit_rules_without_data() -> None:
    off = LimitRules(pct_tangible_net_worth=D("0.2"), pct_working_capital=D("0.3"),
                     months_of_purchases=D(2))
    # No data for any rule: 0, nothing in the basis.
    assert _limit(off) == (D(0), {})
    # Intangibles absent count as 0.
    _l, basis = _limit(off, equity=5000)
    assert basis["pct_tangible_net_worth"][0] == D(5000)
    # Without expected purchases: invoiced_365d / 12 (120,000 / 12 = 10,000 x 2 = 20,000).
    limit, basis = _limit(off, invoiced_365d=120_000)
    assert limit == D(20000) and basis["months_of_purchases"][0] == D(10000)
    # Nothing invoiced in 365 days: that rule has no data.
    assert _limit(off, invoiced_365d=0) == (D(0), {})
    # Expected purchases win over the ledger's figure.
    _l, basis = _limit(off, invoiced_365d=120_000, expected_monthly_purchases=1000)
    assert basis["months_of_purchases"][0] == D(1000)
    # A null parameter switches a rule off even with data.
    assert _limit(LimitRules(max=None), equity=5000) == (D(0), {})


@pytest.mark.parametrize(("day", "months", "due"), [
    (dt.date(2026, 8, 31), 6, dt.date(2027, 2, 28)),
    (dt.date(2027, 8, 31), 6, dt.date(2028, 2, 29)),    # leap year
    (dt.date(2024, 2, 29), 12, dt.date(2025, 2, 28)),
    (dt.date(2026, 1, 31), 1, dt.date(2026, 2, 28)),
    (dt.date(2026, 3, 31), 3, dt.date(2026, 6, 30)),
    (dt.date(2026, 11, 30), 3, dt.date(2027, 2, 28)),
    (dt.date(2026, 11, 15), 12, dt.date(2027, 11, 15)),
    (dt.date(2026, 10, 31), 3, dt.date(2027, 1, 31)),    # across the year end
])
def test_review_date_is_clamped_to_month_end(day: dt.date, months: int, due: dt.date) -> None:
    assert add_months(day, months) == due


def test_terms_and_review_follow_the_grade() -> None:
    result = assess(CARD, Evidence(), dt.date(2026, 8, 31))  # CCC: 0 days, 3 months
    assert (result.suggested_terms_days, result.review_due_on) == (0, dt.date(2026, 11, 30))
    assert result.suggested_limit == D(0)  # CCC: max 0


def test_the_default_scorecard_is_valid() -> None:
    assert validate(CARD) == []
    assert sum(f.weight for f in CARD.factors) == 100


@pytest.mark.parametrize(("changes", "field"), [
    ({"grades": CARD.grades[:6]}, "grades"),
    ({"grades": (*CARD.grades[:6], ("CCC", D(10)))}, "grades"),         # 0 not covered
    ({"grades": (("AAA", D(50)), *CARD.grades[1:])}, "grades"),         # AAA below AA
    ({"factors": ()}, "factors"),
    ({"factors": (*CARD.factors, CARD.factors[0])}, "factors.10.name"),
    ({"factors": (Factor("current_ratio", 0, CURRENT_RATIO.bands),)}, "factors.0.weight"),
    ({"factors": (Factor("current_ratio", 1, (Band(D(2), D(1), 5),)),)}, "factors.0.bands.0"),
    ({"factors": (Factor("shoe_size", 1, CURRENT_RATIO.bands),)}, "factors.0.name"),
    ({"limits": {k: v for k, v in CARD.limits.items() if k != "B"}}, "limits"),
    ({"terms_days": {**CARD.terms_days, "unrated": 3}}, "terms_days"),
    ({"review_months": {}}, "review_months"),
    ({"limit_rounding": D(0)}, "limit_rounding"),
])
def test_validation_names_the_field(changes: dict[str, object], field: str) -> None:
    problems = validate(card(**changes))
    assert field in [f for f, _m in problems], problems
