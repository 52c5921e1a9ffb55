"""Test fixtures: a throwaway PostgreSQL database and Redis namespace, the app over ASGI,
one API key per role. The client is tests/api.py; what is emptied between tests,
tests/cleanup.py."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import secrets
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from app.auth.keys import create_key, revoke_key
from app.auth.roles import Role
from app.db.engine import Database
from app.main import create_app
from app.settings import Settings
from tests.api import Api
from tests.cleanup import clean

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN = os.environ.get("CREDITGATE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("CREDITGATE_TEST_REDIS", "redis://127.0.0.1:6379/0")


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


@contextlib.contextmanager
def throwaway_database(prefix: str) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database (its URL), dropped at the end."""
    name = f"{prefix}_{os.getpid()}_{secrets.token_hex(3)}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    url = _server_url(name)
    try:
        migrate(url)
        yield url
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, dropped at the end."""
    with throwaway_database("creditgate_test") as url:
        yield url


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    # The product's defaults, except what isolates this session (its own database and cache
    # namespace) and three background tasks, which are off: the periodic expiry and the daily
    # alert sweep, because tests move the clock and expire or sweep on purpose, and the
    # webhook dispatcher's poll, which would race the TRUNCATE between tests. Each task is
    # tested on its own: tests/orders/test_lifecycle.py, tests/monitoring/test_sweep.py,
    # tests/events/ (with a database and dispatchers of its own).
    return Settings(database_url=database_url, redis_url=REDIS_URL,
                    cache_namespace=database_url.rsplit("/", 1)[1], expire_interval_seconds=0,
                    monitor_interval_seconds=0, webhook_poll_seconds=0)


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


@pytest.fixture(scope="session")
async def _session_api(app: object, keys: dict[str, str]) -> Api:
    return Api(app, keys)


@pytest.fixture
async def api(_session_api: Api, db: Database, settings: Settings) -> Api:
    """The API, over empty ledgers, the default policies and an empty cache."""
    await clean(db, settings)
    return _session_api


@pytest.fixture
async def clean_db(db: Database, settings: Settings) -> Database:
    """The database, emptied of ledgers (and the cache of its state), for tests that work
    below the API."""
    await clean(db, settings)
    return db


# -- a session that cannot hang on its way out ---------------------------------------------

TEARDOWN_SECONDS = float(os.environ.get("CREDITGATE_TEST_TEARDOWN_SECONDS", "90"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """The last test's teardown closes the session's event loop, which waits for every task
    still pending. A task that does not end on cancellation would hang the run (and CI) for
    good; this names such tasks and ends the process with the run's own verdict instead."""
    if nextitem is None:
        done = threading.Event()
        session = item.session
        threading.Thread(target=_watch_teardown, args=(done, session), daemon=True).start()
        try:
            yield
        finally:
            done.set()
    else:
        yield


def _watch_teardown(done: threading.Event, session: pytest.Session) -> None:
    if done.wait(TEARDOWN_SECONDS):
        return
    capture = session.config.pluginmanager.get_plugin("capturemanager")
    if capture is not None:  # the teardown's output is captured: say this on the terminal
        capture.suspend_global_capture(in_=True)
    stuck = [t for t in gc.get_objects() if isinstance(t, asyncio.Task) and not t.done()]
    print(f"\n*** the session's teardown hung for {TEARDOWN_SECONDS} s; pending tasks:",
          file=sys.stderr)
    for task in stuck:
        print(f"  {task.get_coro()!r}", file=sys.stderr)
        for frame in task.get_stack(limit=8):
            print(f"    {frame.f_code.co_filename}:{frame.f_lineno} {frame.f_code.co_name}",
                  file=sys.stderr)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    stats = getattr(reporter, "stats", {})
    passed, failed = len(stats.get("passed", [])), len(stats.get("failed", []))
    errors = len(stats.get("error", []))
    print(f"\n{passed} passed, {failed + errors} failed", flush=True)
    sys.stderr.flush()
    os._exit(1 if failed or errors or session.testsfailed else 0)
