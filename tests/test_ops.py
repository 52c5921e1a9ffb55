"""Operations: health, metrics, request ids, JSON logs, key revocation across processes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
from collections.abc import Iterator

import asyncpg
import httpx
import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory

from app.auth.keys import create_key, revoke_key
from app.auth.roles import Role
from app.logs import JsonFormatter
from app.main import create_app
from tests.conftest import ROOT, _admin, _server_url, migrate
from tests.helpers import account, check
from tests.server import serve

# The head as a developer's `alembic heads` sees it (alembic.ini, the checkout's migrations/).
HEAD = ScriptDirectory.from_config(Config(str(ROOT / "alembic.ini"))).get_current_head()


async def test_livez_and_readyz(api):
    assert (await api.get("/livez", role=None)).json() == {"status": "ok"}
    ready = await api.get("/readyz", role=None)
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "up", "cache": "up"}


async def test_metrics_exposition(api):
    await account(api, limit="100")
    await check(api, "O1", "10", channel="webshop")
    await check(api, "O2", "500", channel="carrier-pigeon")
    text = (await api.get("/metrics", role=None)).text
    assert 'creditgate_decisions_total{channel="webshop",outcome="approve",reason="WITHIN_LIMIT"}' \
        in text
    assert 'channel="other",outcome="prepay",reason="OVER_LIMIT_BEYOND_TOLERANCE"' in text
    assert "creditgate_decision_seconds_bucket" in text
    assert 'creditgate_http_requests_total{method="POST",route="/v1/credit-checks",status="201"}' \
        in text
    assert "creditgate_holds_open 0.0" in text
    assert "creditgate_db_pool_connections_in_use" in text
    assert "C1" not in text, "no per-customer labels"


async def test_request_id_is_echoed_or_generated(api):
    given = await api.get("/livez", role=None, headers={"X-Request-ID": "abc-123"})
    assert given.headers["x-request-id"] == "abc-123"
    made = await api.get("/livez", role=None, headers={"X-Request-ID": "bad id with spaces"})
    assert made.headers["x-request-id"] != "bad id with spaces"
    assert len(made.headers["x-request-id"]) == 32


async def test_one_json_log_line_per_request_without_secrets(api, keys, caplog):
    await account(api, limit="100")
    with caplog.at_level(logging.INFO, logger="creditgate.request"):
        decision = await check(api, "O1", "10")
    records = [r for r in caplog.records if r.name == "creditgate.request"]
    line = json.loads(JsonFormatter().format(records[-1]))
    assert line["route"] == "/v1/credit-checks" and line["status"] == 201
    assert line["decision_id"] == decision["decision_id"] and line["outcome"] == "approve"
    assert line["caller"] == "test-order-entry"
    assert {"ts", "level", "request_id", "duration_ms"} <= set(line)
    assert keys["order-entry"] not in json.dumps(line)
    assert "amount" not in line


async def test_revoked_key_stops_working_at_once_despite_the_key_cache(settings, db):
    cached = settings.model_copy(update={"key_cache_seconds": 3600})
    app = create_app(cached)
    async with db.begin() as conn:
        _name, key = await create_key(conn, Role.CONTROLLER, "revoke-me")
    async with app.router.lifespan_context(app):
        verifier = app.state.keys
        for _ in range(50):  # wait for the revocation listener to be up
            if verifier._listening:
                break
            await asyncio.sleep(0.05)
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
        auth = {"Authorization": f"Bearer {key}"}
        assert (await client.get("/v1/holds", headers=auth)).status_code == 200
        assert verifier._cache, "the key is cached now"
        async with db.begin() as conn:
            assert await revoke_key(conn, "revoke-me")
        statuses = []
        for _ in range(20):
            statuses.append((await client.get("/v1/holds", headers=auth)).status_code)
            if statuses[-1] == 401:
                break
            await asyncio.sleep(0.05)
        assert statuses[-1] == 401, statuses
        assert len(statuses) <= 3, "revocation reached this process within ~100 ms"


async def test_docs_are_served_and_every_body_has_an_example(api):
    docs = await api.get("/docs", role=None)
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    spec = (await api.get("/openapi.json", role=None)).json()
    schemas = spec["components"]["schemas"]
    missing = []
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            body = op.get("requestBody", {}).get("content", {}).get("application/json")
            if body is not None:
                schema = body["schema"]
                ref = next((s["$ref"] for s in schema.get("anyOf", [schema]) if "$ref" in s), "")
                if not schemas.get(ref.rsplit("/", 1)[-1], {}).get("examples"):
                    missing.append(f"{method.upper()} {path} request")
    assert missing == []
    for name in ("DecisionOut", "ExposureOut"):
        example = schemas[name]["examples"][0]
        assert set(schemas[name]["required"]) <= set(example) <= set(schemas[name]["properties"])


@contextlib.contextmanager
def _empty_database() -> Iterator[str]:
    """A new PostgreSQL database with no schema at all, dropped afterwards."""
    name = f"creditgate_empty_{os.getpid()}_{secrets.token_hex(3)}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    try:
        yield _server_url(name)
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _sql(url: str, statement: str) -> None:
    async def run() -> None:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(run())


def _outdated(base: str) -> dict[str, object]:
    r = httpx.get(f"{base}/readyz", timeout=5)
    assert r.status_code == 503, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body = dict(r.json())
    assert body["code"] == "schema_outdated", body
    assert body["expected_revision"] == HEAD
    assert body["checks"]["database"] == "schema_outdated"
    return body


@pytest.mark.slow
def test_readyz_refuses_an_unmigrated_database_until_it_is_migrated(tmp_path):
    log_path = tmp_path / "server.log"
    with _empty_database() as url, serve(url, workers=1, ready=False, log_path=log_path) as base:
        body = _outdated(base)
        assert body["current_revision"] is None
        assert "run creditgate migrate" in str(body["detail"])
        # An API call reaches tables that do not exist: 503 schema_outdated, not 500.
        r = httpx.post(f"{base}/v1/credit-checks", timeout=5,
                       headers={"Authorization": "Bearer cg_not-a-real-key"},
                       json={"order_id": "O1", "customer_id": "C1", "amount": "1.00",
                             "currency": "EUR"})
        assert r.status_code == 503, r.text
        assert r.json()["code"] == "schema_outdated"
        assert "run creditgate migrate" in r.json()["detail"]

        migrate(url)
        ready = httpx.get(f"{base}/readyz", timeout=5)
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"]["database"] == "up"
    log = log_path.read_text()
    assert "run creditgate migrate" in log
    assert "internal_error" not in log and "unhandled error" not in log


@pytest.mark.slow
def test_readyz_refuses_a_database_behind_or_ahead_of_the_code(tmp_path):
    with _empty_database() as url:
        migrate(url)
        with serve(url, workers=1, ready=True) as base:
            # Ahead: migrated by a newer version that was then rolled back.
            _sql(url, "UPDATE alembic_version SET version_num = 'ffffffffffff'")
            body = _outdated(base)
            assert body["current_revision"] == "ffffffffffff"
            assert "does not know" in str(body["detail"])
            # Behind: one migration short of the head.
            previous = ScriptDirectory.from_config(Config(str(ROOT / "alembic.ini"))
                                                   ).get_revision(HEAD).down_revision
            _sql(url, f"UPDATE alembic_version SET version_num = '{previous}'")
            body = _outdated(base)
            assert body["current_revision"] == previous
            assert "run creditgate migrate" in str(body["detail"])
            _sql(url, f"UPDATE alembic_version SET version_num = '{HEAD}'")
            assert httpx.get(f"{base}/readyz", timeout=5).status_code == 200
