"""Sessions a newcomer can guess: lint, typecheck, tests, dev, bench.

Every session installs from the versions pinned in uv.lock (exported as pip constraints), so a
run here installs what CI installs. Each service's tests install only that service and svc_core,
so a dependency a service forgot to declare fails here rather than in production.

    nox -s lint typecheck tests        # what CI runs
    nox -s "tests(order)" -- -k paid   # one package, arguments forwarded to pytest
    nox -s dev                         # the whole stack on this machine
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import nox

ROOT = Path(__file__).parent
CONSTRAINTS = ROOT / ".nox" / "constraints.txt"

nox.options.default_venv_backend = "uv"
nox.options.reuse_venv = "yes"
nox.options.sessions = ["lint", "typecheck", "tests"]

SERVICES = ["customer", "order", "payment", "chat", "files", "cache"]
# package directory -> the test folders that exercise it
TEST_TARGETS = {
    "svc_core": ["tests/svc_core"],
    **{name: [f"tests/{name}"] for name in SERVICES},
    "stack": ["tests/gateway", "tests/e2e"],
}


def constraints() -> Path:
    """uv.lock as a pip constraints file (rewritten when the lock is newer)."""
    lock = ROOT / "uv.lock"
    if not CONSTRAINTS.exists() or CONSTRAINTS.stat().st_mtime < lock.stat().st_mtime:
        CONSTRAINTS.parent.mkdir(exist_ok=True)
        subprocess.run(
            [
                "uv",
                "export",
                "--frozen",
                "--all-packages",
                "--all-extras",
                "--all-groups",
                "--no-hashes",
                "--no-emit-workspace",
                "--no-header",
                "--no-annotate",
                "--quiet",
                "-o",
                str(CONSTRAINTS),
            ],
            check=True,
            cwd=ROOT,
        )
    return CONSTRAINTS


def install(session: nox.Session, *packages: str, extra: tuple[str, ...] = ()) -> None:
    """Install workspace packages (editable) and extra requirements, pinned by uv.lock."""
    args = ["-c", str(constraints())]
    for package in packages:
        path = ROOT / "packages" / package.split("[")[0]
        suffix = package[len(package.split("[")[0]) :]
        args += ["-e", f"{path}{suffix}"]
    session.install(*args, *extra)


def existing(paths: list[str]) -> list[str]:
    return [p for p in paths if (ROOT / p).exists()]


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check over the whole tree."""
    session.install("-c", str(constraints()), "ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy over every package (strict for svc_core)."""
    install(
        session,
        "svc_core[testing]",
        *SERVICES,
        "gateway",
        extra=("mypy", "types-PyYAML", "types-aiofiles"),
    )
    session.run("mypy", *[str(p) for p in sorted((ROOT / "packages").glob("*/src"))])


@nox.session
@nox.parametrize("target", list(TEST_TARGETS), ids=list(TEST_TARGETS))
def tests(session: nox.Session, target: str) -> None:
    """pytest for one package (or the gateway and end-to-end suites: target "stack")."""
    paths = existing(TEST_TARGETS[target])
    if not paths:
        session.skip(f"no tests for {target} yet")
    if target == "svc_core":
        install(session, "svc_core[testing]")
    elif target == "stack":
        install(session, "svc_core[testing]", *SERVICES, "gateway")
    else:
        install(session, "svc_core[testing]", target)
    session.run("pytest", *paths, *session.posargs, env={"PYTHONDONTWRITEBYTECODE": "1"})


@nox.session
def dev(session: nox.Session) -> None:
    """Start the whole stack: the local gateway on :8000 and the six services (Ctrl-C stops)."""
    install(session, "svc_core[embedded,fast]", *SERVICES, "gateway")
    session.run("svc-dev", *session.posargs, env={"PYTHONUNBUFFERED": "1"})


@nox.session
def bench(session: nox.Session) -> None:
    """Throughput of the chassis against bare aiohttp (see bench/README.md)."""
    install(session, "svc_core[embedded,fast]", extra=("fastapi", "uvicorn"))
    session.run("python", "bench/run.py", *session.posargs)


if os.environ.get("CI") == "true":
    nox.options.reuse_venv = "no"
    nox.options.error_on_missing_interpreters = True
