"""Small builders shared by the API tests."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from app import clock
from app.auth.roles import Caller, Role
from app.credit import service
from app.credit.batching import reader_of
from app.credit.plans import CheckPlan
from app.credit.schemas import CreditCheckIn
from app.db.engine import Database
from tests.api import Api


def today() -> dt.date:
    """The service's today (`app.clock`), read at each call: a test that moves the clock
    moves the dates it builds with it."""
    return clock.today()


def days(n: int) -> str:
    """The ISO date n days from the service's today (negative: in the past)."""
    return (today() + dt.timedelta(days=n)).isoformat()


async def account(api: Api, customer_id: str = "C1", limit: str = "10000", **terms: Any
                  ) -> dict[str, Any]:
    body = {"name": f"Customer {customer_id}", "currency": "EUR", "credit_limit": limit, **terms}
    r = await api.put(f"/v1/customers/{customer_id}", body)
    assert r.status_code in (200, 201), r.text
    return dict(r.json())


async def check(api: Api, order_id: str, amount: str, customer_id: str = "C1",
                expect: int | None = 201, **extra: Any) -> dict[str, Any]:
    body = {"order_id": order_id, "customer_id": customer_id, "amount": amount,
            "currency": "EUR", **extra}
    r = await api.post("/v1/credit-checks", body, role="order-entry")
    if expect is not None:
        assert r.status_code == expect, r.text
    return dict(r.json())


async def invoice(api: Api, invoice_id: str, amount: str, customer_id: str = "C1",
                  due_in: int = 30, **extra: Any) -> dict[str, Any]:
    body = {"invoice_id": invoice_id, "customer_id": customer_id, "amount": amount,
            "currency": "EUR", "due_on": days(due_in), **extra}
    r = await api.post("/v1/invoices", body, role="ledger")
    assert r.status_code in (200, 201), r.text
    return dict(r.json())


async def pay(api: Api, payment_id: str, amount: str, customer_id: str = "C1", **extra: Any
              ) -> dict[str, Any]:
    body = {"payment_id": payment_id, "customer_id": customer_id, "amount": amount,
            "currency": "EUR", **extra}
    r = await api.post("/v1/payments", body, role="ledger")
    assert r.status_code in (200, 201), r.text
    return dict(r.json())


async def exposure(api: Api, customer_id: str = "C1") -> dict[str, Any]:
    r = await api.get(f"/v1/customers/{customer_id}/exposure")
    assert r.status_code == 200, r.text
    return dict(r.json())


async def order(api: Api, order_id: str) -> dict[str, Any]:
    r = await api.get(f"/v1/orders/{order_id}")
    assert r.status_code == 200, r.text
    return dict(r.json())


async def history(api: Api, customer_id: str = "C1") -> list[dict[str, Any]]:
    """The customer's credit file, newest first (the first page: up to 200 entries)."""
    r = await api.get(f"/v1/customers/{customer_id}/history", params={"limit": 200})
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


async def events(api: Api, customer_id: str = "C1") -> list[str]:
    """The events of the customer's credit file, newest first."""
    return [entry["event"] for entry in await history(api, customer_id)]


async def guarded_plan(db: Database, customer_id: str, order_id: str, amount: str
                       ) -> CheckPlan:
    """The plan an unlocked check of `amount` EUR would write now, decided on a snapshot read
    through the batched reader (tests of the batched write send it themselves)."""
    req = CreditCheckIn(order_id=order_id, customer_id=customer_id, amount=Decimal(amount),
                        currency="EUR", channel="erp")
    caller = Caller(key_id="k", name="batch-test", role=Role.ORDER_ENTRY)
    today = clock.today()
    read = await reader_of(db).read(customer_id, order_id, today, "EUR")
    return service._plan(db, read, req, caller, today, guarded=True)
