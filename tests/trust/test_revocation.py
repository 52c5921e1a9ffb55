"""Revoking an API key reaches every worker's key cache at once (app/auth/verifier.py).

A real `creditgate serve` with two workers and its per-process key cache on (shown to be
answering): a key both workers have cached is refused by both, over fresh connections, 2 s
after `creditgate keys revoke` returns, while another key keeps working. `creditgate keys
list` shows name, role, created and last use, and never a secret.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from app.auth.keys import hash_key
from tests.server import ROOT, serve

pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    not Path("/proc/net/tcp").exists(), reason="tells the workers apart through Linux's /proc")]

PROBLEM = "application/problem+json"
# Far beyond the test's length: an answer the cache gave up on by itself can then not pass
# for a revocation that reached it.
KEY_CACHE_SECONDS = "600"
REQUESTS = 40
# How many fresh connections may go by before both workers must have taken one; the kernel
# hands each accepted connection to whichever worker wins the accept, so a bound, not a count.
MAX_REQUESTS = 600
REVOCATION_SECONDS = 2.0


def cli(database_url: str, *args: str) -> str:
    env = {**os.environ, "DATABASE_URL": database_url}
    done = subprocess.run([sys.executable, "-m", "app.cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done.stdout


def create_key(database_url: str, name: str) -> str:
    return cli(database_url, "keys", "create", "--role", "controller", "--name", name
               ).rstrip("\n").split("\n")[-1]


def list_keys(database_url: str) -> tuple[str, list[str], dict[str, list[str]]]:
    """The output, its header's words and each key's row, split on whitespace (no field has
    a blank in it)."""
    out = cli(database_url, "keys", "list")
    lines = out.strip("\n").split("\n")
    rows = {words[0]: words for words in (line.split() for line in lines[1:])}
    return out, lines[0].split(), rows


# -- which worker took a connection ------------------------------------------------------------
# uvicorn's workers share one listening socket, and nothing in a response says which worker
# wrote it; the kernel does: the server side of an established connection is a socket that
# exactly one worker process holds.


def _tcp(port: int) -> list[tuple[int, int, str, str]]:
    """(local port, remote port, state, inode) of the IPv4 sockets on `port`."""
    found = []
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote = (int(f.rsplit(":", 1)[1], 16) for f in fields[1:3])
        if port in (local, remote):
            found.append((local, remote, fields[3], fields[9]))
    return found


def _links(pid: int) -> Iterator[str]:
    with contextlib.suppress(OSError):  # another user's process, or one that has exited
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):  # closed while we looked
                yield os.readlink(fd)


def _holders(inode: str, pids: list[int]) -> list[int]:
    wanted = f"socket:[{inode}]"
    return [pid for pid in pids if wanted in _links(pid)]


class Workers:
    """Tells which worker process serves each fresh connection to the server on `port`."""

    def __init__(self, port: int) -> None:
        self.port = port
        listening = [inode for local, _r, state, inode in _tcp(port)
                     if local == port and state == "0A"]
        assert len(listening) == 1, listening
        pids = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]
        # The supervisor and its workers all hold the listening socket; only workers accept.
        self.pids = _holders(listening[0], pids)
        assert len(self.pids) == 3, f"expected a supervisor and 2 workers, got {self.pids}"
        self._client = httpx.Client(timeout=30, limits=httpx.Limits(max_keepalive_connections=0))

    def close(self) -> None:
        self._client.close()

    def serving(self, client_port: int) -> int:
        inodes = [inode for local, remote, state, inode in _tcp(self.port)
                  if local == self.port and remote == client_port and state == "01"]
        assert len(inodes) == 1, (client_port, inodes)
        holders = _holders(inodes[0], self.pids)
        assert len(holders) == 1, (client_port, holders)
        return holders[0]

    def get(self, base: str, path: str, key: str) -> tuple[httpx.Response, int]:
        """One request over a new connection, and the pid of the worker that answered it."""
        # No keep-alive: every request opens its own connection, which lives until the end
        # of the `with`, long enough to find the worker holding its other end.
        with self._client.stream("GET", base + path,
                                 headers={"Authorization": f"Bearer {key}"}) as r:
            _host, client_port = r.extensions["network_stream"].get_extra_info("client_addr")
            pid = self.serving(client_port)
            r.read()
            return r, pid

    def spread(self, base: str, key: str) -> tuple[list[httpx.Response], Counter[int]]:
        """At least REQUESTS fresh-connection requests, until both workers have served one."""
        responses: list[httpx.Response] = []
        served: Counter[int] = Counter()
        while len(responses) < REQUESTS or len(served) < 2:
            assert len(responses) < MAX_REQUESTS, f"one worker took every connection: {served}"
            r, pid = self.get(base, "/v1/holds", key)
            responses.append(r)
            served[pid] += 1
        return responses, served


# The knob under test: a key cache long enough (600 s) that only the revocation signal can
# explain a refusal within seconds. Everything else at the product's defaults.
SERVER_ENV = {"CREDITGATE_KEY_CACHE_SECONDS": KEY_CACHE_SECONDS}


def _port(base: str) -> int:
    return int(base.rsplit(":", 1)[1])


def _revoke_behind_the_services_back(database_url: str, name: str) -> None:
    """Mark a key revoked without the NOTIFY that `keys revoke` sends."""
    async def run() -> None:
        conn = await asyncpg.connect(database_url)
        try:
            await conn.execute("UPDATE api_keys SET revoked_at = now() WHERE name = $1", name)
        finally:
            await conn.close()

    asyncio.run(run())


def test_a_revoked_key_is_refused_by_every_worker_within_2_s(database_url):
    keys = {name: create_key(database_url, name)
            for name in ("revoke-victim", "revoke-bystander", "revoke-probe")}
    with serve(database_url, workers=2, env=SERVER_ENV) as base, \
            contextlib.closing(Workers(_port(base))) as workers:
        for name, key in keys.items():
            responses, served = workers.spread(base, key)
            assert [r.status_code for r in responses] == [200] * len(responses), (
                name, [r.text for r in responses if r.status_code != 200][:3])
            print(f"\n{name}: {len(responses)} fresh connections, per worker {dict(served)}")

        # The cache is really answering: a revocation that no worker is told of goes unseen
        # by both, so the refusals below can only come from `keys revoke` reaching them.
        _revoke_behind_the_services_back(database_url, "revoke-probe")
        responses, served = workers.spread(base, keys["revoke-probe"])
        assert [r.status_code for r in responses] == [200] * len(responses), (
            "the key cache is off, so this test would prove nothing", dict(served))

        cli(database_url, "keys", "revoke", "revoke-victim")
        time.sleep(REVOCATION_SECONDS)
        responses, served = workers.spread(base, keys["revoke-victim"])
        late = [(r.status_code, r.text[:200]) for r in responses if r.status_code != 401]
        assert not late, (f"{len(late)} of {len(responses)} still served {REVOCATION_SECONDS} s "
                          f"after the revocation, e.g. {late[:3]}; per worker {dict(served)}")
        for r in responses:
            assert r.headers["content-type"] == PROBLEM, r.headers
            body = r.json()
            assert body["status"] == 401 and body["code"] == "unauthorized", body
        # Every cached answer went, not only the revoked key's: the probe's lapse shows now.
        responses, _served = workers.spread(base, keys["revoke-probe"])
        assert {r.status_code for r in responses} == {401}
        responses, served = workers.spread(base, keys["revoke-bystander"])
        assert [r.status_code for r in responses] == [200] * len(responses), (
            dict(served), [r.text for r in responses if r.status_code != 200][:3])


def test_keys_list_shows_name_role_created_and_last_use_never_a_secret(database_url):
    keys = {name: create_key(database_url, name) for name in ("list-used", "list-unused")}
    _out, header, rows = list_keys(database_url)
    assert header == ["NAME", "ROLE", "CREATED", "LAST", "USED", "REVOKED"], header
    assert [rows["list-used"][i] for i in (1, 3, 4)] == ["controller", "-", "-"], rows
    with serve(database_url, workers=2, env=SERVER_ENV) as base, \
            contextlib.closing(Workers(_port(base))) as workers:
        responses, _served = workers.spread(base, keys["list-used"])
        assert {r.status_code for r in responses} == {200}
    # Last use is written every 30 s (app/auth/verifier.FLUSH_SECONDS) and when a worker
    # shuts down; the server has just stopped, so both workers have written theirs.
    listed, header, rows = list_keys(database_url)
    assert header == ["NAME", "ROLE", "CREATED", "LAST", "USED", "REVOKED"], header
    for secret in keys.values():
        assert secret.removeprefix("cg_") not in listed and hash_key(secret) not in listed
    for name, used in (("list-used", True), ("list-unused", False)):
        row = rows[name]
        assert len(row) == 5 and row[1] == "controller", row
        _name, _role, created, last_used, revoked = row
        assert created != "-" and revoked == "-", row
        assert (last_used != "-") == used, row
        if used:
            assert created <= last_used, row
