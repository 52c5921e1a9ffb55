"""The `creditgate` command: serve, migrate, keys, demo, import-open-items, expire, reconcile."""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from app.settings import get_settings

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    result: int = args.run(args)
    return result


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
    rec = sub.add_parser("reconcile", help="recompute aggregates from line items; report drift")
    rec.add_argument("--repair", action="store_true", help="also correct what drifted")
    rec.set_defaults(run=_reconcile)
    return parser


def _with_db(work: Callable[[Any], Awaitable[int]]) -> int:
    # A one-shot command's counters end with it: in the servers' multiprocess directory they
    # would be folded into the servers' series, and where the command runs (a CronJob, a
    # shell) that directory may not even exist. Must happen before app.metrics is imported.
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    from app.cache import Cache, retire_after_commit
    from app.db import Database

    async def runner() -> int:
        settings = get_settings()
        db = Database(settings)
        cache = None
        if not settings.is_sqlite:
            # Running servers may hold cached states of the customers this command changes.
            if settings.redis_url:
                cache = Cache(settings.redis_url, timeout=settings.redis_timeout_seconds,
                              namespace=settings.cache_namespace)
            db.on_commit = retire_after_commit(db, cache)
        try:
            return await work(db)
        finally:
            if cache is not None:
                await cache.close()
            await db.dispose()

    return asyncio.run(runner())


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    _fresh_metrics_dir()
    uvicorn.run("app.main:create_app", factory=True, host=args.host, port=args.port,
                workers=args.workers, proxy_headers=True, timeout_graceful_shutdown=10,
                log_level=get_settings().log_level.lower())
    return 0


def _fresh_metrics_dir() -> None:
    """Workers share counters through files in PROMETHEUS_MULTIPROC_DIR, emptied at start."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        shutil.rmtree(directory, ignore_errors=True)
        os.makedirs(directory, exist_ok=True)
    else:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="creditgate-metrics-")


def _migrate(_: argparse.Namespace) -> int:
    from alembic import command
    from alembic.config import Config

    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.attributes["database_url"] = get_settings().database_url
    command.upgrade(config, "head")
    return 0


def _keys_create(args: argparse.Namespace) -> int:
    from app.auth.keys import create_key
    from app.auth.roles import Role

    async def work(db: Any) -> int:
        async with db.begin() as conn:
            name, key = await create_key(conn, Role(args.role), args.name)
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
            print(f"no active key named {args.name!r}", file=sys.stderr)
            return 1
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
    from app.importer import ImportError_, import_open_items

    async def work(db: Any) -> int:
        try:
            summary = await import_open_items(db, args.file)
        except ImportError_ as exc:
            for problem in exc.problems:
                print(problem, file=sys.stderr)
            print("nothing was imported", file=sys.stderr)
            return 1
        for line in summary:
            print(line)
        return 0

    return _with_db(work)


def _expire(_: argparse.Namespace) -> int:
    from app.orders.service import expire_reservations

    async def work(db: Any) -> int:
        run = await expire_reservations(db)
        print(f"expired {run.expired} reservations; auto-released {len(run.decided)} holds")
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


if __name__ == "__main__":
    sys.exit(main())
