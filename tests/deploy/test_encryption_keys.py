"""Encryption at rest in the deploy files (issue 19): make_secrets.py writes the file service's
master keys in the form its settings read, and compose and Kubernetes give the file service that
file and name an active key it holds, so production stores ciphertext from the first upload."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from svc_files.settings import FilesSettings
from tests.deploy.conftest import OVERLAYS, by_kind, load_script


def test_make_secrets_writes_a_master_key_the_file_service_accepts(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"
    written = load_script("deploy/make_secrets.py").generate(secrets)
    assert "files-encryption-keys" in written
    keys = secrets / "files-encryption-keys"
    settings = FilesSettings.from_env(
        {
            "ENVIRONMENT": "development",
            "FILES_ENCRYPTION_KEYS_FILE": str(keys),
            "FILES_ENCRYPTION_KEY_ID": "k1",
        }
    )
    assert settings.encryption_key_id == "k1"
    # kept on a second run (a new key would leave every stored file unreadable)
    before = keys.read_text()
    assert "files-encryption-keys" not in load_script("deploy/make_secrets.py").generate(secrets)
    assert keys.read_text() == before


def test_compose_gives_the_file_service_its_master_keys_and_an_active_key(
    compose: dict[str, Any],
) -> None:
    files = compose["services"]["files"]
    env = files["environment"]
    assert env["FILES_ENCRYPTION_KEY_ID"] == "k1"
    target = env["FILES_ENCRYPTION_KEYS_FILE"]
    mounted = {s["target"]: s["source"] for s in files["secrets"]}
    assert mounted[target] == "files-encryption-keys"
    assert Path(compose["secrets"]["files-encryption-keys"]["file"]).name == "files-encryption-keys"
    others = {n for n, b in compose["services"].items() if n != "files"}
    for name in others:  # nobody else holds them
        sources = {s["source"] for s in compose["services"][name].get("secrets") or []}
        assert "files-encryption-keys" not in sources, name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kubernetes_gives_the_file_service_its_master_keys_and_an_active_key(
    overlay: str, overlays: dict[str, list[dict[str, Any]]]
) -> None:
    deployment = by_kind(overlays[overlay], "Deployment")["files"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["FILES_ENCRYPTION_KEY_ID"] == "k1"
    path = Path(env["FILES_ENCRYPTION_KEYS_FILE"])
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    secret = volumes[mounts[str(path.parent)]]["secret"]
    assert secret["secretName"] == "svc-files"
    assert path.name == "files-encryption-keys"
