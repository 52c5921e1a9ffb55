"""HTTP routes of credit groups and their exposure."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response

from app.decimal_json import DecimalRoute
from app.deps import AnyRole, Controller, DbDep
from app.fields import ID_PATTERN
from app.groups import service
from app.groups.schemas import GroupExposureOut, GroupIn, GroupOut
from app.observe import count

router = APIRouter(prefix="/v1/groups", tags=["groups"], route_class=DecimalRoute)
GroupId = Annotated[str, Path(pattern=ID_PATTERN, description="The credit group's id.")]


@router.put("/{group_id}", response_model=GroupOut, status_code=201, operation_id="put_group",
            responses={200: {"model": GroupOut, "description": "Replaced"}})
async def put_group(group_id: GroupId, body: GroupIn, db: DbDep, caller: Controller,
                    request: Request, response: Response) -> GroupOut:
    """Create (201) or replace (200) a credit group. Its members and exposure are kept; a
    higher limit or an unblock releases members' held orders that now fit."""
    change = await service.put_group(db, group_id, body, caller)
    count(request, change.decided)
    if not change.created:
        response.status_code = 200
    return change.group


@router.get("/{group_id}", response_model=GroupOut, operation_id="get_group")
async def get_group(group_id: GroupId, db: DbDep, _: Controller) -> GroupOut:
    """The credit group."""
    return await service.get_group(db, group_id)


@router.get("/{group_id}/exposure", response_model=GroupExposureOut,
            operation_id="get_group_exposure")
async def get_group_exposure(group_id: GroupId, db: DbDep, _: AnyRole) -> GroupExposureOut:
    """The members' exposure together against the group's limit, and each member's."""
    return await service.exposure(db, group_id)
