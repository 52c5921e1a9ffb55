"""Schemathesis against the app's own OpenAPI document, every check, through a real server."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from app.demo import load_demo
from tests.server import serve

ROOT = Path(__file__).resolve().parent.parent
MAX_EXAMPLES = int(os.environ.get("CREDITGATE_FUZZ_EXAMPLES", "30"))
SEED = os.environ.get("CREDITGATE_FUZZ_SEED", "20261123")

pytestmark = pytest.mark.slow


async def test_schemathesis_finds_nothing(database_url, keys, clean_db, tmp_path):
    await load_demo(clean_db)  # a few real customers, so not every operation is a 404
    st = shutil.which("st", path=str(Path(sys.executable).parent))
    assert st, "schemathesis is a dev dependency: pip install -e '.[dev]'"
    with serve(database_url, workers=1) as base:  # the product's defaults
        run = await asyncio.to_thread(
            subprocess.run,
            [st, "--config-file", str(ROOT / "tests" / "schemathesis.toml"), "run",
             f"{base}/openapi.json", "--checks", "all", "--max-examples", str(MAX_EXAMPLES),
             # One worker: with two, Hypothesis can parse lambda sources in two threads at
             # once, which CPython 3.11.7's ast.parse fails with "AST constructor recursion
             # depth mismatch" (a runtime error of the tool, not of the API).
             "--seed", SEED, "--workers", "1",
             "-H", f"Authorization: Bearer {keys['admin']}"],
            capture_output=True, text=True, timeout=900, cwd=tmp_path,
            env={**os.environ, "SCHEMATHESIS_HOOKS": ""})
    summary = re.search(r"(\d+) generated, (\d+) passed", run.stdout)
    print("\nschemathesis:", summary.group(0) if summary else run.stdout[-400:])
    assert run.returncode == 0, run.stdout[-6000:]
    assert summary is not None and int(summary.group(1)) > 500
