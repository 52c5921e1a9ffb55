"""Invoices, payments and open-item snapshots; each keeps the account aggregates current."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from app import clock
from app.auth.roles import Caller
from app.credit.plans import CreditState
from app.credit.repository import load_locked
from app.credit_file.entries import Event, event_entry
from app.credit_file.repository import add_entries
from app.customers.repository import apply_deltas
from app.db.engine import Database
from app.errors import Conflict, NotFound, Unprocessable
from app.flows import auto_release
from app.fx.convert import Conversion
from app.fx.repository import conversion, rate_on
from app.ids import new_id
from app.metrics import Decided
from app.money import ZERO, format_amount
from app.monitoring.service import evaluate
from app.orders.models import RESERVING, Status
from app.orders.repository import get_order, update_order
from app.receivables import repository as repo
from app.receivables.behaviour_service import (
    record_invoice,
    record_payment,
    refresh_payment_index,
)
from app.receivables.schemas import (
    AllocationOut,
    ConvertedItemOut,
    InvoiceIn,
    InvoiceOut,
    OpenItemIn,
    PaymentIn,
    PaymentOut,
    SnapshotOut,
)

_PAGE = 500


@dataclass
class Posted:
    body: dict[str, Any]
    replayed: bool
    decided: Decided


async def _account(conn: AsyncConnection, customer_id: str, today: dt.date) -> CreditState:
    """Lock the customer's account (every ledger change serialises here)."""
    state = await load_locked(conn, customer_id, today)
    if state is None:
        raise NotFound(f"no credit account {customer_id}", code="customer_not_found")
    return state


def _document(conv: Conversion) -> dict[str, Any]:
    """The document columns of a ledger row: what was sent, when it was converted."""
    converted = conv.fx_rate is not None
    return {"document_amount": conv.amount if converted else None,
            "document_currency": conv.currency if converted else None,
            "fx_rate": conv.fx_rate}


def _converted(conv: Conversion) -> dict[str, Any]:
    """The credit-file columns of a ledger document."""
    return {"amount": conv.amount, "currency": conv.currency,
            "converted_amount": conv.converted_amount, "fx_rate": conv.fx_rate}


def _conflict(kind: str, key: str) -> Conflict:
    return Conflict(f"{kind} {key} was already recorded with different data")


async def post_invoice(db: Database, body: InvoiceIn, caller: Caller) -> Posted:
    """Record an invoice; naming its order moves that order's reservation into receivables."""
    today, now = clock.today(), clock.now()
    async with db.begin() as conn:
        state = await _account(conn, body.customer_id, today)
        existing = await repo.get_item(conn, body.invoice_id)
        if existing is not None:
            return Posted(_invoice_replay(existing, body), True, [])
        currency = state.account.currency
        conv = await conversion(conn, body.amount, body.currency, currency,
                                body.issued_on or today)
        amount = conv.converted_amount
        consumed, released, order_status = await _consume(conn, body, amount, now)
        result = InvoiceOut(
            invoice_id=body.invoice_id, customer_id=body.customer_id, amount=body.amount,
            currency=body.currency, converted_amount=amount, fx_rate=conv.fx_rate,
            due_on=body.due_on, issued_on=body.issued_on, order_id=body.order_id,
            reservation_consumed=consumed, order_status=order_status,
            recorded_at=now).model_dump(mode="json")
        await repo.insert_items(conn, [{
            "customer_id": body.customer_id, "invoice_id": body.invoice_id,
            "amount": amount, "open_amount": amount, "currency": currency,
            "due_on": body.due_on, "issued_on": body.issued_on, "order_id": body.order_id,
            "origin": "invoice", "reservation_consumed": consumed, **_document(conv),
            "response": result, "created_at": now, "updated_at": now}])
        await apply_deltas(conn, body.customer_id, now, receivables=amount,
                           orders=-(consumed + released))
        await record_invoice(conn, body.customer_id, amount, body.issued_on, now, today)
        await add_entries(conn, [event_entry(
            entry_id=new_id(), at=now, event=Event.INVOICE_POSTED, actor=caller.name,
            customer_id=body.customer_id, order_id=body.order_id, **_converted(conv),
            details={"invoice_id": body.invoice_id, "amount": format_amount(body.amount),
                     "due_on": body.due_on.isoformat(),
                     "reservation_consumed": format_amount(consumed)})])
        decided = (await auto_release(conn, body.customer_id, today=today, now=now,
                                 ttl_days=db.settings.reservation_ttl_days)
                   if released else [])
        await evaluate(conn, body.customer_id, today=today, now=now)
        return Posted(result, False, decided)


