"""One webhook POST over HTTP/1.1: to the checked address, no redirects, bounded in time.

Small on purpose: it connects to the address the SSRF guard checked (so a DNS answer cannot
change between the check and the connection), never follows a redirect (a 3xx is a failed
attempt), and reads only the status, the headers and the first 1 KiB of the answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import email.utils
import ssl
import time
from dataclasses import dataclass

from app.events.urls import Target, UnsafeUrl, resolve

DELIVERY_TIMEOUT = 15.0  # seconds for the whole attempt: resolve, connect, send, answer
EXCERPT_BYTES = 1024
USER_AGENT = "creditgate-webhooks/1"
_MAX_HEAD = 64 * 1024
_TLS: ssl.SSLContext | None = None


@dataclass(frozen=True)
class Answer:
    status: int | None  # None: no HTTP answer (refused address, network error, timeout)
    seconds: float
    excerpt: str = ""
    error: str | None = None
    retry_after: float | None = None  # seconds, from a Retry-After header

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def _tls() -> ssl.SSLContext:
    global _TLS
    if _TLS is None:
        _TLS = ssl.create_default_context()
    return _TLS


async def post(url: str, body: bytes, headers: dict[str, str], *, allow_private: bool,
               timeout: float = DELIVERY_TIMEOUT) -> Answer:  # noqa: ASYNC109
    """POST `body`; never raises for what the receiver or the network does."""
    start = time.monotonic()
    try:
        async with asyncio.timeout(timeout):
            target = await resolve(url, allow_private=allow_private)
            status, retry_after, excerpt = await _exchange(target, body, headers)
    except TimeoutError:
        return Answer(None, time.monotonic() - start, error=f"no answer within {timeout:g} s")
    except UnsafeUrl as exc:
        return Answer(None, time.monotonic() - start, error=f"refused: {exc}")
    except (OSError, ssl.SSLError, ValueError, asyncio.IncompleteReadError,
            asyncio.LimitOverrunError) as exc:
        detail = str(exc).strip()[:200]
        return Answer(None, time.monotonic() - start,
                      error=type(exc).__name__ + (f": {detail}" if detail else ""))
    error = None if 200 <= status < 300 else f"HTTP {status}"
    if 300 <= status < 400:
        error = f"HTTP {status}: redirects are not followed"
    return Answer(status, time.monotonic() - start, excerpt, error, retry_after)


async def _exchange(target: Target, body: bytes, headers: dict[str, str]
                    ) -> tuple[int, float | None, str]:
    https = target.scheme == "https"
    reader, writer = await asyncio.open_connection(
        target.address, target.port, ssl=_tls() if https else None,
        server_hostname=target.host if https else None, limit=_MAX_HEAD)
    try:
        default_port = 443 if https else 80
        host = f"[{target.host}]" if ":" in target.host else target.host
        if target.port != default_port:
            host += f":{target.port}"
        lines = [f"POST {target.path} HTTP/1.1", f"Host: {host}", f"User-Agent: {USER_AGENT}",
                 "Content-Type: application/json", f"Content-Length: {len(body)}",
                 "Connection: close", *(f"{k}: {v}" for k, v in headers.items())]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        await writer.drain()
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        status_line, *header_lines = head.split("\r\n")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
            raise ValueError("the answer is not HTTP")
        answer_headers: dict[str, str] = {}
        for line in header_lines:
            name, sep, value = line.partition(":")
            if sep:
                answer_headers[name.strip().lower()] = value.strip()
        excerpt = await _excerpt(reader, answer_headers)
        return int(parts[1]), retry_after(answer_headers.get("retry-after")), excerpt
    finally:
        writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):
            await writer.wait_closed()


async def _excerpt(reader: asyncio.StreamReader, headers: dict[str, str]) -> str:
    """The first EXCERPT_BYTES of the answer's body (chunked or not); the rest is not read."""
    data = b""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        while len(data) < EXCERPT_BYTES:
            size_line = await reader.readline()
            size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                break
            data += await reader.readexactly(size)
            await reader.readline()
    else:
        length = headers.get("content-length")
        want = min(int(length), EXCERPT_BYTES) if length and length.isdigit() else EXCERPT_BYTES
        while len(data) < want:
            chunk = await reader.read(want - len(data))
            if not chunk:
                break
            data += chunk
    return data[:EXCERPT_BYTES].decode("utf-8", errors="replace")


def retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delay-seconds or an HTTP date), None if absent."""
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())
