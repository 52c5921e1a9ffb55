"""Running `creditgate serve` as a real process for tests that need real workers."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serve(database_url: str | None, *, workers: int = 2, env: dict[str, str] | None = None,
          port: int | None = None, log_path: Path | None = None, cwd: Path = ROOT,
          ready: bool = True) -> Iterator[str]:
    """Start `creditgate serve`, wait until /readyz answers, yield its base URL.

    `ready=False` waits for /livez instead, for a server that is expected never to be ready.

    `database_url=None` serves the default (the embedded PostgreSQL, its data in `cwd`), as
    `make run` does. The product's defaults, but for two periodic tasks that would change data
    under a test that did not ask for them (reservation expiry, the daily alert sweep); each is
    tested on its own, and a test can turn one back on through `env`.
    The server's stderr (its JSON log) goes to `log_path` if given, else to a temporary file.
    """
    port = port or free_port()
    full_env = {**os.environ, "CREDITGATE_EXPIRE_INTERVAL_SECONDS": "0",
                "CREDITGATE_MONITOR_INTERVAL_SECONDS": "0", "CREDITGATE_LOG_LEVEL": "WARNING",
                **(env or {})}
    full_env.pop("DATABASE_URL", None)
    if database_url is not None:
        full_env["DATABASE_URL"] = database_url
    full_env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    # stderr goes to a file: an unread pipe fills up and then blocks the workers' logging.
    with _log_file(log_path) as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--port", str(port), "--workers",
             str(workers)], cwd=cwd, env=full_env, start_new_session=True,
            stdout=subprocess.DEVNULL, stderr=log)
        base = f"http://127.0.0.1:{port}"
        try:
            _wait_ready(base, proc, log, path="/readyz" if ready else "/livez")
            yield base
        finally:
            stop(proc)


def stop(proc: subprocess.Popen[bytes], timeout: float = 15) -> None:
    """SIGTERM to the server's process group (uvicorn shuts down gracefully), SIGKILL if it
    has not ended within `timeout` seconds."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _log_file(path: Path | None) -> IO[bytes]:
    return path.open("w+b") if path is not None else tempfile.TemporaryFile()


def _wait_ready(base: str, proc: subprocess.Popen[bytes], log: IO[bytes],
                timeout: float = 30, path: str = "/readyz") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log.seek(0)
            err = log.read().decode(errors="replace")
            raise RuntimeError(f"server exited with {proc.returncode}: {err[-2000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base}{path}", timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError("server did not become ready")
