"""Logs never hold API keys, secrets or request bodies, whatever the request did."""

from __future__ import annotations

import json
import logging
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from app.auth.keys import KEY_PREFIX, hash_key
from app.db.engine import Database
from app.logs import JsonFormatter
from app.main import create_app
from app.settings import Settings
from tests.server import serve

MARK = "ZQXSECRETMARK"  # in bodies only: it must never reach the log
BOGUS_KEY = KEY_PREFIX + "ZQXnotarealkeybutitlookslikeone0123456789abcdef"

# Fails inserts of accounts whose name carries the mark, quoting the row in the message and
# in DETAIL the way PostgreSQL's own errors do.
LEAKY_TRIGGER = f"""
CREATE FUNCTION zqx_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'refused account %', NEW.name USING DETAIL = 'Failing row: ' || NEW.name;
END $$;
CREATE TRIGGER zqx_refuse BEFORE INSERT ON accounts FOR EACH ROW
  WHEN (NEW.name LIKE '{MARK}%') EXECUTE FUNCTION zqx_refuse();
"""
DROP_LEAKY_TRIGGER = ("DROP TRIGGER IF EXISTS zqx_refuse ON accounts; "
                      "DROP FUNCTION IF EXISTS zqx_refuse()")


async def _execute(database_url: str, sql: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _lines(log: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.splitlines() if line.startswith("{")]


@pytest.mark.slow
async def test_the_log_holds_no_keys_and_no_bodies(database_url, keys, clean_db, tmp_path):
    log_path = tmp_path / "server.log"
    await _execute(database_url, LEAKY_TRIGGER)
    try:
        with serve(database_url, workers=1, log_path=log_path,
                   env={"CREDITGATE_LOG_LEVEL": "INFO"}) as base:
            sent = _send_everything(base, keys)
    finally:
        await _execute(database_url, DROP_LEAKY_TRIGGER)
    log = log_path.read_text()

    # Which keys leaked, by role: a failure must not print the keys themselves.
    leaked = [role for role, key in {**keys, "bogus": BOGUS_KEY}.items()
              if any(secret in log for secret in
                     (key.removeprefix(KEY_PREFIX), hash_key(key)))]
    assert leaked == []
    assert "Bearer " not in log and "authorization" not in log.lower()
    assert MARK not in log, [line for line in log.splitlines() if MARK in line]

    requests = {line["request_id"]: line for line in _lines(log)
                if line.get("logger") == "creditgate.request" and "request_id" in line}
    for request_id, (method, route, status) in sent.items():
        line = requests.get(request_id)
        assert line is not None, f"no request line for {request_id}"
        assert (line["method"], line["route"], line["status"]) == (method, route, status), line
        assert isinstance(line["duration_ms"], float | int)
    assert requests["logs-check"]["caller"] == "test-order-entry"
    assert "caller" not in requests["logs-bad-key"]

    unhandled = [line for line in _lines(log) if line.get("msg") == "unhandled error"]
    assert len(unhandled) == 1, unhandled
    assert unhandled[0]["sqlstate"] == "P0001"
    assert unhandled[0]["error_type"] == "sqlalchemy.exc.DBAPIError"
    assert "Traceback (most recent call last)" in unhandled[0]["traceback"]
    assert "RaiseError" in unhandled[0]["traceback"]


def _send_everything(base: str, keys: dict[str, str]) -> dict[str, tuple[str, str, int]]:
    """Send one request of each kind; returns request id -> (method, route, status)."""
    admin = {"Authorization": f"Bearer {keys['admin']}"}
    entry = {"Authorization": f"Bearer {keys['order-entry']}"}
    sent: dict[str, tuple[str, str, int]] = {}
    customer = "/v1/customers/{customer_id}"
    checks = "/v1/credit-checks"

    with httpx.Client(base_url=base, timeout=30) as client:
        def send(request_id: str, method: str, path: str, route: str, status: int,
                 headers: dict[str, str], **kwargs: Any) -> httpx.Response:
            r = client.request(method, path, headers={**headers, "X-Request-ID": request_id},
                               **kwargs)
            assert r.status_code == status, r.text
            assert r.headers["x-request-id"] == request_id
            sent[request_id] = (method, route, status)
            return r

        send("logs-create", "PUT", "/v1/customers/LOG1", customer, 201, admin,
             json={"name": "Log Ltd", "currency": "EUR", "credit_limit": "1000"})
        check = {"order_id": "LOG-O1", "customer_id": "LOG1", "amount": "10",
                 "currency": "EUR", "channel": "erp"}
        send("logs-check", "POST", checks, checks, 201, entry, json=check)
        send("logs-exposure", "GET", "/v1/customers/LOG1/exposure",
             customer + "/exposure", 200, entry)
        send("logs-bad-key", "GET", "/v1/customers/LOG1/exposure", customer + "/exposure",
             401, {"Authorization": f"Bearer {BOGUS_KEY}"})
        send("logs-422", "PUT", "/v1/customers/LOG2", customer, 422, admin,
             json={"name": f"{MARK}-name", "currency": "EUR", "credit_limit": f"{MARK}-limit",
                   f"{MARK}_field": f"{MARK}-value"})
        send("logs-409", "POST", checks, checks, 409, entry,
             json={**check, "amount": "11", "channel": f"{MARK}-channel"})
        send("logs-bad-json", "POST", checks, checks, 400,
             {**entry, "Content-Type": "application/json"},
             content=f'{{"order_id": "{MARK}-json", '.encode())
        # Refused by the body limit before routing: no route template to name.
        send("logs-413", "POST", checks, "unmatched", 413, entry,
             json={**check, "order_id": "LOG-O2", "channel": f"{MARK}-big-" * 8000})
        send("logs-db-error", "PUT", "/v1/customers/LOG3", customer, 500, admin,
             json={"name": f"{MARK}-db", "currency": "EUR", "credit_limit": "1000"})
    return sent


async def test_database_errors_carry_no_bound_values(database_url):
    db = Database(Settings(database_url=database_url))
    try:
        with pytest.raises(DBAPIError) as caught:
            async with db.begin() as conn:
                await conn.execute(text("SELECT * FROM zqx_no_such_table WHERE x = :v"),
                                   {"v": f"{MARK}-param"})
    finally:
        await db.dispose()
    assert "zqx_no_such_table" in str(caught.value)
    assert MARK not in str(caught.value)


async def test_unexpected_errors_are_logged_without_their_messages(settings):
    app = create_app(settings)
    message = f"{MARK}-message"

    @app.get("/zqx-boom")
    async def boom() -> None:
        raise ValueError(message)

    records: list[logging.LogRecord] = []
    capture = logging.Handler()
    capture.emit = records.append  # type: ignore[method-assign]
    root = logging.getLogger()
    root.addHandler(capture)  # after create_app: it replaces the root's handlers
    try:
        transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            with pytest.raises(ValueError) as reraised:
                await client.get("/zqx-boom")
        # Starlette re-raises after answering 500; this is what uvicorn then logs.
        logging.getLogger("uvicorn.error").error("Exception in ASGI application\n",
                                                 exc_info=reraised.value)
    finally:
        root.removeHandler(capture)
    lines = [json.loads(JsonFormatter().format(r)) for r in records]
    logged = {line["logger"]: line for line in lines if "traceback" in line}
    assert set(logged) == {"creditgate.errors", "uvicorn.error"}, lines
    for line in logged.values():
        assert line["error_type"] == "builtins.ValueError"
        assert "in boom" in line["traceback"]
    assert MARK not in json.dumps(lines)
