"""The `creditgate` command: serve, migrate, keys, demo, import-open-items, expire, monitor,
webhooks, reconcile."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import signal
import sys
import tempfile
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from app.settings import Settings, get_settings


class Failed(Exception):
    """A command failed for a reason the user can act on; the message says which."""


def main(argv: list[str] | None = None) -> int:
    """Run one command. A failure is one line on stderr, `creditgate: error: <sentence>`,
    and exit status 1 (2 for usage errors, as argparse does); never a traceback."""
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    if args.run is not _serve:
        # A one-shot command's counters end with it: in the servers' multiprocess directory
        # they would be folded into the servers' series, and where the command runs (a
        # CronJob, a shell) that directory may not even exist. Before app.metrics is imported.
        os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    try:
        result: int = args.run(args)
    except KeyboardInterrupt:
        print(f"{parser.prog}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - every failure becomes one sentence
        if os.environ.get("CREDITGATE_LOG_LEVEL", "").upper() == "DEBUG":
            traceback.print_exception(exc)
        print(f"{parser.prog}: error: {_explain(exc)}", file=sys.stderr)
        return 1
    return result


def _settings() -> Settings:
    """The settings of this command: the one place every command (serve, migrate and those
    that work on the database) learns which database it talks to.

    Without DATABASE_URL that is the embedded PostgreSQL, started here (or joined, if another
    command already runs it) and stopped when the last command using it exits; its URL goes
    into the environment, where `serve`'s worker processes find it.
    """
    settings = get_settings()
    if settings.database_url is not None:
        return settings
    from app.db import embedded

    try:
        url = embedded.start()
    except embedded.EmbeddedUnavailable as exc:
        raise Failed(str(exc)) from None
    os.environ["DATABASE_URL"] = url
    get_settings.cache_clear()
    return get_settings()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="creditgate", description=__doc__)
    sub = parser.add_subparsers(metavar="COMMAND")

    serve = sub.add_parser("serve", help="serve the HTTP API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.set_defaults(run=_serve)

    sub.add_parser("migrate", help="upgrade the database schema (Alembic head)").set_defaults(
        run=_migrate)

    keys = sub.add_parser("keys", help="manage API keys").add_subparsers(metavar="ACTION")
    create = keys.add_parser("create", help="create a key; prints it alone on the last line")
    create.add_argument("--role", required=True,
                        choices=["order-entry", "warehouse", "ledger", "controller", "admin"])
    create.add_argument("--name")
    create.set_defaults(run=_keys_create)
    keys.add_parser("list", help="list keys (never the secret)").set_defaults(run=_keys_list)
    revoke = keys.add_parser("revoke", help="revoke a key by name")
    revoke.add_argument("name")
    revoke.set_defaults(run=_keys_revoke)

    sub.add_parser("demo", help="load the demo data set and print an admin key").set_defaults(
        run=_demo)
    imp = sub.add_parser("import-open-items", help="replace open items from an ERP CSV export")
    imp.add_argument("file", type=Path)
    imp.set_defaults(run=_import)
    sub.add_parser("expire", help="expire lapsed reservations now").set_defaults(run=_expire)
    sub.add_parser("monitor", help="run the daily alert sweep now").set_defaults(run=_monitor)
    hooks = sub.add_parser("webhooks", help="webhook deliveries").add_subparsers(
        metavar="ACTION")
    hooks.add_parser("deliver", help="deliver the due webhook events now (cron)").set_defaults(
        run=_webhooks_deliver)
    rec = sub.add_parser("reconcile", help="recompute aggregates from line items; report drift")
    rec.add_argument("--repair", action="store_true", help="also correct what drifted")
    rec.set_defaults(run=_reconcile)
    return parser


def _with_db(work: Callable[[Any], Awaitable[int]]) -> int:
    from app.cache import Cache, retire_after_commit
    from app.db.engine import Database

    settings = _settings()  # outside the event loop: it may start a database server

    async def runner() -> int:
        db = Database(settings)
        cache = None
        # Running servers may hold cached states of the customers this command changes.
        if settings.redis_url:
            cache = Cache(settings.redis_url, timeout=settings.redis_timeout_seconds,
                          namespace=settings.cache_namespace)
        db.on_commit = retire_after_commit(db, cache)
        try:
            await _require_current_schema(db)
            return await work(db)
        finally:
            if cache is not None:
                await cache.close()
            await db.dispose()

    return asyncio.run(runner())


async def _require_current_schema(db: Any) -> None:
    """Refuse to work on a database that is not at this code's schema revision (before
    anything is changed, so nothing is left half-done)."""
    from app.schema import SchemaOutdated, state_of

    async with db.autocommit() as conn:
        state = await state_of(conn)
    if not state.up_to_date:
        raise SchemaOutdated(state)


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from app import logs

    settings = _settings()  # a bad configuration fails here, before any worker starts
    _fresh_metrics_dir()
    logs.configure(settings.log_level)
    logging.getLogger("creditgate").info(
        "connection budget: %d workers x (%d pooled + %d overflow + 1 listener) = %d "
        "PostgreSQL connections", args.workers, settings.db_pool_size,
        settings.db_max_overflow, _budget(args.workers, settings))
    # uvicorn re-raises the SIGTERM it shut down on, with the handler it found: let that be an
    # ordinary exit, so that exit handlers run (the embedded server stops with the last one).
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    uvicorn.run("app.main:create_app", factory=True, host=args.host, port=args.port,
                workers=args.workers, proxy_headers=True, timeout_graceful_shutdown=10,
                timeout_keep_alive=settings.http_keep_alive_seconds,
                log_level=settings.log_level.lower())
    return 0


def _exit_on_sigterm(signum: int, _frame: Any) -> None:
    raise SystemExit(128 + signum)


def _budget(workers: int, settings: Settings) -> int:
    """PostgreSQL connections this server may hold: pooled, overflow and one listener per
    worker (docs/scaling.md, the connection budget)."""
    return workers * (settings.db_pool_size + settings.db_max_overflow + 1)


def _fresh_metrics_dir() -> None:
    """Workers share counters through files in PROMETHEUS_MULTIPROC_DIR, emptied at start."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        shutil.rmtree(directory, ignore_errors=True)
        os.makedirs(directory, exist_ok=True)
    else:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="creditgate-metrics-")