def _recorded_on(response: dict[str, Any]) -> dt.date:
    """The (UTC) day a stored request was first recorded: what its omitted dates default to."""
    return dt.datetime.fromisoformat(response["recorded_at"]).astimezone(dt.UTC).date()


def _invoice_replay(existing: Any, body: InvoiceIn) -> dict[str, Any]:
    # Compared with the request as it was first recorded: a later snapshot may have moved
    # the invoice's due date, which does not make a retry of the original a different request.
    # An omitted issued_on means its default, the day the invoice was first recorded, on
    # either side (a retry sent the next day is still the same request); the stored response
    # keeps the null it was given.
    original = existing["response"]
    if original is None:  # known only from an ERP snapshot, never posted here
        raise _conflict("invoice", body.invoice_id)
    recorded_on = _recorded_on(original)
    issued_before = (dt.date.fromisoformat(original["issued_on"]) if original["issued_on"]
                     else recorded_on)
    same = (original["customer_id"] == body.customer_id
            and Decimal(original["amount"]) == body.amount
            and original["currency"] == body.currency
            and original["due_on"] == body.due_on.isoformat()
            and issued_before == (body.issued_on or recorded_on)
            and original["order_id"] == body.order_id)
    if not same:
        raise _conflict("invoice", body.invoice_id)
    return _with_conversion(original)


def _with_conversion(response: dict[str, Any]) -> dict[str, Any]:
    """A stored response; one stored before FX support was in the account's currency."""
    return {"converted_amount": response["amount"], "fx_rate": None, **response}


async def _consume(conn: AsyncConnection, body: InvoiceIn, amount: Decimal, now: dt.datetime
                   ) -> tuple[Decimal, Decimal, str | None]:
    """(reservation consumed, remainder released, order status) for the invoice's order;
    `amount` is the invoice's in the account's currency, as the order's reservation is."""
    if body.order_id is None:
        return ZERO, ZERO, None
    order = await get_order(conn, body.order_id)
    if order is None:
        return ZERO, ZERO, None
    if order.customer_id != body.customer_id:
        raise Conflict(f"order {body.order_id} belongs to another customer",
                       code="order_customer_mismatch")
    invoiced = order.invoiced + amount
    consumed = min(amount, order.reserved) if order.status in RESERVING else ZERO
    reserved = order.reserved - consumed
    fully = (invoiced >= order.converted_amount
             and order.status in (*RESERVING, Status.HELD, Status.PREPAY))
    released = reserved if fully else ZERO
    values: dict[str, Any] = {"invoiced": invoiced, "reserved": reserved - released,
                              "updated_at": now}
    if fully:
        values.update(status=Status.INVOICED.value, expires_at=None)
        if order.status is Status.HELD:
            await apply_deltas(conn, order.customer_id, now,
                               held_amount=-order.converted_amount, held_count=-1)
    await update_order(conn, order, **values)
    return consumed, released, (Status.INVOICED.value if fully else order.status.value)


