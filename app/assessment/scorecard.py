"""Evidence → score → grade → suggested limit and terms, as a pure function of plain values.

No database, no web framework: the scorecard and the evidence are passed in, the result comes
out (DESIGN.md 2.1 and 2.9). Everything is exact Decimal arithmetic; no floats.
"""

from __future__ import annotations

import calendar
import datetime as dt
import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal

from app.money import ZERO

GRADES = ("AAA", "AA", "A", "BBB", "BB", "B", "CCC")  # best first
FACTORS = ("current_ratio", "quick_ratio", "debt_ratio", "net_margin", "interest_cover",
           "years_in_business", "external_score", "industry_risk", "payment_index",
           "days_beyond_terms")
LIMIT_RULES = ("pct_tangible_net_worth", "pct_working_capital", "months_of_purchases", "max")
INDUSTRY_RISK = {"low": 0, "medium": 1, "high": 2}
SHOWN = Decimal("0.0001")  # a factor's value is shown to 4 decimals
SCORE = Decimal("0.01")
MAX_POINTS = 100


@dataclass(frozen=True)
class Band:
    """Matches when min <= value < max; a null side is open."""

    min: Decimal | None
    max: Decimal | None
    points: int

    def matches(self, value: Decimal) -> bool:
        return ((self.min is None or self.min <= value)
                and (self.max is None or value < self.max))


@dataclass(frozen=True)
class Factor:
    name: str
    weight: int
    bands: tuple[Band, ...]
    missing_points: int = 0

    def points(self, value: Decimal | None) -> int:
        """The first matching band's points; no data, or no band matching: missing_points."""
        if value is None:
            return self.missing_points
        return next((b.points for b in self.bands if b.matches(value)), self.missing_points)


@dataclass(frozen=True)
class LimitRules:
    """A grade's limit rules; None switches a rule off for that grade."""

    pct_tangible_net_worth: Decimal | None = None
    pct_working_capital: Decimal | None = None
    months_of_purchases: Decimal | None = None
    max: Decimal | None = None


@dataclass(frozen=True)
class Scorecard:
    factors: tuple[Factor, ...]
    grades: tuple[tuple[str, Decimal], ...]  # (grade, min_score)
    limits: Mapping[str, LimitRules]
    limit_rounding: Decimal
    terms_days: Mapping[str, int]
    review_months: Mapping[str, int]


@dataclass(frozen=True)
class Financials:
    """Figures of one financial statement; every one optional."""

    current_assets: Decimal | None = None
    current_liabilities: Decimal | None = None
    inventory: Decimal | None = None
    total_assets: Decimal | None = None
    total_liabilities: Decimal | None = None
    equity: Decimal | None = None
    intangible_assets: Decimal | None = None
    revenue: Decimal | None = None
    net_income: Decimal | None = None
    operating_income: Decimal | None = None
    interest_expense: Decimal | None = None


@dataclass(frozen=True)
class Evidence:
    """What the controller brought, plus what our own ledger knows."""

    financials: Financials = field(default_factory=Financials)
    external_score: Decimal | None = None
    years_in_business: int | None = None
    industry_risk: str | None = None  # low, medium, high
    expected_monthly_purchases: Decimal | None = None
    payment_index: int | None = None
    days_beyond_terms: Decimal | None = None
    invoiced_365d: Decimal | None = None


@dataclass(frozen=True)
class FactorScore:
    name: str
    value: Decimal | None  # shown to 4 decimals
    points: int
    weight: int


@dataclass(frozen=True)
class Basis:
    rule: str
    base: Decimal
    amount: Decimal  # before rounding
    binding: bool


@dataclass(frozen=True)
class Assessment:
    score: Decimal
    grade: str
    factors: tuple[FactorScore, ...]
    missing: tuple[str, ...]
    suggested_limit: Decimal
    limit_basis: tuple[Basis, ...]
    suggested_terms_days: int
    review_due_on: dt.date


