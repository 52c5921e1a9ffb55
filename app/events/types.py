"""The event types a neighbour system can hear of (DESIGN.md 2.5)."""

from __future__ import annotations

from enum import StrEnum


class EventType(StrEnum):
    ORDER_HELD = "order.held"
    ORDER_RELEASED = "order.released"
    ORDER_REJECTED = "order.rejected"
    ORDER_EXPIRED = "order.expired"
    ORDER_PREPAY = "order.prepay"
    ALERT_RAISED = "alert.raised"
    ALERT_RESOLVED = "alert.resolved"
    ACCOUNT_LIMIT_CHANGED = "account.limit_changed"
    ACCOUNT_BLOCKED = "account.blocked"
    ACCOUNT_UNBLOCKED = "account.unblocked"
    ASSESSMENT_APPLIED = "assessment.applied"
