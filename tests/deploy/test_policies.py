"""What the issue asks of compose and Kubernetes, checked on the files as Compose and kustomize
resolve them: hardening, healthchecks and ordering, exposure, persistence, secrets, scaling."""

from __future__ import annotations

import re
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from svc_customer.settings import CustomerSettings
from svc_payment.settings import PaymentSettings
from tests.deploy.conftest import COMPOSE_FILE, OVERLAYS, by_kind, compose_config, load_script
from tests.deploy.test_consistency import ALL, COMPOSE_INFRA

DATA_STORES = {"mongo", "mongo-init", "redis", "minio", "minio-bucket"}
PINNED = re.compile(r"^[\w./-]+:[\w.-]*\d[\w.-]*(@sha256:[0-9a-f]{64})?$")


def ours(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n: s for n, s in compose["services"].items() if n not in COMPOSE_INFRA}


# ---------------------------------------------------------------------------------- compose
def test_only_kongs_proxy_is_published(compose: dict[str, Any]) -> None:
    published = {n: s["ports"] for n, s in compose["services"].items() if s.get("ports")}
    assert set(published) == {"kong"}
    assert sorted((p["target"], p["published"]) for p in published["kong"]) == [
        (8000, "8000"),
        (8443, "8443"),
    ]


def test_data_stores_are_on_internal_networks_only(compose: dict[str, Any]) -> None:
    networks = compose["networks"]
    for name in DATA_STORES:
        attached = set(compose["services"][name]["networks"])
        assert attached, name
        for network in attached:
            assert networks[network].get("internal") is True, f"{name} on {network}"
    for name, block in ours(compose).items():
        for network in block["networks"]:
            assert networks[network].get("internal") is True, f"{name} on {network}"


