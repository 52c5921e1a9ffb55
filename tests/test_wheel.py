"""The distribution: the wheel, installed into a fresh virtualenv, is all creditgate needs.

No checkout, no alembic.ini, no PYTHONPATH: `creditgate migrate` finds the migrations inside
the installed package, and the default database (no DATABASE_URL) lives in the working
directory, whichever kind it is.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
import tomllib
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory

from tests.server import free_port, stop

ROOT = Path(__file__).resolve().parent.parent
# What the Dockerfile's build stage copies to build the wheel (and nothing else).
SOURCES = ("pyproject.toml", "README.md", "app", "migrations")
# Installed as `creditgate<EXTRAS>`; pip warns and carries on while no such extra exists.
EXTRAS = "[embedded]"
MIGRATIONS_PACKAGE = "app.migrations"


def _repo_files(folder: str, pattern: str = "*.py", root: Path = ROOT) -> list[Path]:
    return sorted(p.relative_to(root / folder) for p in (root / folder).rglob(pattern)
                  if "__pycache__" not in p.parts)


def _in_wheel(root: Path) -> set[str]:
    """Where each source file of the repository (copied to `root`) must be in the wheel."""
    return ({f"app/{p}" for p in _repo_files("app", root=root)}
            | {f"app/migrations/{p}" for p in _repo_files("migrations", root=root)}
            | {f"app/migrations/{p}" for p in _repo_files("migrations", "*.mako", root)})


def _app_modules(root: Path) -> list[str]:
    names = []
    for p in _repo_files("app", root=root):
        parts = list(p.with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names.append(".".join(["app", *parts]))
    return names


def _clean_env(bin_dir: Path) -> dict[str, str]:
    """The environment of someone who installed the wheel: no DATABASE_URL, no checkout."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "REDIS_URL", "PYTHONPATH", "VIRTUAL_ENV",
                        "PROMETHEUS_MULTIPROC_DIR") and not k.startswith("CREDITGATE_")}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["CREDITGATE_EXPIRE_INTERVAL_SECONDS"] = "0"
    return env


def _run(args: list[str | Path], cwd: Path, env: dict[str, str], timeout: float = 600
         ) -> subprocess.CompletedProcess[str]:
    out = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True,
                         text=True, timeout=timeout)
    assert out.returncode == 0, f"{args}: {out.stdout[-2000:]}\n{out.stderr[-4000:]}"
    return out


# --- fast: the packaging configuration -------------------------------------------------------

def test_every_package_under_app_and_migrations_is_listed_in_pyproject():
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(setuptools["packages"])
    found = {".".join(["app", *p.parent.parts]) for p in _repo_files("app")}
    found |= {".".join([MIGRATIONS_PACKAGE, *p.parent.parts]) for p in _repo_files("migrations")}
    assert found == listed, "pyproject.toml [tool.setuptools] packages"
    assert setuptools["package-dir"] == {MIGRATIONS_PACKAGE: "migrations"}
    assert "script.py.mako" in setuptools["package-data"][MIGRATIONS_PACKAGE]


def test_the_migrations_are_found_as_package_resources():
    from app import schema

    found = schema.migrations_dir()
    assert found.resolve() == (ROOT / "migrations").resolve(), "one copy: the repository's"
    developers = ScriptDirectory.from_config(Config(str(ROOT / "alembic.ini")))
    assert schema.shipped().heads == tuple(developers.get_heads())


def _dockerfile_stages() -> list[list[tuple[str, str]]]:
    text = (ROOT / "Dockerfile").read_text()
    lines = [ln for ln in text.replace("\\\n", " ").splitlines()
             if ln.strip() and not ln.lstrip().startswith("#")]
    stages: list[list[tuple[str, str]]] = []
    for line in lines:
        keyword, _, rest = line.strip().partition(" ")
        if keyword.upper() == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((keyword.upper(), rest.strip()))
    return stages


def test_the_image_installs_the_wheel_and_nothing_else():
    build, runtime = _dockerfile_stages()[0], _dockerfile_stages()[-1]
    copied = {src for keyword, rest in build if keyword == "COPY"
              for src in rest.split()[:-1]}
    assert copied == set(SOURCES), "the build stage copies what the wheel is built from"
    assert [rest for keyword, rest in runtime if keyword == "COPY"] == [
        "--from=build /opt/venv /opt/venv"], "the runtime stage holds the virtualenv only"
    everything = " ".join(rest for stage in _dockerfile_stages() for _, rest in stage)
    assert "PYTHONPATH" not in everything and "alembic.ini" not in everything


