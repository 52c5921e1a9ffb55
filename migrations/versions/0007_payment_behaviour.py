"""Payment behaviour from our own ledger: the aggregates that keep it current.

The line items (payment_applications) and the per-day buckets (payment_days, invoiced_days)
are backfilled from what the ledger already holds: each stored payment's allocations (its
response lists them) with the invoice's current dates, and every posted invoice. Afterwards
`creditgate reconcile --repair` sets accounts.payment_index from them.

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.db.columns import Money

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BACKFILL = (
    """INSERT INTO payment_applications (customer_id, payment_id, invoice_id, amount,
        received_on, due_on, issued_on)
    SELECT p.customer_id, p.payment_id, a.value->>'invoice_id',
        sum((a.value->>'amount')::numeric), p.received_on, min(i.due_on), min(i.issued_on)
    FROM payments p
    CROSS JOIN LATERAL jsonb_array_elements(p.response->'applied') a
    JOIN open_items i ON i.invoice_id = a.value->>'invoice_id'
    GROUP BY p.customer_id, p.payment_id, a.value->>'invoice_id', p.received_on""",
    """INSERT INTO payment_days (customer_id, received_on, amount, late_days, on_time,
        dated_amount, dated_days, max_days_late)
    SELECT customer_id, received_on, sum(amount), sum(amount * (received_on - due_on)),
        sum(CASE WHEN received_on <= due_on THEN amount ELSE 0 END),
        sum(CASE WHEN issued_on IS NOT NULL THEN amount ELSE 0 END),
        sum(CASE WHEN issued_on IS NOT NULL THEN amount * (received_on - issued_on)
            ELSE 0 END),
        max(received_on - due_on)
    FROM payment_applications GROUP BY customer_id, received_on""",
    """INSERT INTO invoiced_days (customer_id, invoiced_on, amount)
    SELECT customer_id, COALESCE(issued_on, (created_at AT TIME ZONE 'UTC')::date), sum(amount)
    FROM open_items WHERE origin = 'invoice'
    GROUP BY customer_id, COALESCE(issued_on, (created_at AT TIME ZONE 'UTC')::date)""",
)


def upgrade() -> None:
    op.create_table(
        "payment_applications",
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("payment_id", sa.String(length=64), nullable=False),
        sa.Column("invoice_id", sa.String(length=64), nullable=False),
        sa.Column("amount", Money(), nullable=False),
        sa.Column("received_on", sa.Date(), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("issued_on", sa.Date(), nullable=True),
        sa.PrimaryKeyConstraint("customer_id", "payment_id", "invoice_id",
                                name=op.f("pk_payment_applications")),
    )
    op.create_table(
        "payment_days",
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("received_on", sa.Date(), nullable=False),
        sa.Column("amount", Money(), nullable=False),
        sa.Column("late_days", sa.Numeric(), nullable=False),
        sa.Column("on_time", Money(), nullable=False),
        sa.Column("dated_amount", Money(), nullable=False),
        sa.Column("dated_days", sa.Numeric(), nullable=False),
        sa.Column("max_days_late", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", "received_on", name=op.f("pk_payment_days")),
    )
    op.create_table(
        "invoiced_days",
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("invoiced_on", sa.Date(), nullable=False),
        sa.Column("amount", Money(), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", "invoiced_on", name=op.f("pk_invoiced_days")),
    )
    for statement in _BACKFILL:
        op.execute(statement)


def downgrade() -> None:
    op.drop_table("invoiced_days")
    op.drop_table("payment_days")
    op.drop_table("payment_applications")
