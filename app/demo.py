"""A small, realistic data set for `make run` and the README walk-through."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from app import clock
from app.assessment.schemas import ApplyIn, AssessmentIn
from app.assessment.service import apply, propose
from app.auth.roles import Caller, Role
from app.customers.repository import get_account
from app.customers.schemas import AccountIn
from app.customers.service import put_account
from app.db.engine import Database
from app.fx.schemas import FxRateIn
from app.fx.service import put_rate
from app.groups.schemas import GroupIn
from app.groups.service import put_group
from app.receivables.schemas import InvoiceIn, PaymentIn
from app.receivables.service import post_invoice, post_payment

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
    ("WAYNE-007", "Wayne Industrial BV", "0", "unrated", False, []),
    ("STARK-US-008", "Stark Components Inc", "50000", "A", False, []),
]

# Stark's two companies share a group limit of 150,000 EUR; Wayne also buys in US dollars.
GROUP = ("STARK-GROUP", "Stark Group", "150000")
MEMBERS = {"STARK-006", "STARK-US-008"}
USD_EUR = "0.92"

# Initech paid last quarter's invoice 60 days late: its payment behaviour shows it.
LATE_INVOICE = ("INV-INIT-0", "5000.00", -90)  # due 90 days ago, issued 30 days before that
LATE_PAYMENT = ("PAY-INIT-0", 30)  # received 30 days ago

# Wayne has no limit yet: a credit controller assesses it from its accounts and applies it.
WAYNE_EVIDENCE: dict[str, Any] = {
    "assessment_id": "A-DEMO-WAYNE",
    "financials": {"current_assets": "900000", "current_liabilities": "450000",
                   "inventory": "300000", "total_assets": "2400000",
                   "total_liabilities": "1300000", "equity": "1100000",
                   "intangible_assets": "100000", "revenue": "6000000",
                   "net_income": "300000", "operating_income": "480000",
                   "interest_expense": "60000"},
    "external_score": {"provider": "demo bureau", "score": 81},
    "years_in_business": 22, "industry_risk": "low",
    "expected_monthly_purchases": "40000",
}


async def load_demo(db: Database) -> bool:
    """Create the demo accounts and invoices; False if they already exist."""
    async with db.autocommit() as conn:
        if await get_account(conn, CUSTOMERS[0][0]) is not None:
            return False
    today = clock.today()
    group_id, group_name, group_limit = GROUP
    await put_group(db, group_id, GroupIn(name=group_name, currency="EUR",
                                          credit_limit=Decimal(group_limit)), SYSTEM)
    await put_rate(db, "USD", "EUR", FxRateIn(rate=Decimal(USD_EUR), as_of=today), SYSTEM)
    for customer_id, name, limit, risk, blocked, invoices in CUSTOMERS:
        await put_account(db, customer_id, AccountIn(
            name=name, currency="EUR", credit_limit=Decimal(limit), risk_class=risk,
            blocked=blocked, block_reason="insolvency filing" if blocked else None,
            group_id=group_id if customer_id in MEMBERS else None,
            reason="demo data"), SYSTEM)
        for invoice_id, amount, due_in in invoices:
            await post_invoice(db, InvoiceIn(
                invoice_id=invoice_id, customer_id=customer_id, amount=Decimal(amount),
                currency="EUR", due_on=today + dt.timedelta(days=due_in),
                issued_on=today + dt.timedelta(days=due_in - 30)), SYSTEM)
    await _late_payer(db, today)
    await _assessed(db)
    return True


async def _late_payer(db: Database, today: dt.date) -> None:
    invoice_id, amount, due_in = LATE_INVOICE
    await post_invoice(db, InvoiceIn(
        invoice_id=invoice_id, customer_id="INITECH-002", amount=Decimal(amount),
        currency="EUR", due_on=today + dt.timedelta(days=due_in),
        issued_on=today + dt.timedelta(days=due_in - 30)), SYSTEM)
    payment_id, days_ago = LATE_PAYMENT
    await post_payment(db, PaymentIn(
        payment_id=payment_id, customer_id="INITECH-002", amount=Decimal(amount),
        currency="EUR", invoice_id=invoice_id,
        received_on=today - dt.timedelta(days=days_ago)), SYSTEM)


async def _assessed(db: Database) -> None:
    await propose(db, "WAYNE-007", AssessmentIn.model_validate(WAYNE_EVIDENCE), SYSTEM)
    await apply(db, "WAYNE-007", WAYNE_EVIDENCE["assessment_id"],
                ApplyIn(reason="demo: assessed from the 2025 accounts"), SYSTEM)
