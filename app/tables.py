"""Every table, imported in one place so the metadata is complete (Alembic, reconcile)."""

from app.auth.tables import api_keys
from app.credit.tables import policies, policy_changes
from app.customers.tables import accounts, credit_file
from app.orders.tables import orders
from app.receivables.tables import open_items, payments

__all__ = ["accounts", "api_keys", "credit_file", "open_items", "orders", "payments",
           "policies", "policy_changes"]
