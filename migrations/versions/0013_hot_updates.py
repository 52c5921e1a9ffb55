"""Room on every page of the rows each check updates, so that the update stays on its page
(a heap-only tuple) and writes no index entry: accounts, credit groups.

Only new pages are filled to the new factor; existing ones get there as rows are rewritten
(or at once with `VACUUM FULL accounts`, which locks the table while it runs).

Revision ID: 0013
Revises: 0012
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# accounts: ~200-byte rows, 15 % free leaves room for several versions of each row of a page
# until pruning reclaims them; credit_groups: few rows, each updated by every member's change.
FILLFACTORS = {"accounts": 85, "credit_groups": 50}


def upgrade() -> None:
    for table, percent in FILLFACTORS.items():
        op.execute(f"ALTER TABLE {table} SET (fillfactor = {percent})")


def downgrade() -> None:
    for table in FILLFACTORS:
        op.execute(f"ALTER TABLE {table} RESET (fillfactor)")
