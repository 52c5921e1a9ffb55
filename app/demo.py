"""A small, realistic data set for `make run` and the README walk-through."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from app import clock
from app.auth.roles import Caller, Role
from app.customers.repository import get_account
from app.customers.schemas import AccountIn
from app.customers.service import put_account
from app.db import Database
from app.receivables.schemas import InvoiceIn
from app.receivables.service import post_invoice

SYSTEM = Caller("system", "demo", Role.ADMIN)

# (customer_id, name, limit, risk class, blocked, [(invoice_id, amount, days until due)])
CUSTOMERS = [
    ("ACME-001", "Acme Tools GmbH", "50000", "A", False,
     [("INV-ACME-1", "18250.00", 12), ("INV-ACME-2", "13000.00", 25)]),
    ("INITECH-002", "Initech Ltd", "20000", "BBB", False,
     [("INV-INIT-1", "3400.00", -45), ("INV-INIT-2", "2100.00", 10)]),
    ("GLOBEX-003", "Globex Corporation", "30000", "BB", True, []),
    ("UMBRELLA-004", "Umbrella Logistics", "15000", "CCC", False,
     [("INV-UMB-1", "900.00", 5)]),
    ("HOOLI-005", "Hooli Retail", "0", "unrated", False, []),
    ("STARK-006", "Stark Components AG", "250000", "AA", False,
     [("INV-STARK-1", "120500.00", 20), ("INV-STARK-2", "8200.00", -140)]),
]


async def load_demo(db: Database) -> bool:
    """Create the demo accounts and invoices; False if they already exist."""
    async with db.autocommit() as conn:
        if await get_account(conn, CUSTOMERS[0][0]) is not None:
            return False
    today = clock.today()
    for customer_id, name, limit, risk, blocked, invoices in CUSTOMERS:
        await put_account(db, customer_id, AccountIn(
            name=name, currency="EUR", credit_limit=Decimal(limit), risk_class=risk,
            blocked=blocked, block_reason="insolvency filing" if blocked else None,
            reason="demo data"), SYSTEM)
        for invoice_id, amount, due_in in invoices:
            await post_invoice(db, InvoiceIn(
                invoice_id=invoice_id, customer_id=customer_id, amount=Decimal(amount),
                currency="EUR", due_on=today + dt.timedelta(days=due_in),
                issued_on=today + dt.timedelta(days=due_in - 30)), SYSTEM)
    return True
