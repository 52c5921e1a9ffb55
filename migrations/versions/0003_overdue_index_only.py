"""Overdue facts from the index alone: carry open_amount in the due-date index.

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index("ix_open_items_due", table_name="open_items")
    op.create_index("ix_open_items_due", "open_items", ["customer_id", "due_on"],
                    postgresql_where=sa.text("open_amount > 0"),
                    postgresql_include=["open_amount"])


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index("ix_open_items_due", table_name="open_items")
    op.create_index("ix_open_items_due", "open_items", ["customer_id", "due_on"],
                    postgresql_where=sa.text("open_amount > 0"))
