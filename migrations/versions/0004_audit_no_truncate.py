"""The append-only audit tables cannot be emptied by TRUNCATE either.

Row triggers (0002) do not fire for TRUNCATE; a statement trigger does. SQLite has no
TRUNCATE (its `DELETE FROM t` is already refused by 0002's triggers).

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AUDIT_TABLES = ("credit_file", "policy_changes")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in AUDIT_TABLES:
        op.execute(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION creditgate_append_only()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in AUDIT_TABLES:
        op.execute(f"DROP TRIGGER {table}_no_truncate ON {table}")
