"""A credit state as a JSON document, for the read cache (valid for one UTC day)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from app.credit.policy import Exposure, GroupTerms, Overdue, PolicyParams, Security
from app.customers.models import Account

if TYPE_CHECKING:
    from app.credit.plans import CreditState


def state_to_doc(state: CreditState) -> dict[str, Any]:
    """A JSON-safe form of a credit state (for the read cache; valid for one UTC day)."""
    return {"account": _fields(state.account, _ACCOUNT_TEXT),
            "policy": _fields(state.policy, _POLICY_TEXT),
            "overdue": {"days": state.overdue.oldest_days, "amount": str(state.overdue.amount)},
            "policy_version": state.policy_version,
            "group": None if state.group is None else _group_doc(state.group),
            "securities": [[str(s.amount), s.valid_from.isoformat(), s.valid_until.isoformat()]
                           for s in state.securities]}


def _group_doc(group: GroupTerms) -> dict[str, Any]:
    doc = _fields(group, _GROUP_TEXT)
    del doc["exposure"]
    doc["open_receivables"] = str(group.exposure.open_receivables)
    doc["open_orders"] = str(group.exposure.open_orders)
    return doc


def state_from_doc(doc: dict[str, Any]) -> CreditState:
    from app.credit.plans import CreditState

    account = Account(**_revive(doc["account"], _ACCOUNT_TYPES))
    policy = PolicyParams(**_revive(doc["policy"], _POLICY_TYPES))
    overdue = Overdue(doc["overdue"]["days"], Decimal(doc["overdue"]["amount"]))
    group = doc.get("group")
    securities = tuple(Security(Decimal(amount), dt.date.fromisoformat(start),
                                dt.date.fromisoformat(end))
                       for amount, start, end in doc.get("securities", ()))
    return CreditState(account, policy, overdue, doc.get("policy_version", 0),
                       None if group is None else _group_from(group), securities)


def _group_from(doc: dict[str, Any]) -> GroupTerms:
    exposure = Exposure(Decimal(doc["open_receivables"]), Decimal(doc["open_orders"]))
    return GroupTerms(doc["group_id"], doc["currency"], Decimal(doc["credit_limit"]),
                      doc["blocked"], doc["block_reason"], exposure, doc["version"])


def _fields(value: Any, as_text: tuple[tuple[str, Callable[[Any], str]], ...]
            ) -> dict[str, Any]:
    """A dataclass's fields as a dict, with the Decimal and date fields as their text.

    Every check encodes its state (the inputs its decision records), so the fields to convert
    are looked up once per class (`_as_text`), not tested value by value."""
    doc = dict(value.__dict__)
    for name, text in as_text:
        field = doc[name]
        if field is not None:
            doc[name] = text(field)
    return doc


def _reviver(annotation: str) -> Any:
    # Field annotations are strings here (postponed evaluation); they name the type plainly.
    if "Decimal" in annotation:
        return Decimal
    if "datetime" in annotation:
        return dt.datetime.fromisoformat
    if "date" in annotation:
        return dt.date.fromisoformat
    return None


def _types(cls: Any) -> dict[str, Any]:
    return {name: _reviver(str(f.type)) for name, f in cls.__dataclass_fields__.items()}


def _as_text(cls: Any) -> tuple[tuple[str, Callable[[Any], str]], ...]:
    """The fields of a dataclass that JSON holds as text, and how each is written."""
    return tuple((name, str if reviver is Decimal else _isoformat)
                 for name, reviver in _types(cls).items() if reviver is not None)


def _isoformat(value: dt.date) -> str:
    return value.isoformat()  # datetimes too: their own isoformat, not date's


_ACCOUNT_TYPES = _types(Account)
_POLICY_TYPES = _types(PolicyParams)
_ACCOUNT_TEXT = _as_text(Account)
_POLICY_TEXT = _as_text(PolicyParams)
_GROUP_TEXT = _as_text(GroupTerms)


def _revive(values: dict[str, Any], types: dict[str, Any]) -> dict[str, Any]:
    return {k: v if v is None or types[k] is None else types[k](v) for k, v in values.items()}
