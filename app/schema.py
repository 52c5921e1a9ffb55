"""The schema this code was built for: the migrations shipped in the package, and whether a
database is at their head revision.

The migrations live in the repository's top-level `migrations/` folder, which the wheel ships
as the package `app.migrations` (pyproject.toml `package-dir`); they are found through
`importlib.resources`, so `creditgate migrate` works from an installed wheel with no
alembic.ini and no checkout. alembic.ini stays for developers running `alembic` in the repo.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

MIGRATIONS_PACKAGE = "app.migrations"
# New revision files are named <rev>_<slug>.py (as in alembic.ini; `%%` is ConfigParser's %).
FILE_TEMPLATE = "%%(rev)s_%%(slug)s"
MIGRATE_HINT = "run creditgate migrate"


def migrations_dir() -> Path:
    """The directory holding env.py and versions/, inside the installed package.

    In a checkout imported without installing (`python -m app.cli` from the repo root, no
    editable install), `app.migrations` is not importable: the folder next to `app` is the
    same one, so that is used.
    """
    try:
        found = resources.files(MIGRATIONS_PACKAGE)
    except ModuleNotFoundError:
        checkout = Path(__file__).resolve().parent.parent / "migrations"
        if (checkout / "env.py").is_file():
            return checkout
        raise
    if not isinstance(found, Path):  # e.g. imported from a zip file
        raise RuntimeError(f"the migrations must be files on disk, not {found!r}")
    return found


def alembic_config(database_url: str | None = None) -> Config:
    """Alembic's configuration in code (what alembic.ini says, minus logging)."""
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    config.set_main_option("file_template", FILE_TEMPLATE)
    if database_url is not None:
        config.attributes["database_url"] = database_url
    return config


@dataclass(frozen=True)
class Revisions:
    """What the shipped migrations define: their head(s) and every revision they know."""

    heads: tuple[str, ...]
    known: frozenset[str]


@functools.cache
def shipped() -> Revisions:
    """Read once per process (at start-up: app.ops calls it when imported)."""
    script = ScriptDirectory.from_config(alembic_config())
    return Revisions(heads=tuple(sorted(script.get_heads())),
                     known=frozenset(s.revision for s in script.walk_revisions()))


def _joined(revisions: tuple[str, ...]) -> str | None:
    return ", ".join(revisions) or None


@dataclass(frozen=True)
class SchemaState:
    """The revision(s) a database is at, against those this code expects."""

    current: tuple[str, ...]
    expected: tuple[str, ...]
    known: frozenset[str]

    @property
    def up_to_date(self) -> bool:
        return self.current == self.expected

    @property
    def ahead(self) -> bool:
        """At a revision this code does not know: a newer version migrated it."""
        return any(r not in self.known for r in self.current)

    @property
    def current_revision(self) -> str | None:
        return _joined(self.current)

    @property
    def expected_revision(self) -> str | None:
        return _joined(self.expected)

    def problem(self) -> str:
        """What is wrong and what to do, as a sentence ('' when up to date)."""
        if self.up_to_date:
            return ""
        if not self.current:
            return (f"the database has no schema yet (this version needs revision "
                    f"{self.expected_revision}): {MIGRATE_HINT}")
        if self.ahead:
            return (f"the database is at revision {self.current_revision}, which this version "
                    f"of creditgate does not know (it needs {self.expected_revision}): a newer "
                    "version migrated it; run that version, or downgrade the database with it")
        return (f"the database is at revision {self.current_revision}, this version of "
                f"creditgate needs {self.expected_revision}: {MIGRATE_HINT}")


class SchemaOutdated(Exception):
    def __init__(self, state: SchemaState) -> None:
        super().__init__(state.problem())
        self.state = state


def _current_heads(connection: Connection) -> tuple[str, ...]:
    # Looks for alembic_version first, so an empty database raises nothing (and logs nothing
    # on the server), then reads it: two catalogue-sized queries.
    return tuple(sorted(MigrationContext.configure(connection).get_current_heads()))


async def state_of(conn: AsyncConnection) -> SchemaState:
    """The schema state of the database behind `conn` (read on each call)."""
    revisions = shipped()
    current = await conn.run_sync(_current_heads)
    return SchemaState(current=current, expected=revisions.heads, known=revisions.known)
