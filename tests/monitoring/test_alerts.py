"""Early-warning alerts through the API: raised by the change that makes them true, once,
resolved by the change that makes them false; acknowledging; listing; metrics."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import func, select

from app import clock
from app.metrics import ALERTS_RAISED
from app.monitoring.alerts import grade_downgrade
from app.monitoring.service import raise_alert
from app.monitoring.sweep import sweep
from app.monitoring.tables import alerts as alerts_table
from tests.api import Api
from tests.helpers import account, check, days, events, history, invoice, pay


async def alerts(api: Api, **params: Any) -> list[dict[str, Any]]:
    r = await api.get("/v1/alerts", params={"limit": 200, **params})
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


async def kinds(api: Api, customer_id: str = "C1", status: str | None = None) -> list[str]:
    """Kinds of the customer's alerts that are not resolved (or of the given status)."""
    found = await alerts(api, customer_id=customer_id)
    if status is None:
        return sorted(a["kind"] for a in found if a["status"] != "resolved")
    return sorted(a["kind"] for a in found if a["status"] == status)


def raised(kind: str) -> float:
    return float(ALERTS_RAISED.labels(kind)._value.get())


async def test_utilisation_and_limit_exceeded_are_raised_once_and_resolve(api):
    before = raised("UTILISATION_HIGH"), raised("LIMIT_EXCEEDED")
    await account(api, limit="1000")
    await invoice(api, "I1", "900")
    assert await kinds(api) == ["UTILISATION_HIGH"]
    await invoice(api, "I2", "50")  # still high: not raised again
    [alert] = await alerts(api, customer_id="C1")
    assert alert["status"] == "open" and alert["resolved_at"] is None
    assert alert["details"] == {"exposure": "900.00", "effective_limit": "1000.00",
                                "utilisation": "0.9000", "alert_utilisation": "0.9000"}
    assert (await check(api, "H1", "200"))["outcome"] == "hold"
    r = await api.post("/v1/orders/H1/release", {"reason": "known customer"})
    assert r.status_code == 200, r.text
    assert await kinds(api) == ["LIMIT_EXCEEDED", "UTILISATION_HIGH"]
    await pay(api, "P1", "600")
    assert await kinds(api) == []
    found = await alerts(api, customer_id="C1", status="resolved")
    assert sorted(a["kind"] for a in found) == ["LIMIT_EXCEEDED", "UTILISATION_HIGH"]
    assert all(a["resolved_at"] is not None for a in found)
    assert (raised("UTILISATION_HIGH"), raised("LIMIT_EXCEEDED")) == (before[0] + 1,
                                                                      before[1] + 1)
    file = await events(api)
    assert file.count("alert_raised") == 2 and file.count("alert_resolved") == 2
    entry = next(e for e in await history(api) if e["event"] == "alert_raised")
    assert entry["actor"] == "system" and entry["details"]["kind"] == "LIMIT_EXCEEDED"


async def test_a_limit_decrease_raises_limit_exceeded_and_an_increase_resolves_it(api):
    await account(api, limit="1000")
    await invoice(api, "I1", "500")
    assert await kinds(api) == []
    r = await api.patch("/v1/customers/C1", {"credit_limit": "400"})
    assert r.status_code == 200, r.text
    assert await kinds(api) == ["LIMIT_EXCEEDED", "UTILISATION_HIGH"]
    r = await api.patch("/v1/customers/C1", {"credit_limit": "5000"})
    assert await kinds(api) == []


async def test_overdue_is_raised_by_the_invoice_and_resolved_by_the_payment(api):
    await account(api, limit="10000")
    await invoice(api, "I1", "100", due_in=-30)  # 30 days past due: not beyond 30
    assert await kinds(api) == []
    await invoice(api, "I2", "100", due_in=-31)
    [alert] = await alerts(api, customer_id="C1", kind="OVERDUE")
    assert alert["details"] == {"oldest_overdue_days": 31, "overdue_amount": "200.00",
                                "max_days_past_due": 30}
    await pay(api, "P1", "100", invoice_id="I2")
    assert "OVERDUE" not in await kinds(api)


async def test_overdue_goes_with_an_open_items_snapshot(api):
    await account(api, limit="10000")
    await invoice(api, "I1", "100", due_in=-45)
    assert "OVERDUE" in await kinds(api)  # (and PAYMENT_INDEX_LOW: overdue items count)
    r = await api.put("/v1/customers/C1/open-items", {"items": [
        {"invoice_id": "I1", "amount": "100", "currency": "EUR", "due_on": days(5)}]},
        role="ledger")
    assert r.status_code == 200, r.text
    assert "OVERDUE" not in await kinds(api)


