"""Column types and the metadata every table is declared on (PostgreSQL only)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import DateTime, Dialect, Index, MetaData, Numeric, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator

from app.money import QUANTUM, SCALE

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class Money(TypeDecorator[Decimal]):
    """NUMERIC(20,4), read back at exactly four decimals."""

    impl = Numeric(20, SCALE, asdecimal=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        return None if value is None else Decimal(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        return None if value is None else Decimal(value).quantize(QUANTUM)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timestamps are stored and returned in UTC, always timezone-aware."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        return None if value is None else value.astimezone(dt.UTC)


# A ratio with at most four decimals needs exactly the storage money has.
ExactRatio = Money
JsonDoc = JSONB


def partial_index(name: str, *columns: str, where: str, include: tuple[str, ...] = ()
                  ) -> Index:
    """An index over the rows matching `where` only; `include` adds payload columns, for
    index-only scans."""
    return Index(name, *columns, postgresql_where=text(where),
                 postgresql_include=list(include))


class Rate(TypeDecorator[Decimal]):
    """An exchange rate: NUMERIC(24,10), read back without trailing zeros."""

    impl = Numeric(24, 10, asdecimal=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        return None if value is None else Decimal(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        return None if value is None else _plain(Decimal(value))


def _plain(value: Decimal) -> Decimal:
    normal = value.normalize()
    return normal.quantize(Decimal(1)) if normal == normal.to_integral() else normal
