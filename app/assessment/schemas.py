"""Request and response bodies of the scorecard and of assessments."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, PlainSerializer, WithJsonSchema

from app.assessment.defaults import DEFAULT_SCORECARD
from app.assessment.scorecard import (
    SHOWN,
    Band,
    Factor,
    Financials,
    LimitRules,
    Scorecard,
)
from app.customers.schemas import AccountOut
from app.fields import (
    AmountOut,
    Currency,
    Days,
    Id,
    IsoDate,
    NonNegativeAmount,
    PositiveAmount,
    Ratio,
    RatioOut,
    RequestModel,
    ResponseModel,
    Text,
)
from app.money import MAX_AMOUNT, AmountError, parse_amount

FactorName = Literal["current_ratio", "quick_ratio", "debt_ratio", "net_margin",
                     "interest_cover", "years_in_business", "external_score", "industry_risk",
                     "payment_index", "days_beyond_terms"]
Grade = Literal["AAA", "AA", "A", "BBB", "BB", "B", "CCC"]
_DECIMAL = r"^-?[0-9]{1,14}(\.[0-9]{1,4})?$"


def _any_decimal(value: Any) -> Decimal:
    """A signed exact decimal (zero allowed), at most 4 decimals, below 10^14 in size."""
    try:
        return parse_amount(value)
    except AmountError as exc:
        raise ValueError(str(exc)) from exc


def _percent_scale(value: Any) -> Decimal:
    number = _any_decimal(value)
    if not 0 <= number <= 100:
        raise ValueError("must be from 0 to 100")
    return number


SignedDecimal = Annotated[Decimal, BeforeValidator(_any_decimal), WithJsonSchema({
    "anyOf": [{"type": "string", "pattern": _DECIMAL},
              {"type": "number", "multipleOf": 0.0001,
               "exclusiveMinimum": -float(MAX_AMOUNT), "exclusiveMaximum": float(MAX_AMOUNT)}],
    "description": "Exact decimal (may be 0 or negative), at most 4 decimals.",
    "examples": ["1.5"]})]
Score = Annotated[Decimal, BeforeValidator(_percent_scale), WithJsonSchema({
    "anyOf": [{"type": "string", "pattern": r"^(100(\.0{1,4})?|[0-9]{1,2}(\.[0-9]{1,4})?)$"},
              {"type": "number", "minimum": 0, "maximum": 100, "multipleOf": 0.0001}],
    "description": "0 to 100, at most 4 decimals.", "examples": ["65"]})]


def _whole(value: Any) -> int:
    """JSON has one number type: 30 and 30.0 are the same whole number; 30.5 is not."""
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise ValueError("must be a whole number")


Points = Annotated[int, BeforeValidator(_whole), Field(ge=0, le=100),
                   WithJsonSchema({"type": "integer", "minimum": 0, "maximum": 100})]
Weight = Annotated[int, BeforeValidator(_whole), Field(ge=1, le=1000),
                   WithJsonSchema({"type": "integer", "minimum": 1, "maximum": 1000})]
Months = Annotated[int, BeforeValidator(_whole), Field(ge=1, le=120),
                   WithJsonSchema({"type": "integer", "minimum": 1, "maximum": 120})]
Years = Annotated[int, BeforeValidator(_whole), Field(ge=0, le=1000),
                  WithJsonSchema({"type": "integer", "minimum": 0, "maximum": 1000})]
ShownOut = Annotated[Decimal, PlainSerializer(lambda d: str(d.quantize(SHOWN)), return_type=str),
                     WithJsonSchema({"type": "string", "examples": ["1.5000"]})]
ScoreOut = Annotated[Decimal, PlainSerializer(lambda d: str(d.quantize(Decimal("0.01"))),
                                              return_type=str),
                     WithJsonSchema({"type": "string", "examples": ["67.40"]})]


# ---- the scorecard -----------------------------------------------------------------------

class BandIn(RequestModel):
    min: SignedDecimal | None = Field(description="Inclusive lower bound; null: open.")
    max: SignedDecimal | None = Field(description="Exclusive upper bound; null: open.")
    points: Points


class FactorIn(RequestModel):
    name: FactorName
    weight: Weight
    bands: list[BandIn] = Field(min_length=1, max_length=20,
                                description="Tried in order; the first match scores.")
    missing_points: Points = 0


class GradeIn(RequestModel):
    grade: Grade
    min_score: Score


class LimitRulesIn(RequestModel):
    pct_tangible_net_worth: Ratio | None = None
    pct_working_capital: Ratio | None = None
    months_of_purchases: NonNegativeAmount | None = None
    max: NonNegativeAmount | None = None


class ScorecardIn(RequestModel):
    factors: list[FactorIn] = Field(min_length=1, max_length=10)
    grades: list[GradeIn] = Field(min_length=7, max_length=7)
    limits: dict[str, LimitRulesIn]
    limit_rounding: PositiveAmount
    terms_days: dict[str, Days]
    review_months: dict[str, Months]
    reason: Text | None = None

    model_config = {"json_schema_extra": {"examples": [{
        **DEFAULT_SCORECARD, "reason": "the shipped default (README, Scorecard)"}]}}

    def to_card(self) -> Scorecard:
        return Scorecard(
            factors=tuple(Factor(f.name, f.weight,
                                 tuple(Band(b.min, b.max, b.points) for b in f.bands),
                                 f.missing_points) for f in self.factors),
            grades=tuple((g.grade, g.min_score) for g in self.grades),
            limits={k: LimitRules(v.pct_tangible_net_worth, v.pct_working_capital,
                                  v.months_of_purchases, v.max) for k, v in self.limits.items()},
            limit_rounding=self.limit_rounding,
            terms_days=dict(self.terms_days),
            review_months=dict(self.review_months))

    def document(self) -> dict[str, Any]:
        """What is stored: the body without the reason, decimals as exact strings."""
        return self.model_dump(mode="json", exclude={"reason"})


class BandOut(ResponseModel):
    min: RatioOut | None
    max: RatioOut | None
    points: int


class FactorDefOut(ResponseModel):
    name: str
    weight: int
    bands: list[BandOut]
    missing_points: int


class GradeOut(ResponseModel):
    grade: str
    min_score: RatioOut


class LimitRulesOut(ResponseModel):
    pct_tangible_net_worth: RatioOut | None
    pct_working_capital: RatioOut | None
    months_of_purchases: RatioOut | None
    max: AmountOut | None


class ScorecardOut(ResponseModel):
    version: int
    factors: list[FactorDefOut]
    grades: list[GradeOut]
    limits: dict[str, LimitRulesOut]
    limit_rounding: AmountOut
    terms_days: dict[str, int]
    review_months: dict[str, int]
    created_at: dt.datetime
    created_by: str
    note: str | None


# ---- assessments -------------------------------------------------------------------------

class FinancialsIn(RequestModel):
    currency: Currency | None = Field(default=None, description="Default: the account's.")
    period_end: IsoDate | None = None
    current_assets: NonNegativeAmount | None = None
    current_liabilities: NonNegativeAmount | None = None
    inventory: NonNegativeAmount | None = None
    total_assets: NonNegativeAmount | None = None
    total_liabilities: NonNegativeAmount | None = None
    equity: SignedDecimal | None = None
    intangible_assets: NonNegativeAmount | None = Field(
        default=None, description="Absent counts as 0.")
    revenue: NonNegativeAmount | None = None
    net_income: SignedDecimal | None = None
    operating_income: SignedDecimal | None = None
    interest_expense: NonNegativeAmount | None = None

    def figures(self) -> Financials:
        return Financials(**self.model_dump(exclude={"currency", "period_end"}))


class ExternalScoreIn(RequestModel):
    provider: Text | None = None
    score: Score
    as_of: IsoDate | None = None


class AssessmentIn(RequestModel):
    assessment_id: Id = Field(description="The caller's id: the idempotency key.")
    as_of: IsoDate | None = Field(default=None, description="Default today; not in the future.")
    financials: FinancialsIn | None = None
    external_score: ExternalScoreIn | None = None
    years_in_business: Years | None = None
    industry_risk: Literal["low", "medium", "high"] | None = None
    expected_monthly_purchases: NonNegativeAmount | None = None
    note: Text | None = None

    model_config = {"json_schema_extra": {"examples": [{
        "assessment_id": "A-2026-11-ACME", "as_of": "2026-11-30",
        "financials": {"currency": "EUR", "period_end": "2025-12-31",
                       "current_assets": "500000", "current_liabilities": "250000",
                       "equity": "800000"},
        "external_score": {"provider": "bureau", "score": 72, "as_of": "2026-10-01"},
        "years_in_business": 14, "industry_risk": "medium",
        "expected_monthly_purchases": "40000.00"}]}}

    def evidence(self) -> dict[str, Any]:
        """The body as stored and compared for replays: the same meaning, the same document."""
        return self.model_dump(mode="json", exclude={"assessment_id"})


class ApplyIn(RequestModel):
    reason: Text
    credit_limit: NonNegativeAmount | None = Field(
        default=None, description="Override of the suggested limit (recorded as such).")
    risk_class: Grade | None = Field(
        default=None, description="Override of the grade; terms and review follow it.")

    model_config = {"json_schema_extra": {"examples": [
        {"reason": "credit committee 2026-11"},
        {"reason": "committee: keep the limit lower", "credit_limit": "30000.00",
         "risk_class": "BBB"}]}}

    def document(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class FactorScoreOut(ResponseModel):
    name: str
    value: ShownOut | None
    points: int
    weight: int


class BasisOut(ResponseModel):
    rule: str
    base: AmountOut
    amount: AmountOut = Field(description="Before rounding.")
    binding: bool


class CurrentTermsOut(ResponseModel):
    credit_limit: AmountOut
    risk_class: str
    payment_terms_days: int


class AppliedOut(ResponseModel):
    credit_limit: AmountOut
    risk_class: str
    payment_terms_days: int
    review_due_on: dt.date
    overrides: dict[str, str]
    reason: str


class AssessmentOut(ResponseModel):
    assessment_id: str
    customer_id: str
    as_of: dt.date
    status: str
    scorecard_version: int
    score: ScoreOut
    grade: str
    factors: list[FactorScoreOut]
    missing: list[str]
    suggested_limit: AmountOut
    limit_basis: list[BasisOut]
    suggested_terms_days: int
    review_due_on: dt.date
    current: CurrentTermsOut
    ledger: dict[str, str | int | None] = Field(
        description="What our own ledger contributed: payment_index, days_beyond_terms, "
                    "invoiced_365d.")
    evidence: dict[str, Any]
    created_at: dt.datetime
    created_by: str
    applied: AppliedOut | None
    applied_at: dt.datetime | None
    applied_by: str | None
    superseded_at: dt.datetime | None


class ApplyOut(ResponseModel):
    account: AccountOut
    assessment: AssessmentOut
