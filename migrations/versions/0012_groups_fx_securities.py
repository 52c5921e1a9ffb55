"""Credit groups (with their exposure kept by a trigger on accounts), exchange rates,
securities, and the converted amounts of orders, credit-file entries, open items and payments.

Revision ID: 0012
Revises: 0011
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MONEY = sa.Numeric(20, 4)
RATE = sa.Numeric(24, 10)
NOW = sa.DateTime(timezone=True)

# A group's exposure is the sum of its members' and changes with them, in their transaction:
# whatever changes a member's receivables or open orders, or moves it between groups, moves the
# group's figures too. Writers lock the group row before the member's (app/customers/locking.py),
# so the UPDATE here never waits on a lock the transaction does not already hold.
GROUP_EXPOSURE = ("""
CREATE FUNCTION credit_group_exposure() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' AND OLD.group_id IS NOT NULL THEN
        UPDATE credit_groups
           SET open_receivables = open_receivables - OLD.open_receivables,
               open_orders = open_orders - OLD.open_orders,
               member_count = member_count - 1
         WHERE group_id = OLD.group_id;
    END IF;
    IF TG_OP <> 'DELETE' AND NEW.group_id IS NOT NULL THEN
        UPDATE credit_groups
           SET open_receivables = open_receivables + NEW.open_receivables,
               open_orders = open_orders + NEW.open_orders,
               member_count = member_count + 1
         WHERE group_id = NEW.group_id;
    END IF;
    RETURN NULL;
END $$""", """
CREATE TRIGGER accounts_group_exposure_update
    AFTER UPDATE OF open_receivables, open_orders, group_id ON accounts
    FOR EACH ROW
    WHEN (OLD.group_id IS DISTINCT FROM NEW.group_id
          OR (NEW.group_id IS NOT NULL AND (OLD.open_receivables <> NEW.open_receivables
                                            OR OLD.open_orders <> NEW.open_orders)))
    EXECUTE FUNCTION credit_group_exposure()""", """
CREATE TRIGGER accounts_group_exposure_insert AFTER INSERT ON accounts
    FOR EACH ROW WHEN (NEW.group_id IS NOT NULL) EXECUTE FUNCTION credit_group_exposure()""",
"""
CREATE TRIGGER accounts_group_exposure_delete AFTER DELETE ON accounts
    FOR EACH ROW WHEN (OLD.group_id IS NOT NULL) EXECUTE FUNCTION credit_group_exposure()""")


def upgrade() -> None:
    op.create_table(
        "credit_groups",
        sa.Column("group_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("credit_limit", MONEY, nullable=False),
        sa.Column("blocked", sa.Boolean, nullable=False),
        sa.Column("block_reason", sa.Text),
        sa.Column("open_receivables", MONEY, nullable=False),
        sa.Column("open_orders", MONEY, nullable=False),
        sa.Column("member_count", sa.Integer, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", NOW, nullable=False),
        sa.Column("updated_at", NOW, nullable=False),
        sa.PrimaryKeyConstraint("group_id", name=op.f("pk_credit_groups")),
    )
    op.add_column("accounts", sa.Column("group_id", sa.String(64)))
    op.create_index("ix_accounts_group", "accounts", ["group_id", "customer_id"],
                    postgresql_where=sa.text("group_id IS NOT NULL"))
    op.create_table(
        "fx_rates",
        sa.Column("from_currency", sa.String(3), nullable=False),
        sa.Column("to_currency", sa.String(3), nullable=False),
        sa.Column("as_of", sa.Date, nullable=False),
        sa.Column("rate", RATE, nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("updated_at", NOW, nullable=False),
        sa.PrimaryKeyConstraint("from_currency", "to_currency", "as_of",
                                name=op.f("pk_fx_rates")),
    )
    op.create_table(
        "securities",
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("security_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("valid_from", sa.Date, nullable=False),
        sa.Column("valid_until", sa.Date, nullable=False),
        sa.Column("provider", sa.String(200)),
        sa.Column("reference", sa.Text),
        sa.Column("created_at", NOW, nullable=False),
        sa.Column("updated_at", NOW, nullable=False),
        sa.PrimaryKeyConstraint("customer_id", "security_id", name=op.f("pk_securities")),
    )
    op.add_column("orders", sa.Column("converted_amount", MONEY))
    op.execute("UPDATE orders SET converted_amount = amount")
    op.alter_column("orders", "converted_amount", nullable=False)
    op.add_column("orders", sa.Column("fx_rate", RATE))
    for name, kind in (("converted_amount", MONEY), ("fx_rate", RATE)):
        op.add_column("credit_file", sa.Column(name, kind))
    for table in ("open_items", "payments"):
        op.add_column(table, sa.Column("document_amount", MONEY))
        op.add_column(table, sa.Column("document_currency", sa.String(3)))
        op.add_column(table, sa.Column("fx_rate", RATE))
    for statement in GROUP_EXPOSURE:  # one statement each: asyncpg prepares what it runs
        op.execute(statement)


def downgrade() -> None:
    for trigger in ("update", "insert", "delete"):
        op.execute(f"DROP TRIGGER accounts_group_exposure_{trigger} ON accounts")
    op.execute("DROP FUNCTION credit_group_exposure()")
    for table in ("open_items", "payments"):
        for name in ("document_amount", "document_currency", "fx_rate"):
            op.drop_column(table, name)
    for name in ("converted_amount", "fx_rate"):
        op.drop_column("credit_file", name)
        op.drop_column("orders", name)
    op.drop_table("securities")
    op.drop_table("fx_rates")
    op.drop_index("ix_accounts_group", table_name="accounts")
    op.drop_column("accounts", "group_id")
    op.drop_table("credit_groups")