async def post_payment(db: Database, body: PaymentIn, caller: Caller) -> Posted:
    """Apply a payment to its invoice, or to the oldest due items; the rest is unapplied credit."""
    today, now = clock.today(), clock.now()
    async with db.begin() as conn:
        state = await _account(conn, body.customer_id, today)
        existing = await repo.get_payment(conn, body.payment_id)
        if existing is not None:
            return Posted(_payment_replay(existing, body), True, [])
        currency = state.account.currency
        received_on = body.received_on or today
        conv = await conversion(conn, body.amount, body.currency, currency, received_on)
        amount = conv.converted_amount
        applied = await _allocate(conn, body, amount, now)
        unapplied = amount - sum((a.amount for a in applied), ZERO)
        result = PaymentOut(
            payment_id=body.payment_id, customer_id=body.customer_id, amount=body.amount,
            currency=body.currency, converted_amount=amount, fx_rate=conv.fx_rate,
            invoice_id=body.invoice_id, received_on=received_on, applied=applied,
            unapplied=unapplied, recorded_at=now).model_dump(mode="json")
        await repo.insert_payment(conn, {
            "customer_id": body.customer_id, "payment_id": body.payment_id,
            "amount": amount, "currency": currency, "invoice_id": body.invoice_id,
            "received_on": received_on, "unapplied": unapplied, **_document(conv),
            "response": result, "created_at": now})
        await apply_deltas(conn, body.customer_id, now, receivables=-amount)
        await record_payment(conn, body.customer_id, body.payment_id, received_on, applied,
                             today)
        await add_entries(conn, [event_entry(
            entry_id=new_id(), at=now, event=Event.PAYMENT_RECEIVED, actor=caller.name,
            customer_id=body.customer_id, **_converted(conv),
            details={"payment_id": body.payment_id, "amount": format_amount(body.amount),
                     "applied": [{"invoice_id": a.invoice_id, "amount": format_amount(a.amount)}
                                 for a in applied],
                     "unapplied": format_amount(unapplied)})])
        decided = await auto_release(conn, body.customer_id, today=today, now=now,
                                 ttl_days=db.settings.reservation_ttl_days)
        await evaluate(conn, body.customer_id, today=today, now=now)
        return Posted(result, False, decided)


def _payment_replay(existing: Any, body: PaymentIn) -> dict[str, Any]:
    # An omitted received_on means its default, the day the payment was first recorded (what
    # was stored for it then): the comparison is made with that default applied, so leaving
    # it out replays only a payment that was received on its recording day.
    # The amount and currency compared are the document's as sent, not the converted ones.
    original = existing["response"]
    received_on = body.received_on or _recorded_on(original)
    sent = existing["document_currency"] is not None
    same = (existing["customer_id"] == body.customer_id
            and existing["document_amount" if sent else "amount"] == body.amount
            and existing["document_currency" if sent else "currency"] == body.currency
            and existing["invoice_id"] == body.invoice_id
            and existing["received_on"] == received_on)
    if not same:
        raise _conflict("payment", body.payment_id)
    return _with_conversion(original)


async def _allocate(conn: AsyncConnection, body: PaymentIn, amount: Decimal, now: dt.datetime
                    ) -> list[AllocationOut]:
    """`amount` (the payment's, in the account's currency) applied to open items."""
    remaining = amount
    applied: list[AllocationOut] = []
    changes: list[dict[str, Any]] = []

    def take(invoice_id: str, open_amount: Decimal, due_on: dt.date) -> None:
        nonlocal remaining
        part = min(remaining, open_amount)
        if part > ZERO:
            remaining -= part
            applied.append(AllocationOut(invoice_id=invoice_id, amount=part))
            changes.append({"invoice_id": invoice_id, "open_amount": open_amount - part,
                            "due_on": due_on, "updated_at": now})

    if body.invoice_id is not None:
        item = await repo.get_item(conn, body.invoice_id)
        if item is None or item["customer_id"] != body.customer_id:
            raise NotFound(f"{body.customer_id} has no invoice {body.invoice_id}",
                           code="invoice_not_found")
        take(item["invoice_id"], item["open_amount"], item["due_on"])
    else:
        after = None
        while remaining > ZERO:
            page = await repo.oldest_open_items(conn, body.customer_id, after, _PAGE)
            for row in page:
                take(row.invoice_id, row.open_amount, row.due_on)
                if remaining == ZERO:
                    break
            if len(page) < _PAGE:
                break
            after = (page[-1].due_on, page[-1].invoice_id)
    await repo.set_open_amounts(conn, body.customer_id, changes)
    return applied


