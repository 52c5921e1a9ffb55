"""Test fixtures: a throwaway PostgreSQL database, the app over ASGI, one API key per role."""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from sqlalchemy import text

from app.auth.keys import create_key, revoke_key
from app.auth.roles import Role
from app.db import Database
from app.main import create_app
from app.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN = os.environ.get("CREDITGATE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("CREDITGATE_TEST_REDIS", "redis://127.0.0.1:6379/0")
MUTABLE_TABLES = ("accounts", "credit_file", "open_items", "payments", "orders",
                  "policy_changes")


def _server_url(database: str) -> str:
    base = PG_ADMIN.rsplit("/", 1)[0]
    return f"{base}/{database}"


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def migrate(url: str) -> None:
    """Run `creditgate migrate` as a user would."""
    env = {**os.environ, "DATABASE_URL": url}
    subprocess.run([sys.executable, "-m", "app.cli", "migrate"], cwd=ROOT, env=env, check=True,
                   capture_output=True)


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, dropped at the end."""
    name = f"creditgate_test_{os.getpid()}_{secrets.token_hex(3)}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    url = _server_url(name)
    try:
        migrate(url)
        yield url
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    # Generous pool and deadline: tests fire 100 requests at once into one process on a
    # 2-core machine; the deadline and pool limits have tests of their own (tests/trust).
    return Settings(database_url=database_url, expire_interval_seconds=0,
                    key_cache_seconds=0, redis_url=REDIS_URL,
                    cache_namespace=database_url.rsplit("/", 1)[1],
                    db_pool_size=20, db_max_overflow=20, check_timeout_seconds=10,
                    db_timeout_seconds=10, rate_limit_per_second=0)


@pytest.fixture(scope="session")
async def db(settings: Settings) -> AsyncIterator[Database]:
    database = Database(settings)
    yield database
    await database.dispose()


@pytest.fixture(scope="session")
async def keys(db: Database) -> dict[str, str]:
    """One API key per role (named test-<role>), and a revoked admin key under "revoked"."""
    found = {}
    async with db.begin() as conn:
        for role in Role:
            _name, key = await create_key(conn, role, f"test-{role.value}")
            found[role.value] = key
        _name, found["revoked"] = await create_key(conn, Role.ADMIN, "test-revoked")
        await revoke_key(conn, "test-revoked")
    return found


@pytest.fixture(scope="session")
async def app(settings: Settings) -> AsyncIterator[object]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


async def _clean(db: Database) -> None:
    async with db.begin() as conn:
        # The audit tables refuse TRUNCATE (migration 0004); their triggers do not fire in a
        # replica session. Only for the TRUNCATE, and SET LOCAL ends with the transaction anyway.
        await conn.execute(text("SET LOCAL session_replication_role = replica"))
        await conn.execute(text(f"TRUNCATE {', '.join(MUTABLE_TABLES)}"))
        await conn.execute(text("SET LOCAL session_replication_role = origin"))
        await conn.execute(text(
            "UPDATE policies SET prepay_required = (risk_class = 'CCC'), hold_band = 0.20, "
            "max_days_past_due = 30, prepay_days_past_due = 90, overdue_tolerance = 0"))


class Api:
    """An httpx client over the ASGI app that speaks as one role."""

    def __init__(self, app: object, keys: dict[str, str]) -> None:
        self._client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app),  # type: ignore[arg-type]
                                         base_url="http://creditgate.test")
        self._keys = keys

    def _headers(self, role: str | None, headers: dict[str, str] | None) -> dict[str, str]:
        out = dict(headers or {})
        if role is not None:
            out.setdefault("Authorization", f"Bearer {self._keys[role]}")
        return out

    async def request(self, method: str, path: str, *, role: str | None = "admin",
                      headers: dict[str, str] | None = None, **kwargs: object) -> httpx.Response:
        return await self._client.request(method, path, headers=self._headers(role, headers),
                                          **kwargs)  # type: ignore[arg-type]

    async def get(self, path: str, **kw: object) -> httpx.Response:
        return await self.request("GET", path, **kw)  # type: ignore[arg-type]

    async def post(self, path: str, json: object = None, **kw: object) -> httpx.Response:
        return await self.request("POST", path, json=json, **kw)  # type: ignore[arg-type]

    async def put(self, path: str, json: object = None, **kw: object) -> httpx.Response:
        return await self.request("PUT", path, json=json, **kw)  # type: ignore[arg-type]

    async def patch(self, path: str, json: object = None, **kw: object) -> httpx.Response:
        return await self.request("PATCH", path, json=json, **kw)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
async def _session_api(app: object, keys: dict[str, str]) -> Api:
    return Api(app, keys)


@pytest.fixture
async def api(_session_api: Api, db: Database) -> Api:
    """The API, over empty ledgers and the default policies."""
    await _clean(db)
    return _session_api


@pytest.fixture
async def clean_db(db: Database) -> Database:
    """The database, emptied of ledgers, for tests that work below the API."""
    await _clean(db)
    return db
