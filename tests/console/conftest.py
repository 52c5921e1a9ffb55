"""Console fixtures: a browser-like client over the ASGI app (cookies kept, the console's own
origin on every POST), signed in with a role's key."""

from __future__ import annotations

import asyncio
import re
from urllib.parse import urlencode

import httpx
import pytest
from sqlalchemy.exc import DBAPIError

from app.db.engine import Database
from app.errors import sqlstate
from app.settings import Settings
from tests.api import Api
from tests.cleanup import clean

BASE = "http://creditgate.test"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class Browser:
    """What a browser does for a form: keep cookies, send the page's hidden CSRF field and
    the Origin header."""

    def __init__(self, app: object) -> None:
        self.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app),  # type: ignore[arg-type]
                                      base_url=BASE, follow_redirects=False)
        self.csrf: str | None = None

    async def get(self, path: str, **kw: object) -> httpx.Response:
        r = await self.http.get(path, **kw)  # type: ignore[arg-type]
        found = CSRF.search(r.text)
        if found:
            self.csrf = found.group(1)
        return r

    async def post(self, path: str, data: dict[str, object] | list[tuple[str, str]],
                   *, csrf: bool = True, origin: str | None = BASE) -> httpx.Response:
        fields = list(data.items()) if isinstance(data, dict) else list(data)
        if csrf and self.csrf is not None:
            fields.append(("csrf_token", self.csrf))
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if origin:
            headers["Origin"] = origin
        return await self.http.post(path, content=urlencode(fields), headers=headers)

    async def sign_in(self, key: str) -> httpx.Response:
        await self.get("/console/sign-in")
        r = await self.post("/console/sign-in", {"api_key": key})
        if r.status_code == 303:
            await self.get("/console/")
        return r

    async def close(self) -> None:
        await self.http.aclose()


@pytest.fixture
async def api(_session_api: Api, db: Database, settings: Settings) -> Api:
    """tests/conftest.py's `api`, but its TRUNCATE retried when PostgreSQL picks it as the
    victim of a deadlock: the app's webhook dispatcher (on in the session's settings) may
    be claiming deliveries across the same tables at that moment."""
    for attempt in range(5):
        try:
            await clean(db, settings)
            break
        except DBAPIError as exc:
            if sqlstate(exc) != "40P01" or attempt == 4:
                raise
            await asyncio.sleep(0.1)
    return _session_api


@pytest.fixture
async def browser(app: object, api: object) -> Browser:
    b = Browser(app)
    yield b  # type: ignore[misc]
    await b.close()


@pytest.fixture
async def controller(browser: Browser, keys: dict[str, str]) -> Browser:
    r = await browser.sign_in(keys["controller"])
    assert r.status_code == 303, r.text
    return browser
