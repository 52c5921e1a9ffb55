"""Creating and verifying API keys. Only a SHA-256 hash of a key is ever stored."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app import clock
from app.auth.roles import Caller, Role
from app.auth.tables import api_keys
from app.errors import Conflict
from app.ids import new_id
from app.notify import KEYS_CHANNEL, notify

KEY_PREFIX = "cg_"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


async def create_key(conn: AsyncConnection, role: Role, name: str | None) -> tuple[str, str]:
    """Store a new key's hash; returns (name, key). The key itself is never stored."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    key_id = new_id()
    name = name or f"{role.value}-{key_id[-8:].lower()}"
    taken = await conn.scalar(select(api_keys.c.key_id).where(api_keys.c.name == name))
    if taken is not None:
        raise Conflict(f"a key named {name!r} already exists", code="key_name_taken")
    await conn.execute(insert(api_keys).values(
        key_id=key_id, name=name, role=role.value, key_hash=hash_key(key),
        created_at=clock.now()))
    return name, key


async def verify_key(conn: AsyncConnection, key: str) -> Caller | None:
    """The caller a presented key belongs to, or None if unknown or revoked."""
    digest = hash_key(key)
    row = (await conn.execute(
        select(api_keys.c.key_id, api_keys.c.name, api_keys.c.role, api_keys.c.key_hash,
               api_keys.c.revoked_at).where(api_keys.c.key_hash == digest))).first()
    if row is None or row.revoked_at is not None:
        return None
    if not hmac.compare_digest(row.key_hash, digest):
        return None
    return Caller(row.key_id, row.name, Role(row.role))


async def list_keys(conn: AsyncConnection) -> list[Any]:
    stmt = select(api_keys.c.name, api_keys.c.role, api_keys.c.created_at,
                  api_keys.c.last_used_at, api_keys.c.revoked_at).order_by(api_keys.c.created_at)
    return list((await conn.execute(stmt)).all())


async def revoke_key(conn: AsyncConnection, name: str) -> bool:
    result = await conn.execute(
        update(api_keys).where(api_keys.c.name == name, api_keys.c.revoked_at.is_(None))
        .values(revoked_at=clock.now()))
    if result.rowcount:
        # Delivered at commit to every process that caches keys (app/auth/verifier.py).
        await notify(conn, KEYS_CHANNEL, name)
    return bool(result.rowcount)
