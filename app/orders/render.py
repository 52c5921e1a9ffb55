"""An order as the API shows it: its figures and every decision about it."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from app.credit.schemas import render_decision
from app.credit_file.entries import DECISION_EVENTS
from app.credit_file.repository import order_entries
from app.orders.models import Order
from app.orders.repository import get_order
from app.orders.schemas import OrderOut


async def render_order(conn: AsyncConnection, order: Order) -> OrderOut:
    entries = await order_entries(conn, order.customer_id, order.order_id)
    decisions = [render_decision(e) for e in entries if e["event"] in DECISION_EVENTS]
    return OrderOut(
        order_id=order.order_id, customer_id=order.customer_id, status=order.status.value,
        amount=order.amount, currency=order.currency,
        converted_amount=order.converted_amount, fx_rate=order.fx_rate, channel=order.channel,
        reserved=order.reserved, invoiced=order.invoiced, released=order.released,
        expires_at=order.expires_at, created_at=order.created_at, updated_at=order.updated_at,
        decisions=decisions)


async def refreshed(conn: AsyncConnection, order: Order) -> OrderOut:
    """The order as it is now (after the caller changed it)."""
    fresh = await get_order(conn, order.order_id)
    assert fresh is not None
    return await render_order(conn, fresh)
