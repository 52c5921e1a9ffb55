"""An order's credit-file entries are found by its order id alone: the index over
(customer_id, order_id) becomes one over order_id, for the entries that have one.

Order ids are unique (uq_orders_order_id) and an order's entries are few, so the new index
answers the same look-up (app/credit_file/repository.py). What changes is where a check's
entry goes: led by the customer, every check wrote into a random leaf of the index, and the
first write to a leaf after each checkpoint puts the whole 8 kB page into the WAL; order ids
mostly grow (ERP and webshop numbering), so entries now go to the rightmost leaves. Measured
on the bench database in the 16 s after a checkpoint: 24.8-25.8k -> 19.5-21.3k full-page
images, 6.7-9.0 -> 5.1-6.1 kB of WAL per check (bench/RESULTS.md, ninth pass).

Both indexes are built and dropped CONCURRENTLY, outside the migration's transaction, so
checks keep writing the credit file while a large one is indexed.

Revision ID: 0014
Revises: 0013
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD, NEW = "ix_credit_file_order", "ix_credit_file_order_id"


def upgrade() -> None:
    with op.get_context().autocommit_block():
        # A build that failed half-way leaves an invalid index of that name: start afresh.
        op.drop_index(NEW, table_name="credit_file", postgresql_concurrently=True,
                      if_exists=True)
        op.create_index(NEW, "credit_file", ["order_id"],
                        postgresql_where=sa.text("order_id IS NOT NULL"),
                        postgresql_concurrently=True)
        op.drop_index(OLD, table_name="credit_file", postgresql_concurrently=True,
                      if_exists=True)


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.drop_index(OLD, table_name="credit_file", postgresql_concurrently=True,
                      if_exists=True)
        op.create_index(OLD, "credit_file", ["customer_id", "order_id"],
                        postgresql_concurrently=True)
        op.drop_index(NEW, table_name="credit_file", postgresql_concurrently=True,
                      if_exists=True)
