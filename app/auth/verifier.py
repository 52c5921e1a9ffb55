"""Per-process key verification with a short cache, so most checks skip the key lookup."""

from __future__ import annotations

import time

from app.auth.keys import hash_key, verify_key
from app.auth.roles import Caller
from app.db import Database


class KeyVerifier:
    """Looks keys up by hash. A cache entry lives `ttl` seconds (0 disables the cache)."""

    def __init__(self, db: Database, ttl: float) -> None:
        self._db = db
        self._ttl = ttl
        self._cache: dict[str, tuple[float, Caller | None]] = {}

    async def verify(self, key: str) -> Caller | None:
        digest = hash_key(key)
        hit = self._cache.get(digest)
        now = time.monotonic()
        if hit is not None and now - hit[0] < self._ttl:
            return hit[1]
        async with self._db.autocommit() as conn:
            caller = await verify_key(conn, key)
        if self._ttl > 0:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[digest] = (now, caller)
        return caller

    def forget(self) -> None:
        """Drop every cached answer (a key was revoked somewhere)."""
        self._cache.clear()
