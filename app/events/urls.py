"""The SSRF guard: where a webhook may point, checked on create and again at each delivery.

https only, and every address the host resolves to must be public; with
CREDITGATE_WEBHOOK_ALLOW_PRIVATE=true also http and private or loopback addresses (never
link-local, multicast, reserved or unspecified ones: cloud metadata lives at 169.254.169.254).
A delivery connects to the address that was checked (no second lookup to rebind).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

MAX_URL_LENGTH = 2000
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UnsafeUrl(ValueError):
    """The URL may not receive webhooks; the message says why."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # as written (for Host and TLS server name)
    port: int
    address: str  # the checked IP address to connect to
    path: str  # path and query


def check_syntax(url: str, *, allow_private: bool) -> SplitResult:
    """Scheme, host and port, without touching the network."""
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeUrl(f"must be at most {MAX_URL_LENGTH} characters")
    if any(c.isspace() or ord(c) < 32 for c in url):
        raise UnsafeUrl("must not contain whitespace or control characters")
    parts = urlsplit(url)
    allowed = ("https", "http") if allow_private else ("https",)
    if parts.scheme not in allowed:
        raise UnsafeUrl("must be an https URL" if not allow_private
                        else "must be an http or https URL")
    if parts.username is not None or parts.password is not None:
        raise UnsafeUrl("must not carry credentials")
    if not parts.hostname:
        raise UnsafeUrl("must name a host")
    try:
        _ = parts.port
    except ValueError:
        raise UnsafeUrl("has an invalid port") from None
    if parts.fragment:
        raise UnsafeUrl("must not have a #fragment")
    return parts


def refusal(address: IPAddress, *, allow_private: bool) -> str | None:
    """Why this address may not be called, or None."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_unspecified:
        return "unspecified"
    if address.is_multicast:
        return "multicast"
    if address.is_link_local:
        return "link-local"
    if address.is_loopback:
        return None if allow_private else "loopback"
    if address.is_reserved:
        return "reserved"
    if not address.is_global:
        return None if allow_private else "private"
    return None


async def resolve(url: str, *, allow_private: bool) -> Target:
    """Check the URL and resolve its host; every address must be allowed."""
    parts = check_syntax(url, allow_private=allow_private)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        addresses: list[IPAddress] = [ipaddress.ip_address(host)]
    except ValueError:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            raise UnsafeUrl(f"host {host} does not resolve") from None
        addresses = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
    if not addresses:
        raise UnsafeUrl(f"host {host} does not resolve")
    for address in addresses:
        why = refusal(address, allow_private=allow_private)
        if why is not None:
            raise UnsafeUrl(f"host {host} resolves to {address}, a {why} address")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(parts.scheme, host, port, str(addresses[0]), path)