async def test_payment_index_low_from_a_late_payment(api):
    await account(api, limit="100000")
    await invoice(api, "I1", "100", due_in=-60)
    await pay(api, "P1", "100", invoice_id="I1")  # 60 days late: index 40
    r = await api.get("/v1/customers/C1/exposure")
    index = r.json()["payment_index"]
    assert index is not None and index < 50, r.json()
    [alert] = await alerts(api, customer_id="C1", kind="PAYMENT_INDEX_LOW")
    assert alert["details"] == {"payment_index": index, "alert_payment_index": 50}
    # the class's threshold is the policy's: a lower threshold resolves it at the next change
    r = await api.get("/v1/policies/unrated")
    policy = {k: v for k, v in r.json().items()
              if k not in ("risk_class", "updated_at", "updated_by", "version")}
    r = await api.put("/v1/policies/unrated", {**policy, "alert_payment_index": index})
    assert r.status_code == 200, r.text
    await api.patch("/v1/customers/C1", {"name": "renamed"})
    assert "PAYMENT_INDEX_LOW" not in await kinds(api)


async def test_review_due_is_raised_by_setting_the_date_and_goes_with_a_later_date(api):
    await account(api, review_due_on=days(15))
    assert await kinds(api) == []
    r = await api.patch("/v1/customers/C1", {"review_due_on": days(14)})
    assert r.status_code == 200, r.text
    [alert] = await alerts(api, customer_id="C1")
    assert alert["kind"] == "REVIEW_DUE"
    assert alert["details"] == {"review_due_on": days(14), "days_left": 14}
    await api.patch("/v1/customers/C1", {"review_due_on": days(365)})
    assert await kinds(api) == []
    await account(api, "C2", review_due_on=days(-3))  # created already overdue
    assert await kinds(api, "C2") == ["REVIEW_DUE"]


async def test_limit_expiring_is_raised_by_a_temporary_limit_and_goes_with_it(api):
    await account(api, temporary_limit={"amount": "500", "expires_on": days(20)})
    assert await kinds(api) == []
    await api.patch("/v1/customers/C1",
                    {"temporary_limit": {"amount": "500", "expires_on": days(14)}})
    [alert] = await alerts(api, customer_id="C1")
    assert alert["kind"] == "LIMIT_EXPIRING" and alert["details"]["days_left"] == 14
    await api.patch("/v1/customers/C1", {"temporary_limit": None})
    assert await kinds(api) == []


async def test_order_changes_evaluate_too(api):
    """Cancel, amend, reject and dispatch run the evaluation in their transaction."""
    await account(api, limit="1000")
    await check(api, "O1", "950")  # the approval raises it (app/credit/plans.check_alerts)
    assert await kinds(api) == ["UTILISATION_HIGH"]
    r = await api.post("/v1/orders/O1/dispatch-check", role="warehouse")
    assert r.status_code == 200 and r.json()["outcome"] == "approve"
    assert await kinds(api) == ["UTILISATION_HIGH"]
    await check(api, "O2", "10")
    r = await api.patch("/v1/orders/O2", {"amount": "5"}, role="order-entry")
    assert r.status_code == 200, r.text
    await invoice(api, "I1", "950", order_id="O1")
    r = await api.post("/v1/orders/O2/cancel", role="order-entry")
    assert r.status_code == 200
    assert await kinds(api) == ["UTILISATION_HIGH"]
    await pay(api, "P1", "950")
    assert await kinds(api) == []
    await invoice(api, "I2", "990")
    assert (await check(api, "H1", "100"))["outcome"] == "hold"
    r = await api.post("/v1/orders/H1/reject", {"reason": "no"})
    assert r.status_code == 200
    assert await kinds(api) == ["UTILISATION_HIGH"]


async def test_an_acknowledged_alert_still_counts_as_open_and_still_resolves(api):
    await account(api, limit="1000")
    await invoice(api, "I1", "950")
    [alert] = await alerts(api, customer_id="C1")
    r = await api.post(f"/v1/alerts/{alert['alert_id']}/acknowledge",
                       {"note": "called the customer"}, role="controller")
    assert r.status_code == 200, r.text
    acked = r.json()
    assert acked["status"] == "acknowledged" and acked["note"] == "called the customer"
    assert acked["acknowledged_by"] == "test-controller" and acked["acknowledged_at"]
    assert "Idempotent-Replayed" not in r.headers
    again = await api.post(f"/v1/alerts/{alert['alert_id']}/acknowledge", {"note": "other"})
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == acked
    await invoice(api, "I2", "20")  # still high: the acknowledged one stands for its kind
    assert [a["alert_id"] for a in await alerts(api, customer_id="C1")] == [alert["alert_id"]]
    assert await kinds(api, status="acknowledged") == ["UTILISATION_HIGH"]
    await pay(api, "P1", "500")
    [done] = await alerts(api, customer_id="C1")
    assert done["status"] == "resolved" and done["acknowledged_at"] == acked["acknowledged_at"]
    r = await api.post(f"/v1/alerts/{alert['alert_id']}/acknowledge", {"note": "late"})
    assert r.status_code == 409 and r.json()["code"] == "alert_resolved"
    file = await events(api)
    assert file.count("alert_acknowledged") == 1
    await invoice(api, "I3", "500")  # high again: a new alert, the old one stays resolved
    found = await alerts(api, customer_id="C1")
    assert [a["status"] for a in found] == ["open", "resolved"]


