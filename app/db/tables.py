"""Every table, imported in one place so that the metadata Alembic compares is complete."""

from app.assessment.tables import assessments, scorecards
from app.auth.tables import api_keys
from app.console.tables import console_sessions
from app.credit.tables import check_days
from app.credit_file.tables import credit_file
from app.customers.tables import accounts
from app.events import tables as _events  # noqa: F401 - the outbox and webhook tables
from app.fx.tables import fx_rates
from app.groups.tables import credit_groups
from app.monitoring.tables import alerts, monitor_sweeps
from app.orders.tables import orders
from app.policies.tables import policies, policy_changes
from app.receivables.tables import (
    invoiced_days,
    open_items,
    payment_applications,
    payment_days,
    payments,
)
from app.securities.tables import securities

__all__ = [
    "accounts",
    "alerts",
    "api_keys",
    "assessments",
    "check_days",
    "console_sessions",
    "credit_file",
    "credit_groups",
    "fx_rates",
    "invoiced_days",
    "monitor_sweeps",
    "open_items",
    "orders",
    "payment_applications",
    "payment_days",
    "payments",
    "policies",
    "policy_changes",
    "scorecards",
    "securities",
]
