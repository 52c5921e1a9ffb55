"""FastAPI dependencies: the database and the authenticated caller."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request

from app.auth.rate_limit import RateLimiter
from app.auth.roles import Caller, Role
from app.auth.verifier import KeyVerifier, Miss
from app.cache import Cache
from app.db.engine import Database
from app.deadline import time_left, within
from app.errors import Forbidden, Unauthorized


async def get_db(request: Request) -> Database:
    """The process's database (async, so FastAPI need not hop to a thread for it)."""
    db: Database = request.app.state.db
    return db


DbDep = Annotated[Database, Depends(get_db)]


async def get_cache(request: Request) -> Cache | None:
    """The process's Redis read cache, if REDIS_URL is set (and trustworthy here)."""
    cache: Cache | None = request.app.state.cache
    return cache


CacheDep = Annotated[Cache | None, Depends(get_cache)]


def bearer_key(header: str | None) -> str:
    """The API key of an `Authorization: Bearer <key>` header; 401 for anything else."""
    if not header:
        raise Unauthorized("missing Authorization: Bearer <api key> header")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise Unauthorized("the Authorization header must be 'Bearer <api key>'")
    return key.strip()


def admits(found: Caller, allowed: frozenset[Role], *, exactly: bool = False) -> bool:
    """Whether a caller may call an endpoint open to `allowed` (see `require`)."""
    return found.role in allowed if exactly else found.may(allowed)


def require(*roles: Role, exactly: bool = False) -> Callable[..., Awaitable[Caller]]:
    """A dependency admitting the given roles (and controller/admin, who may call everything,
    unless `exactly`: then only the roles named)."""
    allowed = frozenset(roles)

    async def caller(request: Request) -> Caller:
        key = bearer_key(request.headers.get("authorization"))
        verifier: KeyVerifier = request.app.state.keys
        found = verifier.cached(key)
        if isinstance(found, Miss):
            found = await within(time_left(request), verifier.verify(key))
        if found is None:
            raise Unauthorized("unknown or revoked API key")
        if not admits(found, allowed, exactly=exactly):
            raise Forbidden(f"role {found.role.value} may not call this endpoint")
        limiter: RateLimiter = request.app.state.limiter
        limiter.check(found.key_id)
        request.state.caller = found
        return found

    return caller


ANY_ROLE = tuple(Role)
Controller = Annotated[Caller, Depends(require(Role.CONTROLLER))]
Ledger = Annotated[Caller, Depends(require(Role.LEDGER))]
ORDER_ENTRY_ROLES = frozenset({Role.ORDER_ENTRY})  # also app/credit/fast_path.py's
OrderEntry = Annotated[Caller, Depends(require(*ORDER_ENTRY_ROLES))]
Warehouse = Annotated[Caller, Depends(require(Role.WAREHOUSE))]
OrderReader = Annotated[Caller, Depends(require(Role.ORDER_ENTRY, Role.WAREHOUSE))]
AnyRole = Annotated[Caller, Depends(require(*ANY_ROLE))]
# Admin-only endpoints (scorecard changes, webhooks): controllers may call everything else.
Admin = Annotated[Caller, Depends(require(Role.ADMIN, exactly=True))]
