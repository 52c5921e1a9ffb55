"""Roles and who may call what."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    ORDER_ENTRY = "order-entry"
    WAREHOUSE = "warehouse"
    LEDGER = "ledger"
    CONTROLLER = "controller"
    ADMIN = "admin"


# Controllers and admins may call every endpoint; the narrower roles only their own.
SUPER_ROLES = frozenset({Role.CONTROLLER, Role.ADMIN})


@dataclass(frozen=True)
class Caller:
    """The authenticated API key behind a request."""

    key_id: str
    name: str
    role: Role

    def may(self, allowed: frozenset[Role]) -> bool:
        return self.role in allowed or self.role in SUPER_ROLES
