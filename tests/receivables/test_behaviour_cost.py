"""Payment behaviour costs the credit check nothing: its read (counted in buffers, as in
tests/credit/test_cost.py) is the same for a customer with 20,000 paid invoices as for one
with 10, because the check reads the maintained payment index on the account row only."""

from __future__ import annotations

from sqlalchemy import text

from app import clock
from app.db.engine import Database
from app.reconcile import find_drift
from tests.api import Api
from tests.helpers import account, check, days, exposure, invoice, pay
from tests.plans import snapshot_buffers

BIG = 20_000
PAYMENTS = 20  # of 1,000 invoices each


# What autovacuum does in production: the paid items leave the partial index.
PREPARE = ("VACUUM ANALYZE open_items", "VACUUM ANALYZE accounts")


async def _snapshot_buffers(url: str, customer_id: str) -> tuple[int, str]:
    return await snapshot_buffers(url, customer_id, prepare=PREPARE)


async def _big_history(api: Api, db: Database) -> None:
    """20,000 invoices (issued over 200 days, 10 each, 30 days' terms, written in bulk with
    their invoiced buckets and receivables), then paid by 20 payments through the API,
    oldest first, 10 to 20 days early (as SMALL pays: both keep a good index and raise no
    alert, so the two reads differ in history only)."""
    async with db.begin() as conn:
        await conn.execute(text("""INSERT INTO open_items (customer_id, invoice_id, amount,
                open_amount, currency, due_on, issued_on, order_id, origin,
                reservation_consumed, response, created_at, updated_at)
            SELECT 'BIG', 'BIG-' || lpad(n::text, 5, '0'), 10, 10, 'EUR',
                CAST(:today AS date) - 300 + n / 100, CAST(:today AS date) - 330 + n / 100,
                NULL, 'invoice', 0, NULL, now(), now()
            FROM generate_series(1, :n) n"""), {"today": clock.today(), "n": BIG})
        await conn.execute(text("""INSERT INTO invoiced_days (customer_id, invoiced_on, amount)
            SELECT customer_id, issued_on, sum(amount) FROM open_items
            WHERE customer_id = 'BIG' GROUP BY customer_id, issued_on"""))
        await conn.execute(text("""UPDATE accounts SET open_receivables = :total,
            ledger_version = ledger_version + 1 WHERE customer_id = 'BIG'"""),
                           {"total": 10 * BIG})
    for k in range(PAYMENTS):
        paid = await pay(api, f"BIG-P{k}", "10000", customer_id="BIG",
                         received_on=days(-310 + 10 * k))
        assert paid["unapplied"] == "0.00" and len(paid["applied"]) == BIG // PAYMENTS


async def test_the_check_reads_the_same_for_20000_paid_invoices_as_for_10(
        api: Api, db: Database, database_url: str) -> None:
    await account(api, "SMALL", limit="10000000")
    await account(api, "BIG", limit="10000000")
    for n in range(10):
        await invoice(api, f"SMALL-{n}", "10", customer_id="SMALL", due_in=-40 + n,
                      issued_on=days(-70 + n))
        await pay(api, f"SMALL-P{n}", "10", customer_id="SMALL", invoice_id=f"SMALL-{n}",
                  received_on=days(-50 + n))
    await _big_history(api, db)

    async with db.begin() as conn:
        assert await find_drift(conn) == []  # the bulk history is a consistent ledger
    big_index = (await exposure(api, "BIG"))["payment_index"]
    small_index = (await exposure(api, "SMALL"))["payment_index"]
    assert big_index is not None and small_index is not None and min(big_index, small_index) > 80
    r = await api.get("/v1/customers/BIG/payment-behaviour")
    assert r.status_code == 200 and r.json()["payment_index"] == big_index, r.text
    for customer_id, index in (("BIG", big_index), ("SMALL", small_index)):
        decision = await check(api, f"{customer_id}-O1", "10", customer_id=customer_id)
        assert decision["payment_index"] == index and decision["outcome"] == "approve"

    small, _ = await _snapshot_buffers(database_url, "SMALL")
    big, big_plan = await _snapshot_buffers(database_url, "BIG")
    print(f"\ncheck read: {small} buffers with 10 paid invoices, {big} with {BIG}")
    assert big == small, f"{big} buffers for {BIG} paid invoices vs {small} for 10: {big_plan}"
    for table in ("payment_days", "payment_applications", "invoiced_days"):
        assert table not in big_plan, big_plan  # the check never reads behaviour history
