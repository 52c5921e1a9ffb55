"""The scorecard and assessments: evidence, score, grade, suggested limit.

The shipped default scorecard is seeded here as version 1 (README "Scorecard"); the
versions table is append-only like the other audit trails (a change is a new version).

Revision ID: 0008
Revises: 0007
"""

import datetime
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from app.assessment.defaults import DEFAULT_SCORECARD
from app.db.columns import Money, UTCDateTime

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    scorecards = op.create_table(
        "scorecards",
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("document", postgresql.JSONB(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_scorecards")),
    )
    op.create_table(
        "assessments",
        sa.Column("assessment_id", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("scorecard_version", sa.Integer(), nullable=False),
        sa.Column("evidence", postgresql.JSONB(), nullable=False),
        sa.Column("result", postgresql.JSONB(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("applied_at", UTCDateTime(), nullable=True),
        sa.Column("applied_by", sa.String(length=100), nullable=True),
        sa.Column("apply_request", postgresql.JSONB(), nullable=True),
        sa.Column("apply_reason", sa.Text(), nullable=True),
        sa.Column("override_credit_limit", Money(), nullable=True),
        sa.Column("override_risk_class", sa.String(length=8), nullable=True),
        sa.Column("applied", postgresql.JSONB(), nullable=True),
        sa.Column("superseded_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("assessment_id", name=op.f("pk_assessments")),
    )
    op.create_index("ix_assessments_customer", "assessments", ["customer_id", "created_at"])
    op.execute("CREATE TRIGGER scorecards_append_only BEFORE UPDATE OR DELETE ON scorecards "
               "FOR EACH ROW EXECUTE FUNCTION creditgate_append_only()")
    op.execute("CREATE TRIGGER scorecards_no_truncate BEFORE TRUNCATE ON scorecards "
               "FOR EACH STATEMENT EXECUTE FUNCTION creditgate_append_only()")
    op.bulk_insert(scorecards, [{
        "version": 1, "document": DEFAULT_SCORECARD,
        "created_at": datetime.datetime.now(datetime.UTC), "created_by": "migration",
        "note": "the shipped default scorecard"}])


def downgrade() -> None:
    op.drop_table("assessments")
    op.drop_table("scorecards")