async def replace_open_items(conn: AsyncConnection, customer_id: str, items: list[OpenItemIn],
                             caller: Caller, *, today: dt.date, now: dt.datetime,
                             ttl_days: int) -> tuple[SnapshotOut, Decided]:
    """Make the customer's open receivables exactly the ERP's snapshot, in the caller's
    transaction (an import applies many at once), and release what then fits."""
    state = await _account(conn, customer_id, today)
    currency = state.account.currency
    elsewhere = await repo.owners_elsewhere(conn, customer_id, (i.invoice_id for i in items))
    if elsewhere:
        raise Conflict("invoice ids belong to other customers: "
                       + ", ".join(sorted(elsewhere)[:10]),
                       extra={"invoice_ids": sorted(elsewhere)[:100]})
    known = await repo.items_of(conn, customer_id)
    convs = await _convert_items(conn, items, known, currency, today)
    added, changed, new_rows, updates = [], [], [], []
    for item in items:
        row = known.get(item.invoice_id)
        conv = convs[item.invoice_id]
        amount = conv.converted_amount
        if row is None:
            added.append(item.invoice_id)
            new_rows.append({
                "customer_id": customer_id, "invoice_id": item.invoice_id,
                "amount": amount, "open_amount": amount, "currency": currency,
                "due_on": item.due_on, "issued_on": None, "order_id": None,
                "origin": "snapshot", "reservation_consumed": ZERO, **_document(conv),
                "response": None, "created_at": now, "updated_at": now})
        elif row.open_amount != amount or row.due_on != item.due_on:
            changed.append(item.invoice_id)
            updates.append({"invoice_id": item.invoice_id, "open_amount": amount,
                            "due_on": item.due_on, "updated_at": now})
    in_snapshot = {i.invoice_id for i in items}
    removed = sorted(i for i, r in known.items() if r.open_amount != ZERO
                     and i not in in_snapshot)
    updates += [{"invoice_id": i, "open_amount": ZERO, "due_on": known[i].due_on,
                 "updated_at": now} for i in removed]
    await repo.insert_items(conn, new_rows)
    await repo.set_open_amounts(conn, customer_id, updates)
    cleared = await repo.clear_unapplied(conn, customer_id)
    before = state.account.open_receivables
    after = sum((c.converted_amount for c in convs.values()), ZERO)
    await apply_deltas(conn, customer_id, now, receivables=after - before, ledger_changed=True)
    await refresh_payment_index(conn, customer_id, today)
    await add_entries(conn, [event_entry(
        entry_id=new_id(), at=now, event=Event.OPEN_ITEMS_REPLACED, actor=caller.name,
        customer_id=customer_id,
        details={"open_receivables_before": format_amount(before),
                 "open_receivables_after": format_amount(after),
                 "added": len(added), "changed": len(changed), "removed": len(removed),
                 "unapplied_credit_cleared": format_amount(cleared)})])
    decided = await auto_release(conn, customer_id, today=today, now=now, ttl_days=ttl_days)
    await evaluate(conn, customer_id, today=today, now=now)
    return SnapshotOut(customer_id=customer_id, open_receivables_before=before,
                       open_receivables_after=after, added=added, changed=changed,
                       removed=removed, unchanged=len(items) - len(added) - len(changed),
                       unapplied_credit_cleared=cleared, converted=[
                           ConvertedItemOut(invoice_id=i, amount=c.amount, currency=c.currency,
                                            converted_amount=c.converted_amount,
                                            fx_rate=c.fx_rate)
                           for i, c in convs.items() if c.fx_rate is not None]), decided


async def _convert_items(conn: AsyncConnection, items: list[OpenItemIn], known: dict[str, Any],
                         currency: str, today: dt.date) -> dict[str, Conversion]:
    """Each item as it counts in the account's currency, by invoice_id: at the latest rate on
    or before its date (its invoice's issued_on, else the day it was first recorded, else
    today); 422 fx_rate_missing naming every item without one."""
    rates: dict[tuple[str, dt.date], Decimal | None] = {}
    convs: dict[str, Conversion] = {}
    missing: list[str] = []
    for item in items:
        rate = None
        if item.currency != currency:
            row = known.get(item.invoice_id)
            on = today if row is None else row.issued_on or row.created_at.date()
            if (item.currency, on) not in rates:
                rates[item.currency, on] = await rate_on(conn, item.currency, currency, on)
            rate = rates[item.currency, on]
            if rate is None:
                missing.append(item.invoice_id)
                continue
        convs[item.invoice_id] = Conversion.of(item.amount, item.currency, currency, rate)
    if missing:
        raise Unprocessable(f"no exchange rate into {currency} on or before the date of items "
                            f"{', '.join(missing[:10])}", code="fx_rate_missing",
                            extra={"invoice_ids": missing[:100]})
    return convs