def _migrate(_: argparse.Namespace) -> int:
    """Alembic `upgrade head`, configured in code: the migrations ship inside the package."""

    from alembic import command

    from app.schema import alembic_config, shipped

    settings = _settings()
    # What alembic.ini's logging sections said: Alembic's progress on stderr.
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(levelname)-5.5s [%(name)s] %(message)s")
    logging.getLogger("alembic").setLevel(logging.INFO)
    command.upgrade(alembic_config(settings.database_url), "head")
    print(f"the database schema is at revision {', '.join(shipped().heads)} (head)")
    return 0


def _keys_create(args: argparse.Namespace) -> int:
    from app.auth.keys import create_key
    from app.auth.roles import Role
    from app.errors import Conflict

    async def work(db: Any) -> int:
        try:
            async with db.begin() as conn:
                name, key = await create_key(conn, Role(args.role), args.name)
        except Conflict as exc:
            raise Failed(f"{exc.detail} (creditgate keys list shows them); choose another "
                         "--name") from exc
        print(f"created {args.role} key {name!r}; store it now, it is not shown again:")
        print(key)
        return 0

    return _with_db(work)


def _keys_list(_: argparse.Namespace) -> int:
    from app.auth.keys import list_keys

    async def work(db: Any) -> int:
        async with db.autocommit() as conn:
            rows = await list_keys(conn)
        print(f"{'NAME':<32} {'ROLE':<12} {'CREATED':<26} {'LAST USED':<26} REVOKED")
        for r in rows:
            print(f"{r.name:<32} {r.role:<12} {_ts(r.created_at):<26} {_ts(r.last_used_at):<26}"
                  f" {_ts(r.revoked_at)}")
        return 0

    return _with_db(work)


def _ts(value: Any) -> str:
    return value.isoformat(timespec="seconds") if value is not None else "-"


def _keys_revoke(args: argparse.Namespace) -> int:
    from app.auth.keys import revoke_key

    async def work(db: Any) -> int:
        async with db.begin() as conn:
            done = await revoke_key(conn, args.name)
        if not done:
            raise Failed(f"no active key named {args.name!r}; creditgate keys list shows "
                         "the keys and which are revoked")
        print(f"revoked {args.name!r}")
        return 0

    return _with_db(work)


def _demo(_: argparse.Namespace) -> int:
    from app.auth.keys import create_key
    from app.auth.roles import Role
    from app.demo import load_demo

    async def work(db: Any) -> int:
        loaded = await load_demo(db)
        async with db.begin() as conn:
            _name, key = await create_key(conn, Role.ADMIN, None)
        print("demo data loaded" if loaded else "demo data already present")
        print("\n  API key (admin):  " + key + "\n  try:  curl -s -H 'Authorization: Bearer "
              + key + "' http://127.0.0.1:8000/v1/customers/ACME-001/exposure\n")
        return 0

    return _with_db(work)


def _import(args: argparse.Namespace) -> int:
    from app.importer import ImportError_, apply_items, read_items

    try:  # the whole file first, before the database is touched
        parsed = read_items(args.file)
    except ImportError_ as exc:
        raise _not_imported(args.file, exc.problems) from None

    async def work(db: Any) -> int:
        try:
            summary = await apply_items(db, parsed)
        except ImportError_ as exc:
            raise _not_imported(args.file, exc.problems) from None
        for line in summary:
            print(line)
        return 0

    return _with_db(work)