async def test_grade_downgrade_is_raised_once_and_resolves_when_the_grade_is_restored(api, db):
    await account(api, risk_class="A")
    await api.patch("/v1/customers/C1", {"risk_class": "BB"})
    details = grade_downgrade("A", "BB")
    assert details is not None
    now = clock.now()
    async with db.begin() as conn:
        assert await raise_alert(conn, "C1", "GRADE_DOWNGRADE", details, now=now)
        assert not await raise_alert(conn, "C1", "GRADE_DOWNGRADE", details, now=now)
    assert await kinds(api) == ["GRADE_DOWNGRADE"]
    await api.patch("/v1/customers/C1", {"risk_class": "BBB"})  # better, still below A
    assert await kinds(api) == ["GRADE_DOWNGRADE"]
    await api.patch("/v1/customers/C1", {"risk_class": "A"})
    assert await kinds(api) == []


async def test_a_rolled_back_raise_is_neither_stored_nor_counted(api, db):
    await account(api)
    before = raised("GRADE_DOWNGRADE")
    with pytest.raises(RuntimeError):
        async with db.begin() as conn:
            assert await raise_alert(conn, "C1", "GRADE_DOWNGRADE",
                                     {"from_class": "A", "to_class": "B"}, now=clock.now())
            raise RuntimeError("the caller's change failed")
    assert raised("GRADE_DOWNGRADE") == before
    assert await alerts(api, customer_id="C1") == []


async def test_order_spike_raised_by_the_check_lapses_after_30_days(api, db):
    """The check raises it (tests/credit/test_check_alerts.py has its edges); the sweep
    resolves it 30 days later."""
    await account(api, limit="100000")
    for n in range(5):
        await check(api, f"O{n}", "100")
    await check(api, "DRY", "100000", dry_run=True, expect=None)  # never counted
    await check(api, "O-300", "300")  # 3 x the average of 100: not above it
    assert await kinds(api) == []
    await check(api, "O-spike", "400.01")  # 6 previous, sum 800: 400.01 > 3 x 133.33...
    assert await kinds(api) == ["ORDER_SPIKE"]
    now = clock.now()
    await sweep(db, now=now + dt.timedelta(days=29))
    assert await kinds(api) == ["ORDER_SPIKE"]
    await sweep(db, now=now + dt.timedelta(days=30))
    assert await kinds(api) == []


async def test_listing_filters_newest_first_and_pages(api):
    await account(api, "C1", limit="100", review_due_on=days(1))
    await invoice(api, "I1", "95", customer_id="C1")
    await account(api, "C2", limit="100", review_due_on=days(2))
    listed = await alerts(api)
    assert [(a["customer_id"], a["kind"]) for a in listed] == [
        ("C2", "REVIEW_DUE"), ("C1", "UTILISATION_HIGH"), ("C1", "REVIEW_DUE")]
    assert [a["kind"] for a in await alerts(api, kind="REVIEW_DUE")] == ["REVIEW_DUE"] * 2
    assert [a["customer_id"] for a in await alerts(api, customer_id="C1", kind="REVIEW_DUE")
            ] == ["C1"]
    assert await alerts(api, status="resolved") == []
    seen, cursor = [], None
    while True:
        r = await api.get("/v1/alerts", params={"limit": 1, **({"cursor": cursor} if cursor
                                                                 else {})})
        assert r.status_code == 200 and len(r.json()["items"]) == 1
        seen += [a["alert_id"] for a in r.json()["items"]]
        cursor = r.json()["next_cursor"]
        if cursor is None:
            break
    assert seen == [a["alert_id"] for a in listed]
    assert set(listed[0]) == {"alert_id", "customer_id", "kind", "status", "raised_at",
                              "acknowledged_at", "acknowledged_by", "resolved_at", "details",
                              "note"}


