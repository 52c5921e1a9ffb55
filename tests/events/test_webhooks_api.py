"""The webhook endpoints: admin only, bad input refused as problem+json with nothing stored,
the SSRF guard on create."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from app.events.urls import refusal
from tests.events.conftest import create_webhook

ULID = "01ARZ3NDEKTSV4RRFFQ69G5FAV"
PROBLEM = "application/problem+json"


async def _stored(db):
    async with db.autocommit() as conn:
        return tuple([await conn.scalar(text(f"SELECT count(*) FROM {t}")) for t in (
            "webhooks", "webhook_changes", "webhook_deliveries", "webhook_attempts")]
            + [await conn.scalar(text("SELECT string_agg(secret || status, ',' ORDER BY "
                                      "webhook_id) FROM webhooks"))])


def _routes(webhook_id, event_id):
    return [("POST", "/v1/webhooks", {"url": "http://127.0.0.1:9/", "event_types": ["order.held"]}),
            ("GET", "/v1/webhooks", None),
            ("DELETE", f"/v1/webhooks/{webhook_id}", None),
            ("POST", f"/v1/webhooks/{webhook_id}/rotate-secret", None),
            ("GET", f"/v1/webhooks/{webhook_id}/deliveries", None),
            ("POST", f"/v1/webhooks/{webhook_id}/redeliver/{event_id}", None)]


async def test_every_webhook_endpoint_is_admin_only(eapi, edb):
    hook = await create_webhook(eapi, "http://127.0.0.1:9/")
    before = await _stored(edb)
    for method, path, body in _routes(hook["webhook_id"], ULID):
        for role in ("controller", "order-entry", "warehouse", "ledger"):
            r = await eapi.request(method, path, role=role,
                                   **({"json": body} if body is not None else {}))
            assert r.status_code == 403, (method, path, role, r.text)
            assert r.headers["content-type"] == PROBLEM
        r = await eapi.request(method, path, role=None)
        assert r.status_code == 401, (method, path)
    assert await _stored(edb) == before


BAD_BODIES = [
    ({}, "body.url"),
    ({"event_types": ["order.held"]}, "body.url"),
    ({"url": "http://127.0.0.1:9/"}, "body.event_types"),
    ({"url": "http://127.0.0.1:9/", "event_types": []}, "body.event_types"),
    ({"url": "http://127.0.0.1:9/", "event_types": ["order.shipped"]}, "body.event_types.0"),
    ({"url": "http://127.0.0.1:9/", "event_types": ["order.held", "order.held"]},
     "body.event_types"),
    ({"url": "http://127.0.0.1:9/", "event_types": "order.held"}, "body.event_types"),
    ({"url": 5, "event_types": ["order.held"]}, "body.url"),
    ({"url": "", "event_types": ["order.held"]}, "body.url"),
    ({"url": "http://127.0.0.1:9/", "event_types": ["order.held"], "description": ""},
     "body.description"),
    ({"url": "http://127.0.0.1:9/", "event_types": ["order.held"], "secret": "whsec_x"},
     "body.secret"),
    ({"url": "ftp://127.0.0.1/", "event_types": ["order.held"]}, "body.url"),
    ({"url": "http://user:pw@127.0.0.1/", "event_types": ["order.held"]}, "body.url"),
    ({"url": "http://169.254.169.254/latest", "event_types": ["order.held"]}, "body.url"),
    ({"url": "http://0.0.0.0/", "event_types": ["order.held"]}, "body.url"),
    ({"url": "http://224.0.0.1/", "event_types": ["order.held"]}, "body.url"),
    ({"url": "http://no-such-host.invalid/", "event_types": ["order.held"]}, "body.url"),
    ({"url": "http://127.0.0.1:99999/", "event_types": ["order.held"]}, "body.url"),
    ({"url": "http://127.0.0.1/\x00", "event_types": ["order.held"]}, "body.url"),
    ({"url": "https://" + "a" * 2000 + ".com/", "event_types": ["order.held"]}, "body.url"),
]


@pytest.mark.parametrize(("body", "field"), BAD_BODIES)
async def test_bad_create_bodies_are_422_naming_the_field(eapi, edb, body, field):
    before = await _stored(edb)
    r = await eapi.post("/v1/webhooks", body)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == PROBLEM
    problem = r.json()
    assert {"type", "title", "status", "detail", "code"} <= problem.keys()
    assert field in [e["field"] for e in problem["errors"]], problem
    assert await _stored(edb) == before


async def test_malformed_json_and_non_objects(eapi, edb):
    before = await _stored(edb)
    r = await eapi.request("POST", "/v1/webhooks", content=b"{not json",
                           headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["code"] == "invalid_json"
    r = await eapi.post("/v1/webhooks", [1, 2])
    assert r.status_code == 422
    assert await _stored(edb) == before


@pytest.mark.parametrize("url", [
    "http://93.184.216.34/hooks",  # public, but not https
    "https://127.0.0.1/hooks", "https://localhost/hooks", "https://10.1.2.3/",
    "https://192.168.0.10/", "https://172.16.0.1/", "https://100.64.0.1/", "https://[::1]/",
    "https://[fd00::1]/", "https://[::ffff:127.0.0.1]/", "https://169.254.169.254/",
    "https://240.0.0.1/",
])
async def test_the_production_default_refuses_http_and_private_addresses(strict_api, edb, url):
    before = await _stored(edb)
    r = await strict_api.post("/v1/webhooks", {"url": url, "event_types": ["order.held"]})
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"] == "body.url"
    assert await _stored(edb) == before


async def test_the_production_default_accepts_a_public_https_address(strict_api, eapi):
    r = await strict_api.post("/v1/webhooks", {"url": "https://93.184.216.34/hooks",
                                               "event_types": ["account.blocked"]})
    assert r.status_code == 201, r.text
    assert set(r.json()) == {"webhook_id", "url", "event_types", "description", "secret",
                             "status", "created_at", "disabled_reason"}


def test_which_addresses_are_refused():
    import ipaddress

    def why(a, private=False):
        return refusal(ipaddress.ip_address(a), allow_private=private)

    assert why("8.8.8.8") is None and why("2606:4700::1111") is None
    assert why("127.0.0.1") == "loopback" and why("127.0.0.1", True) is None
    assert why("10.0.0.1") == "private" and why("10.0.0.1", True) is None
    assert why("169.254.169.254", True) == "link-local"
    assert why("fe80::1", True) == "link-local"
    assert why("ff02::1", True) == "multicast"
    assert why("0.0.0.0", True) == "unspecified"
    assert why("240.0.0.1", True) == "reserved"
    assert why("::ffff:10.0.0.1") == "private"


async def test_bad_paths_and_queries(eapi, edb):
    hook = await create_webhook(eapi, "http://127.0.0.1:9/")
    before = await _stored(edb)
    w = hook["webhook_id"]
    cases = [
        ("DELETE", f"/v1/webhooks/{ULID}", {}, 404),
        ("DELETE", "/v1/webhooks/not-an-id", {}, 422),
        ("POST", f"/v1/webhooks/{ULID}/rotate-secret", {}, 404),
        ("POST", "/v1/webhooks/x/rotate-secret", {}, 422),
        ("GET", f"/v1/webhooks/{ULID}/deliveries", {}, 404),
        ("GET", f"/v1/webhooks/{w}/deliveries", {"params": {"limit": 0}}, 422),
        ("GET", f"/v1/webhooks/{w}/deliveries", {"params": {"limit": 201}}, 422),
        ("GET", f"/v1/webhooks/{w}/deliveries", {"params": {"cursor": "x"}}, 422),
        ("GET", f"/v1/webhooks/{w}/deliveries", {"params": {"event_id": "x"}}, 422),
        ("POST", f"/v1/webhooks/{ULID}/redeliver/{ULID}", {}, 404),
        ("POST", f"/v1/webhooks/{w}/redeliver/{ULID}", {}, 404),
        ("POST", f"/v1/webhooks/{w}/redeliver/bad", {}, 422),
    ]
    for method, path, kw, status in cases:
        r = await eapi.request(method, path, **kw)
        assert r.status_code == status, (method, path, kw, r.text)
        assert r.headers["content-type"] == PROBLEM
        if status == 422:
            assert r.json()["errors"], r.json()
    assert await _stored(edb) == before
    r = await eapi.request("PUT", "/v1/webhooks")
    assert r.status_code == 405 and "GET" in r.headers["allow"]


async def test_rotation_shows_the_new_secret_once_and_is_audited(eapi, edb):
    hook = await create_webhook(eapi, "http://127.0.0.1:9/")
    r = await eapi.post(f"/v1/webhooks/{hook['webhook_id']}/rotate-secret")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["secret"] != hook["secret"] and body["previous_secret_expires_at"]
    async with edb.autocommit() as conn:
        rows = (await conn.execute(text(
            "SELECT action, actor FROM webhook_changes ORDER BY change_id"))).all()
    assert [tuple(x) for x in rows] == [("created", "events-admin"),
                                        ("secret_rotated", "events-admin")]
    assert body["secret"] not in (await eapi.get("/v1/webhooks")).text
