"""HTTP routes of exchange rates."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from app.decimal_json import DecimalRoute
from app.deps import Controller, DbDep
from app.fields import CURRENCY_PATTERN
from app.fx import service
from app.fx.schemas import FX_CURSOR, FxRateIn, FxRateOut, FxRatesPage

router = APIRouter(tags=["fx-rates"], route_class=DecimalRoute)


@router.put("/v1/fx-rates/{from}/{to}", response_model=FxRateOut, status_code=201,
            operation_id="put_fx_rate",
            responses={200: {"model": FxRateOut, "description": "Replaced"}})
async def put_fx_rate(
    from_: Annotated[str, Path(alias="from", pattern=CURRENCY_PATTERN,
                               description="The document's currency.")],
    to: Annotated[str, Path(pattern=CURRENCY_PATTERN, description="The account's currency.")],
    body: FxRateIn, db: DbDep, caller: Controller, response: Response,
) -> FxRateOut:
    """Store the rate of the pair for `as_of`: new (201), or replacing that day's (200).
    Only this direct pair converts `from` into `to` (no inverse); a rate dated in the future
    counts from its day on."""
    rate, created = await service.put_rate(db, from_, to, body, caller)
    if not created:
        response.status_code = 200
    return rate


@router.get("/v1/fx-rates", response_model=FxRatesPage, operation_id="list_fx_rates")
async def list_fx_rates(
    db: DbDep, _: Controller,
    from_: Annotated[str | None, Query(alias="from", pattern=CURRENCY_PATTERN)] = None,
    to: Annotated[str | None, Query(pattern=CURRENCY_PATTERN)] = None,
    cursor: Annotated[str | None, Query(pattern=FX_CURSOR,
                                        description="next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> FxRatesPage:
    """Stored rates, by pair then day (oldest first), optionally of one `from` or `to`."""
    return await service.list_rates(db, from_, to, cursor, limit)
