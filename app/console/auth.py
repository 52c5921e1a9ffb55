"""Console sign-in: an API key pasted once becomes a signed, expiring, server-side session.

The cookie carries a random token and its HMAC; the database keeps only the token's SHA-256
(console_sessions), so signing out, revoking the key or the session's expiry ends it at once
on every worker. CSRF tokens are HMACs of the session token: a page can only have one if it
was rendered for that session.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass

from sqlalchemy import delete, insert, select, update

from app import clock
from app.auth.roles import Caller, Role
from app.auth.tables import api_keys
from app.console.tables import console_sessions
from app.db.engine import Database
from app.settings import Settings

log = logging.getLogger("creditgate.console")
COOKIE = "creditgate_console"
LOGIN_COOKIE = "creditgate_console_login"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
MAY_SIGN_IN = frozenset({Role.CONTROLLER, Role.ADMIN})
_DEV_LABEL = b"creditgate console development secret, not for production:"


def console_secret(settings: Settings) -> bytes | None:
    """The signing key; None (the console is off) in production without one of its own."""
    if settings.console_secret is not None:
        return settings.console_secret.get_secret_value().encode()
    if settings.env == "production":
        return None
    return hashlib.sha256(_DEV_LABEL + (settings.database_url or "").encode()).digest()


def secure_cookie(settings: Settings) -> bool:
    if settings.console_secure_cookie is not None:
        return settings.console_secure_cookie
    return settings.env == "production"


class Signer:
    """HMAC-SHA256 under the console secret, one purpose label per use."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def mac(self, purpose: str, value: str) -> str:
        digest = hmac.new(self._secret, f"{purpose}\x00{value}".encode(), hashlib.sha256)
        return base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()

    def check(self, purpose: str, value: str, presented: str | None) -> bool:
        return presented is not None and hmac.compare_digest(
            self.mac(purpose, value).encode(), presented.encode())

    def sign(self, value: str) -> str:
        return f"{value}.{self.mac('cookie', value)}"

    def unsign(self, signed: str | None) -> str | None:
        if not signed or "." not in signed:
            return None
        value, _, mac = signed.rpartition(".")
        return value if self.check("cookie", value, mac) else None


@dataclass(frozen=True)
class Session:
    token: str
    key_id: str
    name: str
    role: Role
    expires_at: dt.datetime
    csrf: str

    @property
    def caller(self) -> Caller:
        return Caller(self.key_id, self.name, self.role)

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def open_session(db: Database, caller: Caller, minutes: int) -> tuple[str, dt.datetime]:
    """A new session for a caller who may sign in; returns (token, expires_at)."""
    now = clock.now()
    token = secrets.token_urlsafe(32)
    expires_at = now + dt.timedelta(minutes=minutes)
    async with db.begin() as conn:
        # Expired and revoked sessions older than a day are of no further use.
        await conn.execute(delete(console_sessions).where(
            console_sessions.c.expires_at < now - dt.timedelta(days=1)))
        await conn.execute(insert(console_sessions).values(
            session_hash=_hash(token), key_id=caller.key_id, key_name=caller.name,
            role=caller.role.value, created_at=now, expires_at=expires_at))
    log.info("console sign-in", extra={"fields": {"key": caller.name}})
    return token, expires_at


async def find_session(db: Database, signer: Signer, token: str) -> Session | None:
    """The live session of a token: not expired, not revoked, its key not revoked."""
    s, k = console_sessions.c, api_keys.c
    stmt = (select(s.key_id, s.key_name, s.role, s.expires_at)
            .select_from(console_sessions.join(api_keys, k.key_id == s.key_id))
            .where(s.session_hash == _hash(token), s.revoked_at.is_(None),
                   s.expires_at > clock.now(), k.revoked_at.is_(None)))
    async with db.autocommit() as conn:
        row = (await conn.execute(stmt)).first()
    if row is None or Role(row.role) not in MAY_SIGN_IN:
        return None
    return Session(token, row.key_id, row.key_name, Role(row.role), row.expires_at,
                   signer.mac("csrf", token))


async def close_session(db: Database, token: str) -> None:
    async with db.begin() as conn:
        await conn.execute(update(console_sessions)
                           .where(console_sessions.c.session_hash == _hash(token),
                                  console_sessions.c.revoked_at.is_(None))
                           .values(revoked_at=clock.now()))
