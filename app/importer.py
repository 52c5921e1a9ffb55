"""`creditgate import-open-items`: an ERP's open-item export, all or nothing."""

from __future__ import annotations

import csv
import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from pydantic import ValidationError

from app import clock
from app.auth.roles import Caller, Role
from app.customers.locking import lock_groups_of
from app.db.engine import Database
from app.errors import AppError
from app.fields import ID_PATTERN
from app.receivables.schemas import MAX_SNAPSHOT_ITEMS, OpenItemIn
from app.receivables.service import replace_open_items

COLUMNS = ("customer_id", "invoice_id", "amount", "currency", "due_on")
MAX_ROWS = 2_000_000
MAX_PROBLEMS = 50
IMPORTER = Caller("system", "import-open-items", Role.LEDGER)
_ID = re.compile(ID_PATTERN)


class ImportError_(Exception):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass
class OpenItemsFile:
    """A validated export: items per customer, and where each came from in the file."""

    groups: dict[str, list[OpenItemIn]] = field(default_factory=lambda: defaultdict(list))
    line_of_invoice: dict[str, int] = field(default_factory=dict)
    first_line_of: dict[str, int] = field(default_factory=dict)

    def lines_of(self, invoice_ids: list[str]) -> str:
        return ", ".join(f"line {self.line_of_invoice[i]} ({i})" for i in invoice_ids
                         if i in self.line_of_invoice)


def read_items(path: Path, max_rows: int = MAX_ROWS) -> OpenItemsFile:
    """Parse and validate the whole file first; every problem names its line (a file that
    cannot be read, or is not UTF-8 CSV, is a problem too: ImportError_, never OSError)."""
    try:
        with path.open("rb") as handle:
            return _read(_utf8_lines(handle), max_rows)
    except FileNotFoundError:
        raise ImportError_([f"cannot read {path}: there is no such file"]) from None
    except IsADirectoryError:
        raise ImportError_([f"cannot read {path}: it is a directory, not a CSV file"]) from None
    except PermissionError:
        raise ImportError_([f"cannot read {path}: permission denied"]) from None
    except OSError as exc:
        raise ImportError_([f"cannot read {path}: {exc.strerror or exc}"]) from None


def _utf8_lines(handle: BinaryIO) -> Iterator[str]:
    """The file's lines (with their line ends, as csv wants them), decoded as UTF-8."""
    for number, raw in enumerate(handle, start=1):
        try:
            yield raw.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError as exc:
            raise ImportError_([f"line {number}: not UTF-8 text (byte 0x{raw[exc.start]:02x} "
                                f"at column {exc.start + 1}); export the file as UTF-8 CSV"]
                               ) from None


def _read(lines: Iterator[str], max_rows: int) -> OpenItemsFile:
    parsed = OpenItemsFile()
    problems: list[str] = []
    reader = csv.DictReader(lines)
    try:
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ImportError_([f"line 1: missing column(s) {', '.join(missing)}; expected "
                                f"the header {','.join(COLUMNS)}"])
        for row in reader:
            line = reader.line_num
            if line > max_rows + 1:
                raise ImportError_([f"line {line}: more than {max_rows} rows; split the file "
                                    "(nothing was read into the database)"])
            problem = _check_row(row, line, parsed)
            if problem:
                problems.append(problem)
                if len(problems) >= MAX_PROBLEMS:
                    problems.append("(stopped after 50 problems)")
                    break
    except csv.Error as exc:
        raise ImportError_([f"line {reader.line_num}: not CSV ({exc})"]) from None
    for customer_id, items in parsed.groups.items():
        if len(items) > MAX_SNAPSHOT_ITEMS:
            problems.append(f"customer {customer_id} (from line "
                            f"{parsed.first_line_of[customer_id]}): more than "
                            f"{MAX_SNAPSHOT_ITEMS} items")
    if problems:
        raise ImportError_(problems)
    return parsed


def _check_row(row: dict[str, str | None], line: int, parsed: OpenItemsFile) -> str | None:
    customer_id = row.get("customer_id") or ""
    if not _ID.match(customer_id):
        return f"line {line}: customer_id: must be 1-64 characters of [A-Za-z0-9._:-]"
    try:
        item = OpenItemIn.model_validate({c: row.get(c) for c in COLUMNS[1:]})
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        return f"line {line}: {field}: {first['msg']}"
    seen = parsed.line_of_invoice
    if item.invoice_id in seen:
        return f"line {line}: invoice_id {item.invoice_id} already on line {seen[item.invoice_id]}"
    seen[item.invoice_id] = line
    parsed.first_line_of.setdefault(customer_id, line)
    parsed.groups[customer_id].append(item)
    return None


async def import_open_items(db: Database, path: Path) -> list[str]:
    """Replace the open items of every customer in the file, in one transaction."""
    return await apply_items(db, read_items(path))


async def apply_items(db: Database, parsed: OpenItemsFile) -> list[str]:
    """Replace the open items of every customer of a read file, in one transaction."""
    groups = parsed.groups
    today, now = clock.today(), clock.now()
    summary: list[str] = []
    try:
        async with db.begin() as conn:
            # A fixed lock order, as every writer's: credit groups, then accounts.
            await lock_groups_of(conn, sorted(groups))
            for customer_id in sorted(groups):
                result, _released = await replace_open_items(
                    conn, customer_id, groups[customer_id], IMPORTER, today=today, now=now,
                    ttl_days=db.settings.reservation_ttl_days)
                summary.append(
                    f"{customer_id}: {len(result.added)} added, {len(result.changed)} changed, "
                    f"{len(result.removed)} removed, {result.unchanged} unchanged; open "
                    f"receivables {result.open_receivables_before} -> "
                    f"{result.open_receivables_after}")
    except AppError as exc:
        raise ImportError_([_located(parsed, customer_id, exc)]) from exc
    return summary


def _located(parsed: OpenItemsFile, customer_id: str, exc: AppError) -> str:
    """A refusal from the ledger, pointed at the lines of the file that caused it."""
    named = parsed.lines_of(list(exc.extra.get("invoice_ids", [])))
    where = named or f"line {parsed.first_line_of[customer_id]}"
    return f"{where}: customer {customer_id}: {exc.detail}"