def _ratio(numerator: Decimal | None, denominator: Decimal | None) -> Decimal | None:
    """numerator / denominator, or None when either is absent or the denominator is 0."""
    if numerator is None or denominator is None or denominator == ZERO:
        return None
    return numerator / denominator


def _minus(a: Decimal | None, b: Decimal | None) -> Decimal | None:
    return None if a is None or b is None else a - b


def factor_values(evidence: Evidence) -> dict[str, Decimal | None]:
    """Every catalogue factor's value, unrounded; None is missing data."""
    f = evidence.financials
    risk = evidence.industry_risk
    return {
        "current_ratio": _ratio(f.current_assets, f.current_liabilities),
        "quick_ratio": _ratio(_minus(f.current_assets, f.inventory), f.current_liabilities),
        "debt_ratio": _ratio(f.total_liabilities, f.total_assets),
        "net_margin": _ratio(f.net_income, f.revenue),
        "interest_cover": _ratio(f.operating_income, f.interest_expense),
        "years_in_business": _dec(evidence.years_in_business),
        "external_score": evidence.external_score,
        "industry_risk": None if risk is None else Decimal(INDUSTRY_RISK[risk]),
        "payment_index": _dec(evidence.payment_index),
        "days_beyond_terms": evidence.days_beyond_terms,
    }


