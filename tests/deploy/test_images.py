"""The image template (deploy/docker/Dockerfile), its build context, and deploy/images.py
(``nox -s images``). No Docker engine runs here: the build itself is not run; what an image
would contain is checked from the Dockerfile, the context the Docker SDK would send, and the
builder stage's install commands run outside Docker (test_builder_installs_only_the_service)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from docker.utils.build import exclude_paths

from tests.deploy.conftest import ROOT, load_script

DOCKERFILE = ROOT / "deploy" / "docker" / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def final_stage() -> list[tuple[str, str]]:
    steps = instructions()
    last_from = max(i for i, (word, _) in enumerate(steps) if word == "FROM")
    return steps[last_from:]


def test_multi_stage_on_an_exactly_pinned_slim_python() -> None:
    steps = instructions()
    froms = [rest for word, rest in steps if word == "FROM"]
    assert froms == ["${PYTHON_IMAGE} AS builder", "${PYTHON_IMAGE}"]
    (default,) = [rest for word, rest in steps if word == "ARG" and rest.startswith("PYTHON_")]
    assert re.fullmatch(
        r"PYTHON_IMAGE=python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?", default
    )


def test_the_final_stage_has_no_build_tools_or_caches() -> None:
    final = final_stage()
    copies = [rest for word, rest in final if word == "COPY"]
    assert copies == [
        "--from=builder /opt/venv /opt/venv",
        "deploy/docker/entrypoint.py /app/entrypoint.py",
        "deploy/kong/kong.yml /app/deploy/kong/kong.yml",
    ]
    runs = " ".join(rest for word, rest in final if word == "RUN")
    for tool in ("pip install", "apt-get", "uv ", "gcc"):
        assert tool not in runs


def test_runs_as_a_fixed_non_root_user_with_declared_writable_paths() -> None:
    final = dict(final_stage()[::-1])  # the last of each instruction
    assert final["USER"] == "10001:10001"
    assert final["VOLUME"] == '["/tmp", "/data"]'
    assert final["STOPSIGNAL"] == "SIGTERM"
    assert final["ENTRYPOINT"] == '["python", "/app/entrypoint.py"]'
    assert "--healthcheck" in final["HEALTHCHECK"]
    assert "PYTHONDONTWRITEBYTECODE=1" in final["ENV"]  # nothing written under a read-only root


def test_oci_labels() -> None:
    labels = " ".join(rest for word, rest in final_stage() if word == "LABEL")
    for key in ("title", "description", "version", "revision", "created", "source", "licenses"):
        assert f"org.opencontainers.image.{key}=" in labels


def test_no_secret_is_baked_in() -> None:
    for word, rest in instructions():
        if word in ("ENV", "ARG"):
            names = re.findall(r"([A-Z_][A-Z0-9_]*)=", rest) or [rest.split("=")[0]]
            for name in names:
                assert not re.search(r"SECRET|PASSWORD|PEPPER|TOKEN|PRIVATE|KEY", name), name
    context = build_context()
    assert not [p for p in context if p.endswith((".pem", ".env")) or "secrets/" in p]


def build_context() -> set[str]:
    """The files the Docker SDK sends as the build context (its own .dockerignore logic)."""
    patterns = (ROOT / ".dockerignore").read_text().splitlines()
    patterns = [p.strip() for p in patterns if p.strip() and not p.startswith("#")]
    included = exclude_paths(str(ROOT), patterns, dockerfile="deploy/docker/Dockerfile")
    return {p for p in included if (ROOT / p).is_file()}


def test_the_build_context_is_small() -> None:
    context = build_context()
    assert {"pyproject.toml", "uv.lock", "deploy/docker/entrypoint.py", "deploy/kong/kong.yml"} <= (
        context
    )
    assert "packages/order/src/svc_order/manifest.py" in context
    assert "packages/svc_core/src/svc_core/app.py" in context
    tops = {p.split("/", 1)[0] for p in context}
    # Docker always sends .dockerignore and the Dockerfile themselves.
    assert tops == {".dockerignore", "pyproject.toml", "uv.lock", "packages", "deploy"}, tops
    assert {p for p in context if p.startswith("deploy/")} == {
        "deploy/docker/Dockerfile",
        "deploy/docker/entrypoint.py",
        "deploy/kong/kong.yml",
    }
    assert not [p for p in context if "__pycache__" in p or "/." in p]


def test_builder_installs_only_the_service(tmp_path: Path) -> None:
    """The builder stage's export, run here: svc-order's image gets svc-core's dependencies,
    uvloop, and nothing of the other services, the tests or the dev tools."""

    def export(*args: str) -> set[str]:
        out = subprocess.run(
            ["uv", "export", "--frozen", "--no-dev", "--no-emit-workspace", "--no-hashes",
             "--no-header", "--no-annotate", "--quiet", *args],
            capture_output=True, text=True, check=True, cwd=ROOT,
        ).stdout  # fmt: skip
        return {line.split("==")[0] for line in out.splitlines() if "==" in line}

    order = export("--package", "svc-order")
    fast = export("--package", "svc-core", "--extra", "fast")
    names = order | fast
    assert {"aiohttp", "pymongo", "redis", "pyjwt", "marshmallow", "uvloop"} <= names
    for absent in ("pytest", "bcrypt", "mongomock-motor", "fakeredis", "ruff", "mypy", "docker"):
        assert absent not in names, absent
    assert "bcrypt" in export("--package", "svc-customer")  # a service's own dependency


# ------------------------------------------------------------------------------ images.py
class FakeImage:
    def __init__(self, tag: str) -> None:
        self.attrs = {"Size": 123_400_000}
        self.short_id = "sha256:abc"
        self.tags = [tag]

    def tag(self, repository: str, tag: str) -> bool:
        self.tags.append(f"{repository}:{tag}")
        return True


class FakeImages:
    def __init__(self, push_error: str = "") -> None:
        self.built: list[dict[str, Any]] = []
        self.pushed: list[str] = []
        self.push_error = push_error

    def build(self, **kwargs: Any) -> tuple[FakeImage, list[Any]]:
        self.built.append(kwargs)
        return FakeImage(kwargs["tag"]), []

    def push(self, repository: str, tag: str, stream: bool, decode: bool) -> list[dict[str, str]]:
        self.pushed.append(f"{repository}:{tag}")
        return [{"error": self.push_error}] if self.push_error else [{"status": "Pushed"}]


class FakeClient:
    def __init__(self, push_error: str = "") -> None:
        self.images = FakeImages(push_error)


def test_images_without_an_engine_says_so_and_succeeds(tmp_path: Path) -> None:
    script = ROOT / "deploy" / "images.py"
    env = {**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock"}
    result = subprocess.run(
        [sys.executable, str(script), "--only", "order"],
        capture_output=True, text=True, check=False, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "no Docker engine reachable" in result.stdout
    assert "images: skipped" in result.stdout


def test_images_builds_tags_and_prints_sizes(capsys: pytest.CaptureFixture[str]) -> None:
    images = load_script("deploy/images.py")
    client = FakeClient()
    assert images.main(["--only", "order,cache"], connect=lambda: client) == 0
    built = {b["tag"]: b for b in client.images.built}
    assert set(built) == {"svc-order:0.1.0", "svc-cache:0.1.0"}
    order = built["svc-order:0.1.0"]
    assert order["dockerfile"] == "deploy/docker/Dockerfile"
    assert order["path"] == str(ROOT)
    assert order["buildargs"]["SERVICE"] == "order"
    assert order["buildargs"]["PORT"] == "3003"
    assert re.fullmatch(r"[0-9a-f]{40}|unknown", order["buildargs"]["REVISION"])
    out = capsys.readouterr().out
    assert "svc-order:0.1.0: 123.4 MB" in out
    assert client.images.pushed == []


def test_images_push(capsys: pytest.CaptureFixture[str]) -> None:
    images = load_script("deploy/images.py")
    client = FakeClient()
    code = images.main(["--only", "payment", "--push", "reg.example/team/"], connect=lambda: client)
    assert code == 0
    assert client.images.pushed == ["reg.example/team/svc-payment:0.1.0"]
    assert "pushed reg.example/team/svc-payment:0.1.0" in capsys.readouterr().out


def test_images_push_failure_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    images = load_script("deploy/images.py")
    client = FakeClient(push_error="denied: requested access to the resource is denied")
    code = images.main(["--only", "payment", "--push", "reg.example"], connect=lambda: client)
    assert code == 1
    assert "denied" in capsys.readouterr().err


def test_images_skips_a_package_without_an_entry_point(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    images = load_script("deploy/images.py")
    for name, ready in (("order", True), ("chat", False)):
        src = tmp_path / "packages" / name / "src" / f"svc_{name}"
        src.mkdir(parents=True)
        (tmp_path / "packages" / name / "pyproject.toml").write_text('version = "2.0.0"\n')
        if ready:
            (src / "__main__.py").write_text("")
    monkeypatch.setattr(images, "ROOT", tmp_path)
    selected, skipped = images.selected(["order", "chat"])
    assert [(i.name, i.port, i.version) for i in selected] == [("order", 3003, "2.0.0")]
    assert skipped == ["svc-chat: skipped, packages/chat has no __main__.py yet"]
    with pytest.raises(SystemExit, match="unknown image"):
        images.selected(["nope"])
