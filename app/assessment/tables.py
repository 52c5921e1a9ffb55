"""The scorecard's versions (each one kept: the audit trail) and the assessments."""

from sqlalchemy import Column, Date, Index, Integer, String, Table, Text

from app.db.columns import JsonDoc, Money, UTCDateTime, metadata

# Append-only (migration 0008): a change is a new version, with who, when and why.
scorecards = Table(
    "scorecards",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("document", JsonDoc, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(100), nullable=False),
    Column("note", Text),
)

assessments = Table(
    "assessments",
    metadata,
    Column("assessment_id", String(64), primary_key=True),
    Column("customer_id", String(64), nullable=False),
    Column("as_of", Date, nullable=False),
    Column("status", String(16), nullable=False),  # proposed, applied, superseded
    Column("scorecard_version", Integer, nullable=False),
    Column("evidence", JsonDoc, nullable=False),  # the request, as compared for replays
    Column("result", JsonDoc, nullable=False),  # score, grade, factors, limit, terms...
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(100), nullable=False),
    Column("applied_at", UTCDateTime),
    Column("applied_by", String(100)),
    Column("apply_request", JsonDoc),  # the apply body, as compared for replays
    Column("apply_reason", Text),
    Column("override_credit_limit", Money),
    Column("override_risk_class", String(8)),
    Column("applied", JsonDoc),  # the terms set and the account as the apply left it
    Column("superseded_at", UTCDateTime),
    Index("ix_assessments_customer", "customer_id", "created_at"),
)