def test_every_service_is_hardened_and_healthchecked(compose: dict[str, Any]) -> None:
    assert set(ours(compose)) == set(ALL)
    for name, block in ours(compose).items():
        assert block["read_only"] is True, name
        assert block["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in block["security_opt"], name
        assert block["tmpfs"] == ["/tmp"], name
        assert block["stop_signal"] == "SIGTERM", name
        assert block["healthcheck"]["test"][0] == "CMD", name
        assert block["environment"]["ENVIRONMENT"] == "production", name


#: long-running, yet with no healthcheck: the collector's image is distroless (no program to
#: probe with); so nothing may wait for it (Kubernetes probes its health_check extension)
UNPROBED = {"otel-collector"}


def test_dependencies_wait_for_health(compose: dict[str, Any]) -> None:
    one_shot = {"kong-config", "minio-bucket", "mongo-init"}
    for name, block in compose["services"].items():
        if name not in one_shot | UNPROBED:
            assert block.get("healthcheck", {}).get("test"), f"{name}: no healthcheck"
        assert not UNPROBED & set(block.get("depends_on", {})), f"{name} waits for {UNPROBED}"
        for dependency, how in block.get("depends_on", {}).items():
            want = "service_completed_successfully" if dependency in one_shot else "service_healthy"
            assert how["condition"] == want, f"{name} -> {dependency}"


def test_images_are_pinned(compose: dict[str, Any]) -> None:
    for name, block in compose["services"].items():
        assert PINNED.match(block["image"]), f"{name}: {block['image']} is not an exact tag"
        assert ":latest" not in block["image"]


def test_data_is_on_named_volumes_and_redis_keeps_an_aof(compose: dict[str, Any]) -> None:
    volumes = {
        (name, v["target"]): v["source"]
        for name, block in compose["services"].items()
        for v in block.get("volumes", [])
        if v["type"] == "volume"
    }
    assert volumes[("mongo", "/data/db")] == "mongo-data"
    assert volumes[("redis", "/data")] == "redis-data"
    assert volumes[("minio", "/data")] == "minio-data"
    assert volumes[("files", "/data")] == "files-data"
    redis = compose["services"]["redis"]["command"]
    assert redis[redis.index("--appendonly") + 1] == "yes"
    mongo = compose["services"]["mongo"]
    assert "--replSet rs0 " in " ".join(mongo["command"])
    assert "rs.initiate" in " ".join(mongo["healthcheck"]["test"])
    assert "replicaSet=rs0" in compose["services"]["order"]["environment"]["MONGO_URL"]


def test_kong_is_db_less_on_the_rendered_config(compose: dict[str, Any]) -> None:
    kong = compose["services"]["kong"]
    assert re.fullmatch(r"kong:3\.\d+\.\d+", kong["image"])
    env = kong["environment"]
    assert env["KONG_DATABASE"] == "off"
    assert env["KONG_ADMIN_LISTEN"] == "off"
    mounts = {v["target"]: v for v in kong["volumes"]}
    assert mounts["/kong-config"]["source"] == "kong-config"
    assert mounts["/kong-config"]["read_only"] is True
    assert env["KONG_DECLARATIVE_CONFIG"] == "/kong-config/kong.yml"
    job = compose["services"]["kong-config"]
    assert {v["target"]: v["source"] for v in job["volumes"]} == {"/data": "kong-config"}
    assert "--out /data/kong.yml" in " ".join(job["command"])
    assert "svc-gateway check /data/kong.yml" in " ".join(job["command"])
    assert env["KONG_SSL_CERT"] == "/run/secrets/kong-tls-cert"
    assert_no_server_tokens(env)


def assert_no_server_tokens(env: dict[str, Any]) -> None:
    """Kong's headers without server_tokens: no ``Server: kong/3.x`` or ``Via: kong/3.x``
    (api.md says nothing of versions; issue 11 item 10). Its default adds both."""
    headers = {h.strip().lower() for h in env["KONG_HEADERS"].split(",")}
    assert headers, "KONG_HEADERS empty means Kong's default, which names its version"
    assert not headers & {"server_tokens", "server", "via"}, headers


def test_secrets_are_files_generated_by_make_secrets(
    compose: dict[str, Any], tmp_path: Path
) -> None:
    """Every compose secret is a file under deploy/secrets/ that make_secrets.py writes, and
    every *_FILE variable points at a secret the service mounts."""
    load_script("deploy/make_secrets.py").generate(tmp_path)
    generated = {p.name for p in tmp_path.iterdir()}
    for name, spec in compose["secrets"].items():
        path = Path(spec["file"])
        assert path.parent == COMPOSE_FILE.parent / "secrets", name
        assert path.name in generated, f"{name}: make_secrets.py does not write {path.name}"
    for name, block in compose["services"].items():
        mounted = {s["target"] for s in block.get("secrets", [])}
        for var, value in block.get("environment", {}).items():
            if var.endswith("_FILE") and value.startswith("/run/secrets/"):
                assert value in mounted, f"{name}: {var}={value} is not mounted"


# ------------------------------------------------------------------------------ make_secrets
def test_make_secrets_writes_usable_secrets_once(tmp_path: Path) -> None:
    make = load_script("deploy/make_secrets.py")
    target = tmp_path / "secrets"
    written = make.generate(target)
    assert stat.S_IMODE(target.stat().st_mode) == 0o700
    for name in written:
        assert stat.S_IMODE((target / name).stat().st_mode) == 0o644, name
    private = serialization.load_pem_private_key((target / "jwt-private.pem").read_bytes(), None)
    public = serialization.load_pem_public_key((target / "jwt-public.pem").read_bytes())
    assert private.public_key().public_numbers() == public.public_numbers()  # type: ignore[union-attr]
    cert = x509.load_pem_x509_certificate((target / "kong-tls.crt").read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in names.get_values_for_type(x509.DNSName)
    # What production settings accept (no placeholder), as the services read them.
    customer = CustomerSettings.from_env(
        {
            "ENVIRONMENT": "production",
            "PASSWORD_PEPPER": (target / "password-pepper").read_text().strip(),
            "JWT_PRIVATE_KEY_FILE": str(target / "jwt-private.pem"),
            "MONGO_URL": "mongodb://mongo:27017",
            "REDIS_URL": "redis://redis:6379/0",
        }
    )
    assert customer.has_signing_key
    PaymentSettings.from_env(
        {
            "ENVIRONMENT": "production",
            "IDEMPOTENCY_SECRET": (target / "idempotency-secret").read_text().strip(),
        }
    )
    before = {p.name: p.read_bytes() for p in target.iterdir()}
    assert make.generate(target) == []  # a second run keeps everything
    assert {p.name: p.read_bytes() for p in target.iterdir()} == before
    assert set(make.generate(target, force=True)) == set(before)
    assert (target / "password-pepper").read_bytes() != before["password-pepper"]


def test_secrets_are_never_committed() -> None:
    ignore = (COMPOSE_FILE.parent / "secrets" / ".gitignore").read_text().split()
    assert "*" in ignore
    assert "!.gitignore" in ignore


# ------------------------------------------------------------------------------ kubernetes
def pods(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {n: d["spec"]["template"]["spec"] for n, d in by_kind(docs, "Deployment").items()}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_k8s_pods_are_restricted(overlay: str, overlays: dict[str, list[dict[str, Any]]]) -> None:
    for name, pod in pods(overlays[overlay]).items():
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert pod["automountServiceAccountToken"] is False, name
        keys = {c["topologyKey"] for c in pod["topologySpreadConstraints"]}
        assert "kubernetes.io/hostname" in keys, name
        for container in pod["containers"] + pod.get("initContainers", []):
            where = f"{name}/{container['name']}"
            sc = container["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True, where
            assert sc["allowPrivilegeEscalation"] is False, where
            assert sc["capabilities"] == {"drop": ["ALL"]}, where
            assert sc["runAsNonRoot"] is True, where
            assert set(container["resources"]) == {"requests", "limits"}, where
            assert PINNED.match(container["image"]), f"{where}: {container['image']}"
        mounts = {m["mountPath"] for c in pod["containers"] for m in c["volumeMounts"]}
        assert "/tmp" in mounts, f"{name}: a writable /tmp"
    namespaces = by_kind(overlays[overlay], "Namespace")
    (namespace,) = namespaces.values()
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_k8s_every_deployment_scales_and_survives_drains(
    overlay: str, overlays: dict[str, list[dict[str, Any]]]
) -> None:
    docs = overlays[overlay]
    hpas = by_kind(docs, "HorizontalPodAutoscaler")
    pdbs = by_kind(docs, "PodDisruptionBudget")
    for name in by_kind(docs, "Deployment"):
        assert hpas[name]["apiVersion"] == "autoscaling/v2", name
        assert hpas[name]["spec"]["minReplicas"] <= hpas[name]["spec"]["maxReplicas"], name
        assert pdbs[name]["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"] == name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_k8s_holds_no_secret_and_external_data_stores(
    overlay: str, overlays: dict[str, list[dict[str, Any]]]
) -> None:
    docs = overlays[overlay]
    assert not by_kind(docs, "Secret"), "secrets are created out of band (deploy/README.md)"
    assert not by_kind(docs, "StatefulSet"), "MongoDB/Redis come from their operators/charts"
    services = by_kind(docs, "Service")
    for name in ("mongo", "redis"):
        assert services[name]["spec"]["type"] == "ExternalName", name
    stores = by_kind(docs, "ConfigMap")["svc-stores"]["data"]
    assert stores["MONGO_URL"].startswith("mongodb://mongo:")
    assert stores["REDIS_ENDPOINT"].startswith("redis:")
    # read by valueFrom only: a ConfigMap every pod loads whole carries no store address
    config = by_kind(docs, "ConfigMap")["svc-config"]["data"]
    assert not {"MONGO_URL", "REDIS_URL", "REDIS_ENDPOINT"} & set(config)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_k8s_kong_is_db_less_on_the_rendered_template(
    overlay: str, overlays: dict[str, list[dict[str, Any]]]
) -> None:
    kong = pods(overlays[overlay])["kong"]
    (render,) = kong["initContainers"]
    assert render["image"].rsplit("/", 1)[-1].startswith("svc-gateway:")
    script = " ".join(render["args"])
    assert "svc-gateway render --template deploy/kong/kong.yml --out /kong-config/kong.yml" in (
        script
    )
    assert "svc-gateway check /kong-config/kong.yml" in script
    (container,) = kong["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["KONG_DATABASE"] == "off"
    assert env["KONG_DECLARATIVE_CONFIG"] == "/kong-config/kong.yml"
    assert_no_server_tokens(env)
    assert container["readinessProbe"]["httpGet"]["path"] == "/status/ready"
    render_env = by_kind(overlays[overlay], "ConfigMap")["kong-render-env"]["data"]
    assert render_env["RATE_LIMIT_REDIS_HOST"] == "redis"  # shared counters across replicas


def test_kong_rate_limits_are_shared_through_redis() -> None:
    template = yaml.safe_load((COMPOSE_FILE.parent / "kong" / "kong.yml").read_text())
    found = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("name") == "rate-limiting":
                found.append(node["config"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(template)
    assert found
    assert all(c["policy"] == "redis" for c in found)


def test_prod_exposes_kong_through_a_load_balancer(
    overlays: dict[str, list[dict[str, Any]]],
) -> None:
    proxy = by_kind(overlays["prod"], "Service")["kong-proxy"]["spec"]
    assert proxy["type"] == "LoadBalancer"
    assert proxy["externalTrafficPolicy"] == "Local"  # client IPs for the per-IP limits
    assert by_kind(overlays["dev"], "Service")["kong-proxy"]["spec"]["type"] == "ClusterIP"


def test_compose_resolves_with_no_variables_set() -> None:
    assert compose_config(env={})["name"] == "svc"
