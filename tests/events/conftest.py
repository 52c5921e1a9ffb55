"""The events tests run on a database of their own (so that no other test's app runs a
dispatcher against their deliveries), with CREDITGATE_WEBHOOK_ALLOW_PRIVATE=true (the
receivers are on 127.0.0.1) and no in-app dispatcher: each test drives its own Dispatcher,
with an injectable clock."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from sqlalchemy import text

from app import clock
from app.auth.keys import create_key
from app.auth.roles import Role
from app.db.engine import Database
from app.events.dispatcher import Dispatcher
from app.main import create_app
from app.settings import Settings
from tests.api import Api
from tests.conftest import throwaway_database

EVENT_TABLES = ("events", "webhooks", "webhook_deliveries", "webhook_attempts",
                "webhook_changes", "accounts", "credit_file", "alerts")


class FakeClock:
    """A clock the test moves by hand (starts at the real now)."""

    def __init__(self) -> None:
        self.at = clock.now()

    def __call__(self) -> dt.datetime:
        return self.at

    def advance(self, delta: dt.timedelta | float) -> dt.datetime:
        self.at += delta if isinstance(delta, dt.timedelta) else dt.timedelta(seconds=delta)
        return self.at


@pytest.fixture(scope="session")
def events_url() -> Iterator[str]:
    with throwaway_database("creditgate_events") as url:
        yield url


@pytest.fixture(scope="session")
def events_settings(events_url: str) -> Settings:
    return Settings(database_url=events_url, redis_url=None, expire_interval_seconds=0,
                    monitor_interval_seconds=0, webhook_poll_seconds=0,
                    webhook_allow_private=True)


@pytest.fixture(scope="session")
async def edb(events_settings: Settings) -> AsyncIterator[Database]:
    database = Database(events_settings)
    yield database
    await database.dispose()


@pytest.fixture(scope="session")
async def ekeys(edb: Database) -> dict[str, str]:
    found = {}
    async with edb.begin() as conn:
        for role in Role:
            _name, key = await create_key(conn, role, f"events-{role.value}")
            found[role.value] = key
    return found


async def _app_api(settings: Settings, keys: dict[str, str]) -> AsyncIterator[Api]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield Api(application, keys)


@pytest.fixture(scope="session")
async def _eapi(events_settings: Settings, ekeys: dict[str, str]) -> AsyncIterator[Api]:
    async for api in _app_api(events_settings, ekeys):
        yield api


@pytest.fixture(scope="session")
async def strict_api(events_settings: Settings, ekeys: dict[str, str]) -> AsyncIterator[Api]:
    """The same database, served with the production default: https and public only."""
    strict = events_settings.model_copy(update={"webhook_allow_private": False})
    async for api in _app_api(strict, ekeys):
        yield api


async def clean_events(db: Database) -> None:
    async with db.begin() as conn:
        await conn.execute(text("SET LOCAL session_replication_role = replica"))
        await conn.execute(text(f"TRUNCATE {', '.join(EVENT_TABLES)}"))


@pytest.fixture
async def eapi(_eapi: Api, edb: Database) -> Api:
    await clean_events(edb)
    return _eapi


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()


def dispatcher(db: Database, now: Any = clock.now, **kw: Any) -> Dispatcher:
    import random

    return Dispatcher(db, now=now, rng=random.Random(7), **kw)


async def create_webhook(api: Api, url: str, types: list[str] | None = None,
                         **extra: Any) -> dict[str, Any]:
    r = await api.post("/v1/webhooks", {"url": url, "event_types": types or ["order.held"],
                                        **extra})
    assert r.status_code == 201, r.text
    return dict(r.json())