# --- slow: build, install, run ----------------------------------------------------------------

@dataclass
class Installed:
    src: Path  # the copy of the repository's sources the wheel was built from
    wheel: Path
    bin: Path
    env: dict[str, str]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """The wheel built from the sources the image uses, installed into a new virtualenv."""
    base = tmp_path_factory.mktemp("wheel")
    src = base / "src"
    src.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=ignore)
        else:
            shutil.copy2(ROOT / name, src / name)
    venv = base / "venv"
    env = _clean_env(venv / "bin")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir",
          base / "dist", src], cwd=base, env=env)
    (wheel,) = (base / "dist").glob("creditgate-*.whl")
    _run([sys.executable, "-m", "venv", venv], cwd=base, env=env)
    _run([venv / "bin" / "python", "-m", "pip", "install", "--quiet", f"{wheel}{EXTRAS}"],
         cwd=base, env=env)
    return Installed(src=src, wheel=wheel, bin=venv / "bin", env=env)


@pytest.mark.slow
def test_the_wheel_holds_every_module_and_each_imports(installed, tmp_path):
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    assert _in_wheel(installed.src) - names == set(), "missing from the wheel"
    assert not {n for n in names if n.startswith(("migrations/", "tests/"))}
    modules = _app_modules(installed.src)
    script = ("import importlib, sys\n"
              f"for name in {modules!r}:\n"
              "    importlib.import_module(name)\n"
              "import app, app.schema\n"
              "print(app.__file__)\n"
              "print(app.schema.migrations_dir())\n")
    out = _run([installed.bin / "python", "-c", script], cwd=tmp_path, env=installed.env)
    package, migrations = (Path(line) for line in out.stdout.split())
    site = installed.bin.parent / "lib"
    assert package.is_relative_to(site) and migrations.is_relative_to(site), out.stdout
    assert (migrations / "env.py").is_file() and (migrations / "script.py.mako").is_file()


@contextlib.contextmanager
def _serving(installed: Installed, cwd: Path) -> Iterator[str]:
    port = free_port()
    log = (cwd / "serve.log").open("w+b")
    proc = subprocess.Popen([installed.bin / "creditgate", "serve", "--port", str(port)],
                            cwd=cwd, env=installed.env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=log)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90  # the embedded server's first start is slow
        while True:
            if proc.poll() is not None:
                log.seek(0)
                raise AssertionError(f"serve exited with {proc.returncode}: "
                                     f"{log.read().decode(errors='replace')[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            assert time.monotonic() < deadline, "serve never became ready"
            time.sleep(0.2)
        yield base
    finally:
        stop(proc, timeout=30)  # it stops the embedded PostgreSQL on its way out
        log.close()


@pytest.mark.slow
def test_the_installed_wheel_migrates_and_serves_a_check_on_the_default_database(installed,
                                                                                 tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    creditgate = installed.bin / "creditgate"
    migrated = _run([creditgate, "migrate"], cwd=work, env=installed.env)
    assert "Running upgrade" in migrated.stderr, migrated.stderr
    created = _run([creditgate, "keys", "create", "--role", "admin"], cwd=work,
                   env=installed.env)
    key = created.stdout.rstrip("\n").split("\n")[-1]
    assert key.startswith("cg_"), created.stdout
    assert any((work / p).exists() for p in ("creditgate.db", ".creditgate")), \
        "the default database lives in the working directory"
    with _serving(installed, work) as base:
        auth = {"Authorization": f"Bearer {key}"}
        put = httpx.put(f"{base}/v1/customers/WHEEL-1", headers=auth, timeout=10, json={
            "name": "Wheel Customer", "currency": "EUR", "credit_limit": "1000"})
        assert put.status_code in (200, 201), put.text
        r = httpx.post(f"{base}/v1/credit-checks", headers=auth, timeout=10, json={
            "order_id": "WHEEL-O1", "customer_id": "WHEEL-1", "amount": "100.00",
            "currency": "EUR"})
        assert r.status_code == 201, r.text
        assert r.json()["outcome"] == "approve"
