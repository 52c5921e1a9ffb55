"""A method a path does not support is a 405 problem whose `Allow` lists what it does support.

RFC 9110 §15.5.6: a 405 MUST carry `Allow` with the target's supported methods. Checked for
every path of the OpenAPI document against the methods the document lists for it, so the
header, the published contract and the router can never disagree.
"""

from __future__ import annotations

import re

import pytest

from app.main import create_app
from app.settings import Settings
from tests.api import Api

PROBED = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
DOCUMENTED = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def _paths(settings: Settings) -> dict[str, set[str]]:
    """Each concrete path of the document (parameters filled in) and its methods."""
    doc = create_app(settings).openapi()
    found = {}
    for template, item in doc["paths"].items():
        path = re.sub(r"\{[^}]+\}", "A1", template)
        found[path] = {m.upper() for m in item if m in DOCUMENTED}
    return found


def _allow(header: str) -> set[str]:
    return {m.strip() for m in header.split(",") if m.strip()}


async def test_every_path_answers_405_with_its_allowed_methods(api: Api, settings: Settings
                                                                ) -> None:
    paths = _paths(settings)
    assert len(paths) >= 15
    checked = 0
    for path, methods in paths.items():
        for method in PROBED:
            if method in methods:
                continue
            r = await api.request(method, path, role="admin")
            where = f"{method} {path}"
            assert r.status_code == 405, (where, r.status_code, r.text)
            assert r.headers["content-type"].startswith("application/problem+json"), where
            allow = r.headers.get("allow", "")
            assert allow, where
            assert _allow(allow) == methods, (where, allow)
            body = r.json()
            assert body["code"] == "method_not_allowed", where
            assert body["status"] == 405
            assert body["detail"].startswith(f"{method} is not supported here; use "), where
            named = body["detail"].split("; use ", 1)[1]
            assert _allow(named) == methods, (where, body["detail"])
            checked += 1
    assert checked >= 60


async def test_head_of_an_api_path_is_405_too_and_says_so(api: Api) -> None:
    # The API's routes serve GET but not HEAD, so HEAD is not in Allow (RFC 9110: Allow
    # lists the supported methods, and these are what the router really dispatches).
    r = await api.request("HEAD", "/v1/holds", role="admin")
    assert r.status_code == 405
    assert _allow(r.headers["allow"]) == {"GET"}
    r = await api.request("HEAD", "/v1/customers/C1", role="admin")
    assert r.status_code == 405
    assert _allow(r.headers["allow"]) == {"GET", "PUT", "PATCH"}


@pytest.mark.parametrize(("method", "path", "allow"), [
    ("DELETE", "/v1/holds", {"GET"}),
    ("PUT", "/v1/orders/x/cancel", {"POST"}),
    ("DELETE", "/v1/customers/C1", {"GET", "PUT", "PATCH"}),
    ("GET", "/v1/customers/C1/open-items", {"PUT"}),
    ("DELETE", "/v1/policies/BBB", {"GET", "PUT"}),
])
async def test_the_reported_cases(api: Api, method: str, path: str, allow: set[str]) -> None:
    r = await api.request(method, path, role="admin")
    assert r.status_code == 405
    assert _allow(r.headers["allow"]) == allow
    assert not r.json()["detail"].endswith("use ")


async def test_every_allowed_method_is_really_served(api: Api, settings: Settings) -> None:
    """The other direction: no method in Allow is itself refused with a 405."""
    for path, methods in _paths(settings).items():
        for method in methods:
            r = await api.request(method, path, role="admin")
            assert r.status_code != 405, (method, path, r.text)


async def test_an_unknown_path_is_404_not_405(api: Api) -> None:
    r = await api.request("DELETE", "/v1/nothing-here", role="admin")
    assert r.status_code == 404
    assert "allow" not in r.headers