def _dec(value: int | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def score_of(card: Scorecard, values: Mapping[str, Decimal | None]
             ) -> tuple[Decimal, tuple[FactorScore, ...], tuple[str, ...]]:
    """score = sum(weight * points) / sum(weight), half-up to 2 decimals; the build-up; missing."""
    scores = []
    missing = []
    for factor in card.factors:
        value = values.get(factor.name)
        if value is None:
            missing.append(factor.name)
        shown = None if value is None else value.quantize(SHOWN, ROUND_HALF_UP)
        scores.append(FactorScore(factor.name, shown, factor.points(value), factor.weight))
    total_weight = sum(s.weight for s in scores)
    weighted = sum((Decimal(s.weight * s.points) for s in scores), ZERO)
    score = (weighted / total_weight).quantize(SCORE, ROUND_HALF_UP) if total_weight else ZERO
    return score, tuple(scores), tuple(missing)


def grade_of(card: Scorecard, score: Decimal) -> str:
    """The first grade, by min_score descending, with score >= min_score."""
    for grade, min_score in sorted(card.grades, key=lambda g: g[1], reverse=True):
        if score >= min_score:
            return grade
    return GRADES[-1]  # a validated scorecard has a grade at 0: unreachable


def limit_bases(rules: LimitRules, evidence: Evidence) -> list[tuple[str, Decimal, Decimal]]:
    """(rule, base, amount before rounding) of every rule of the grade that has data."""
    f = evidence.financials
    out: list[tuple[str, Decimal, Decimal]] = []
    if rules.pct_tangible_net_worth is not None and f.equity is not None:
        base = f.equity - (f.intangible_assets or ZERO)  # absent intangibles count as 0
        out.append(("pct_tangible_net_worth", base,
                    max(ZERO, rules.pct_tangible_net_worth * base)))
    working = _minus(f.current_assets, f.current_liabilities)
    if rules.pct_working_capital is not None and working is not None:
        out.append(("pct_working_capital", working,
                    max(ZERO, rules.pct_working_capital * working)))
    monthly = evidence.expected_monthly_purchases
    if monthly is None and evidence.invoiced_365d is not None and evidence.invoiced_365d > 0:
        monthly = evidence.invoiced_365d / 12
    if rules.months_of_purchases is not None and monthly is not None:
        out.append(("months_of_purchases", monthly,
                    max(ZERO, rules.months_of_purchases * monthly)))
    if rules.max is not None:
        out.append(("max", rules.max, rules.max))
    return out


def suggested_limit(rules: LimitRules, evidence: Evidence, rounding: Decimal
                    ) -> tuple[Decimal, tuple[Basis, ...]]:
    """The smallest amount of the rules with data (0 without any), rounded down."""
    bases = limit_bases(rules, evidence)
    if not bases:
        return ZERO, ()
    binding = min(range(len(bases)), key=lambda i: bases[i][2])  # the first of equals binds
    smallest = bases[binding][2]
    limit = (smallest / rounding).to_integral_value(ROUND_FLOOR) * rounding
    return limit, tuple(Basis(rule, base, amount, i == binding)
                        for i, (rule, base, amount) in enumerate(bases))


def add_months(day: dt.date, months: int) -> dt.date:
    """`day` + `months` calendar months, clamped to the last day of the month."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return dt.date(year, month + 1, min(day.day, last))


def terms_for(card: Scorecard, risk_class: str, as_of: dt.date) -> tuple[int, dt.date]:
    """Payment terms and review date that follow a class."""
    return card.terms_days[risk_class], add_months(as_of, card.review_months[risk_class])


def assess(card: Scorecard, evidence: Evidence, as_of: dt.date) -> Assessment:
    """The whole assessment of one body of evidence under one scorecard."""
    score, factors, missing = score_of(card, factor_values(evidence))
    grade = grade_of(card, score)
    limit, basis = suggested_limit(card.limits[grade], evidence, card.limit_rounding)
    terms, review = terms_for(card, grade, as_of)
    return Assessment(score, grade, factors, missing, limit, basis, terms, review)


def validate(card: Scorecard) -> list[tuple[str, str]]:
    """What is wrong with a scorecard, as (field, message); empty when it is usable."""
    problems: list[tuple[str, str]] = []
    if not card.factors:
        problems.append(("factors", "at least one factor is required"))
    seen: set[str] = set()
    for i, factor in enumerate(card.factors):
        where = f"factors.{i}"
        if factor.name not in FACTORS:
            problems.append((f"{where}.name", f"unknown factor {factor.name}; one of "
                                               f"{', '.join(FACTORS)}"))
        elif factor.name in seen:
            problems.append((f"{where}.name", f"{factor.name} is listed twice"))
        seen.add(factor.name)
        if factor.weight <= 0:
            problems.append((f"{where}.weight", "must be greater than 0"))
        if not 0 <= factor.missing_points <= MAX_POINTS:
            problems.append((f"{where}.missing_points", "must be from 0 to 100"))
        if not factor.bands:
            problems.append((f"{where}.bands", "at least one band is required"))
        for j, band in enumerate(factor.bands):
            if band.min is not None and band.max is not None and band.min >= band.max:
                problems.append((f"{where}.bands.{j}", "min must be below max"))
            if not 0 <= band.points <= MAX_POINTS:
                problems.append((f"{where}.bands.{j}.points", "must be from 0 to 100"))
    problems.extend(_validate_grades(card))
    for name, table in (("limits", card.limits), ("terms_days", card.terms_days),
                        ("review_months", card.review_months)):
        absent = [g for g in GRADES if g not in table]
        extra = [g for g in table if g not in GRADES]
        if absent:
            problems.append((name, f"every grade needs a value; missing {', '.join(absent)}"))
        if extra:
            problems.append((name, f"unknown grades {', '.join(extra)}"))
    if card.limit_rounding <= ZERO:
        problems.append(("limit_rounding", "must be greater than 0"))
    return problems


def _validate_grades(card: Scorecard) -> list[tuple[str, str]]:
    names = [g for g, _ in card.grades]
    if sorted(names, key=_rank) != list(GRADES) or len(names) != len(GRADES):
        return [("grades", f"must list each of the seven grades {', '.join(GRADES)} once")]
    cutoffs = dict(card.grades)
    problems = []
    for better, worse in itertools.pairwise(GRADES):
        if cutoffs[better] <= cutoffs[worse]:
            problems.append(("grades", f"{better} must need a higher min_score than {worse}"))
    if min(cutoffs.values()) != ZERO:
        problems.append(("grades", "the lowest grade must start at min_score 0, so that "
                                   "every score has a grade"))
    if max(cutoffs.values()) > MAX_POINTS:
        problems.append(("grades", "min_score must not be above 100"))
    return problems


def _rank(grade: str) -> int:
    return GRADES.index(grade) if grade in GRADES else len(GRADES)
