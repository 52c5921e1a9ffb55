"""Reviews, order maximums and the payment index on accounts; the new policy parameters;
every decision keeps the payment index and the inputs it was decided on (simulation); the
credit checks' daily tally (ORDER_SPIKE).

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("accounts", sa.Column("review_due_on", sa.Date()))
    op.add_column("accounts", sa.Column("max_order_amount", sa.Numeric(20, 4)))
    op.add_column("accounts", sa.Column("payment_index", sa.Integer()))
    op.add_column("policies", sa.Column("min_payment_index", sa.Integer()))
    op.add_column("policies", sa.Column("review_grace_days", sa.Integer()))
    op.add_column("policies", sa.Column("alert_utilisation", sa.Numeric(20, 4),
                                        nullable=False, server_default="0.90"))
    op.add_column("policies", sa.Column("alert_payment_index", sa.Integer(), nullable=False,
                                        server_default="50"))
    op.add_column("credit_file", sa.Column("payment_index", sa.Integer()))
    op.add_column("credit_file", sa.Column("inputs", postgresql.JSONB()))
    # Simulation reads the entry credit checks of a window of days.
    op.create_index("ix_credit_file_checks", "credit_file", ["at"],
                    postgresql_where=sa.text("event = 'credit_check'"))
    op.create_index("ix_accounts_review_due", "accounts", ["review_due_on", "customer_id"],
                    postgresql_where=sa.text("review_due_on IS NOT NULL"))
    op.create_table(
        "check_days",
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("checks", sa.Integer(), nullable=False),
        sa.Column("amount", sa.Numeric(20, 4), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", "day", name=op.f("pk_check_days")),
    )


def downgrade() -> None:
    op.drop_table("check_days")
    op.drop_index("ix_accounts_review_due", table_name="accounts")
    op.drop_index("ix_credit_file_checks", table_name="credit_file")
    op.drop_column("credit_file", "inputs")
    op.drop_column("credit_file", "payment_index")
    for column in ("alert_payment_index", "alert_utilisation", "review_grace_days",
                   "min_payment_index"):
        op.drop_column("policies", column)
    for column in ("payment_index", "max_order_amount", "review_due_on"):
        op.drop_column("accounts", column)
