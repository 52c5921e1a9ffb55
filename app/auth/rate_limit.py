"""A request rate per API key and process (429 beyond it)."""

from __future__ import annotations

import math
import time

from app.errors import AppError


class TooManyRequests(AppError):
    status, code, title = 429, "rate_limited", "Too many requests"


class RateLimiter:
    """A token bucket per API key, in this process: `rate` requests/s, bursts up to `burst`."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self._buckets: dict[str, tuple[float, float]] = {}

    def check(self, key_id: str) -> None:
        """Spend a token, or raise TooManyRequests saying when to come back."""
        if self.rate <= 0:
            return
        now = time.monotonic()
        tokens, since = self._buckets.get(key_id, (self.burst, now))
        tokens = min(self.burst, tokens + (now - since) * self.rate)
        if tokens < 1:
            self._buckets[key_id] = (tokens, now)
            wait = math.ceil((1 - tokens) / self.rate)
            raise TooManyRequests(f"more than {self.rate:g} requests/s with this key; "
                                  f"retry in {wait} s", headers={"Retry-After": str(wait)})
        self._buckets[key_id] = (tokens - 1, now)