async def test_reviews_due_by_a_date_inclusive_oldest_first(api):
    await account(api, "C1", review_due_on=days(10))
    await account(api, "C2", review_due_on=days(-5))
    await account(api, "C3", review_due_on=days(11))
    await account(api, "C4")
    await account(api, "C0", review_due_on=days(10))
    r = await api.get("/v1/reviews", params={"due_before": days(10)})
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert [(i["customer_id"], i["days_left"]) for i in items] == [
        ("C2", -5), ("C0", 10), ("C1", 10)]
    assert items[0]["review_due_on"] == days(-5) and items[0]["credit_limit"] == "10000.00"
    r = await api.get("/v1/reviews")  # default: due by today
    assert [i["customer_id"] for i in r.json()["items"]] == ["C2"]
    seen, cursor = [], None
    while True:
        params: dict[str, Any] = {"due_before": days(30), "limit": 2}
        if cursor:
            params["cursor"] = cursor
        r = await api.get("/v1/reviews", params=params)
        seen += [i["customer_id"] for i in r.json()["items"]]
        cursor = r.json()["next_cursor"]
        if cursor is None:
            break
    assert seen == ["C2", "C0", "C1", "C3"]


async def test_metrics_count_open_alerts_by_kind(api):
    await account(api, limit="100")
    await invoice(api, "I1", "200")
    text = (await api.get("/metrics", role=None)).text
    assert 'creditgate_alerts_open{kind="LIMIT_EXCEEDED"} 1.0' in text
    assert 'creditgate_alerts_open{kind="UTILISATION_HIGH"} 1.0' in text
    assert 'creditgate_alerts_open{kind="OVERDUE"} 0.0' in text
    assert 'creditgate_alerts_raised_total{kind="LIMIT_EXCEEDED"}' in text
    assert "C1" not in text.split("creditgate_alerts")[1]  # no per-customer labels


# -- bad input: problem+json, nothing stored ---------------------------------------------------


async def _stored(db: Any) -> tuple[int, int, int]:
    async with db.autocommit() as conn:
        rows = (await conn.execute(select(alerts_table.c.status, func.count())
                                   .group_by(alerts_table.c.status))).all()
    counts = dict(rows)
    return counts.get("open", 0), counts.get("acknowledged", 0), counts.get("resolved", 0)


@pytest.mark.parametrize("params", [
    {"status": "closed"}, {"status": "OPEN"}, {"kind": "SPIKE"}, {"kind": "utilisation_high"},
    {"customer_id": "bad id"}, {"cursor": "abc"}, {"cursor": "1~short"}, {"limit": 0},
    {"limit": 201}, {"limit": "x"},
])
async def test_bad_alert_listings_are_422(api, params):
    r = await api.get("/v1/alerts", params=params)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == "validation_error"


@pytest.mark.parametrize("params", [
    {"due_before": "2026-13-01"}, {"due_before": "tomorrow"}, {"due_before": "2026-1-1"},
    {"due_before": "1767225600"}, {"cursor": "2026-01-01"}, {"cursor": "2026-02-30~C1"},
    {"limit": 0},
])
async def test_bad_review_listings_are_422(api, params):
    r = await api.get("/v1/reviews", params=params)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"


async def test_bad_acknowledgements_change_nothing(api, db):
    await account(api, limit="100")
    await invoice(api, "I1", "95")
    [alert] = await alerts(api)
    path = f"/v1/alerts/{alert['alert_id']}/acknowledge"
    before_file = await events(api)
    cases: list[tuple[str, Any, str, int]] = [
        (path, {}, "admin", 422), (path, {"note": ""}, "admin", 422),
        (path, {"note": 5}, "admin", 422), (path, {"note": "x", "extra": 1}, "admin", 422),
        (path, [], "admin", 422), (path, None, "admin", 422),
        (path, {"note": "x" * 501}, "admin", 422),
        ("/v1/alerts/not-an-id/acknowledge", {"note": "x"}, "admin", 422),
        ("/v1/alerts/01HZZZZZZZZZZZZZZZZZZZZZZZ/acknowledge", {"note": "x"}, "admin", 404),
        (path, {"note": "x"}, "order-entry", 403), (path, {"note": "x"}, "ledger", 403),
    ]
    for url, body, role, status in cases:
        r = await api.post(url, body, role=role)
        assert r.status_code == status, (url, body, role, r.text)
        assert r.headers["content-type"] == "application/problem+json"
    r = await api.post(path, content=b"{not json", role="admin",
                       headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["code"] == "invalid_json"
    r = await api.request("POST", path, role=None, json={"note": "x"})
    assert r.status_code == 401
    assert await _stored(db) == (1, 0, 0)
    assert await events(api) == before_file
    for url in ("/v1/alerts", "/v1/reviews"):
        assert (await api.get(url, role="order-entry")).status_code == 403
        assert (await api.get(url, role=None)).status_code == 401