def _not_imported(path: Path, problems: list[str]) -> Failed:
    """One problem: the error line itself; more: one line each, then the error line."""
    if len(problems) == 1:
        named = "" if str(path) in problems[0] else f" from {path}"
        return Failed(f"{problems[0]}; nothing was imported{named}")
    for problem in problems:
        print(problem, file=sys.stderr)
    return Failed(f"{path} has the problems listed above; nothing was imported")


def _expire(_: argparse.Namespace) -> int:
    from app.orders.service import expire_reservations

    async def work(db: Any) -> int:
        run = await expire_reservations(db)
        print(f"expired {run.expired} reservations; auto-released {len(run.decided)} holds")
        return 0

    return _with_db(work)


def _monitor(_: argparse.Namespace) -> int:
    from app.monitoring.sweep import run_now

    async def work(db: Any) -> int:
        run = await run_now(db)
        print(f"swept: {run.evaluated} accounts evaluated, {run.raised} alerts raised, "
              f"{run.resolved} resolved")
        return 0

    return _with_db(work)


def _webhooks_deliver(_: argparse.Namespace) -> int:
    from app.events.dispatcher import Dispatcher

    async def work(db: Any) -> int:
        dispatcher = Dispatcher(db)
        run = await dispatcher.drain()
        pruned = await dispatcher.prune()
        print(f"webhooks: {run.delivered} delivered, {run.retried} to retry, {run.failed} "
              f"failed, {len(run.disabled)} endpoints disabled; {pruned} old events pruned")
        return 0

    return _with_db(work)


def _reconcile(args: argparse.Namespace) -> int:
    from app.reconcile import find_drift, repair

    async def work(db: Any) -> int:
        async with db.begin() as conn:
            drift = await find_drift(conn)
            for d in drift:
                print(f"DRIFT {d.customer_id} {d.aggregate}: maintained {d.maintained}, "
                      f"recomputed {d.recomputed}")
            if drift and args.repair:
                print(f"repaired {await repair(conn, drift)} aggregates")
        if not drift:
            print("no drift: every aggregate matches its line items")
        return 1 if drift and not args.repair else 0

    return _with_db(work)


def _explain(exc: BaseException) -> str:
    """The sentence for a failure: what went wrong and what to do about it."""
    from alembic.util import CommandError
    from pydantic import ValidationError

    from app.errors import is_database_unavailable, is_schema_outdated, sqlstate
    from app.schema import MIGRATE_HINT, SchemaOutdated

    if isinstance(exc, Failed | SchemaOutdated):
        return str(exc)
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return f"invalid configuration: {where}: {first['msg']}"
    if isinstance(exc, CommandError):
        if "Can't locate revision" in str(exc):
            return (f"{exc}: the database was migrated by a newer version of creditgate; run "
                    "that version, or downgrade the database with it")
        return f"migration failed: {exc}"
    state = sqlstate(exc)
    url = _described_url()
    if is_schema_outdated(exc):
        return f"the database schema is not this version's (SQLSTATE {state}): {MIGRATE_HINT}"
    if state == "3D000":
        return f"there is no database {url[1]!r} at {url[0]}; create it, or check DATABASE_URL"
    if state in ("28000", "28P01"):
        return f"the database at {url[0]} refused the login; check DATABASE_URL"
    if isinstance(exc, OSError) and exc.filename is not None:  # a local file, not the network
        return f"{exc.filename}: {(exc.strerror or str(exc)).lower()}"
    if is_database_unavailable(exc):
        return (f"cannot reach the database at {url[0]} ({_reason(exc)}); is it running? "
                "check DATABASE_URL")
    message = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {message[0]}" if message else type(exc).__name__


def _described_url() -> tuple[str, str]:
    """(host:port or socket directory, database name) of DATABASE_URL; never the password.
    From the settings already read (not `_settings()`, which may start a server)."""
    from sqlalchemy.engine import make_url

    try:
        url = make_url(get_settings().database_url or "")
    except Exception:  # noqa: BLE001 - only for a message
        return "the configured server", "?"
    host = url.host or str(url.query.get("host", "") or "localhost")
    where = host if host.startswith("/") else f"{host}:{url.port or 5432}"
    return where, url.database or "?"


def _reason(exc: BaseException) -> str:
    seen: list[BaseException] = []
    e: BaseException | None = exc
    while e is not None and all(e is not s for s in seen):
        seen.append(e)
        e = e.__cause__ or e.__context__
    for e in seen:
        if getattr(e, "sqlstate", None) == "53300":
            return "it has too many connections"
        if isinstance(e, ConnectionRefusedError):
            return "connection refused"
        if isinstance(e, TimeoutError):
            return "no answer in time"
        if isinstance(e, OSError) and e.strerror:
            return e.strerror.lower()
    return type(exc).__name__


if __name__ == "__main__":
    sys.exit(main())
