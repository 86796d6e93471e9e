"""One list of services, held together everywhere it is written down.

The services (name, port, the paths each one serves) come from their manifests
(``svc_core.discover()``), through ONE function, :func:`services_from_code` (the dev stack reads
the same manifests, so it has no list of its own to check). Every other place must agree with
it, and a failure names the file and what to add there:

- deploy/images.py ``SERVICES`` (the images ``nox -s images`` builds);
- deploy/kong/kong.yml: a Kong service on ``<name>-upstream``, the upstream with its
  ``${<NAME>_TARGETS:-127.0.0.1:<port>}`` target, and every route path served by that service;
- deploy/compose.yaml: the service, its image, PORT, healthcheck, Kong waiting for it, and the
  kong-config job's ``<NAME>_TARGETS``; the template rendered with that job's environment
  routes to the compose hosts;
- deploy/k8s (every overlay, rendered): Deployment, Service, HPA and PDB with the port and
  probes, and Kong's ``<NAME>_TARGETS``; the template rendered with them likewise; the prod
  overlay's ``images`` has every image deploy/images.py builds, from its registry.

A service package that registers no manifest yet is skipped with that reason; once it does, the
same tests hold it to every place above.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web

from svc_core import discover
from svc_core.testing import KeyPair
from svc_gateway.checks import problems
from svc_gateway.render import PLACEHOLDER, render_text
from tests.deploy.conftest import KONG_TEMPLATE, OVERLAYS, ROOT, by_kind, load_script

# Compose services that are not one of ours, and the Kubernetes Deployments likewise.
COMPOSE_INFRA = {
    "kong",
    "kong-config",
    "mongo",
    "mongo-init",
    "redis",
    "minio",
    "minio-bucket",
    "otel-collector",
}
K8S_INFRA = {"kong", "otel-collector"}
PROD_OVERLAY = ROOT / "deploy" / "k8s" / "overlays" / "prod" / "kustomization.yaml"
NOT_SERVICES = {"svc_core", "gateway", "devstack"}  # the library and the dev tooling


@dataclasses.dataclass(frozen=True)
class ServiceInfo:
    name: str
    port: int
    paths: tuple[str, ...]  # every path the service's app routes (canonical, with {params})


# --------------------------------------------------------------------------------------------
# The list of services from the code. THE one place to change when the services are described
# elsewhere (e.g. a service manifest / entry-point group): return the same mapping from it.
# --------------------------------------------------------------------------------------------
def service_packages() -> list[str]:
    """Every service package: packages/<name> whose pyproject declares ``svc-<name>``."""
    names = []
    for pyproject in sorted(ROOT.glob("packages/*/pyproject.toml")):
        name = pyproject.parent.name
        scripts = tomllib.loads(pyproject.read_text())["project"].get("scripts", {})
        if name not in NOT_SERVICES and f"svc-{name}" in scripts:
            names.append(name)
    return names


@cache
def services_from_code() -> dict[str, ServiceInfo | None]:
    """name -> what the service's manifest says (None: a service package that registers no
    manifest yet: it is being written)."""
    found: dict[str, ServiceInfo | None] = {}
    for name, manifest in discover().items():
        app: web.Application = manifest.create_app(manifest.load_settings({"ENVIRONMENT": "test"}))
        paths = tuple(sorted({r.canonical for r in app.router.resources()}))
        found[name] = ServiceInfo(name, manifest.port, paths)
    for name in service_packages():
        found.setdefault(name, None)
    return found


ALL = list(services_from_code())


def service(name: str) -> ServiceInfo:
    info = services_from_code()[name]
    if info is None:
        pytest.skip(f"packages/{name} registers no service manifest yet: checked once it does")
    assert info is not None
    return info


def ready() -> dict[str, ServiceInfo]:
    return {n: i for n, i in services_from_code().items() if i is not None}


def test_the_code_lists_the_six_services() -> None:
    six = {"cache", "chat", "customer", "files", "order", "payment"}
    assert six <= set(ALL), f"service packages missing: {sorted(six - set(ALL))}"
    ports = [i.port for i in ready().values()]
    assert len(ports) == len(set(ports)), f"two services share a port: {ready()}"


# ---------------------------------------------------------------------------------- images
def load_images_module() -> Any:
    return load_script("deploy/images.py")


def test_images_build_exactly_the_services() -> None:
    images = load_images_module()
    extra = set(images.SERVICES) - set(ALL)
    assert not extra, f"deploy/images.py SERVICES has {sorted(extra)}, which no package defines"
    missing_ = set(ALL) - set(images.SERVICES)
    assert not missing_, f"add {sorted(missing_)} to SERVICES in deploy/images.py"


@pytest.mark.parametrize("name", ALL)
def test_image_port(name: str) -> None:
    info = service(name)
    port = load_images_module().SERVICES.get(name)
    assert port == info.port, f"deploy/images.py SERVICES: set {name!r}: {info.port}"


def test_prod_pulls_every_image_from_the_registry() -> None:
    """Production runs what `nox -s images -- --push REGISTRY` pushed: every image
    deploy/images.py builds (SERVICES and TOOLS) has its row in the prod overlay's ``images``,
    all under one registry, tagged with its package's version (else the cluster looks for a
    local image by its bare name)."""
    images = load_images_module()
    built = {f"svc-{name}": name for name in [*images.SERVICES, *images.TOOLS]}
    rows = {row["name"]: row for row in yaml.safe_load(PROD_OVERLAY.read_text())["images"]}
    where = "deploy/k8s/overlays/prod/kustomization.yaml images"
    missing_ = sorted(set(built) - set(rows))
    assert not missing_, f"{where}: add {missing_} (name, newName: <registry>/<name>, newTag)"
    extra = sorted(set(rows) - set(built))
    assert not extra, f"{where}: {extra}, which deploy/images.py does not build"
    registries = {row["newName"].rpartition("/")[0] for row in rows.values()}
    assert len(registries) == 1, f"{where}: one registry for every image, not {registries}"
    for image, row in rows.items():
        assert row["newName"].rpartition("/")[2] == image, f"{where}: {image} newName"
        version = images.package_version(built[image])
        assert row["newTag"] == version, f"{where}: {image} newTag: {version}"


# -------------------------------------------------------------------------------- kong.yml
@cache
def kong_template() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(KONG_TEMPLATE.read_text())
    return data


def kong_paths(template: dict[str, Any], upstream: str) -> list[str]:
    return [
        path
        for svc in template["services"]
        if svc.get("host") == upstream
        for route in svc.get("routes", [])
        for path in route.get("paths", [])
    ]


def test_kong_routes_to_no_unknown_upstream() -> None:
    upstreams = {u["name"] for u in kong_template()["upstreams"]}
    expected = {f"{n}-upstream" for n in ALL}
    assert upstreams <= expected, (
        f"deploy/kong/kong.yml has upstreams {sorted(upstreams - expected)} for no package"
    )
    for svc in kong_template()["services"]:
        assert svc["host"] in upstreams, f"kong.yml service {svc['name']}: unknown upstream"


@pytest.mark.parametrize("name", ALL)
def test_kong_upstream_and_routes(name: str) -> None:
    info = service(name)
    upstream = f"{name}-upstream"
    upstreams = {u["name"]: u for u in kong_template()["upstreams"]}
    assert upstream in upstreams, (
        f"deploy/kong/kong.yml: add an upstream {upstream!r} with target "
        f"${{{name.upper()}_TARGETS:-127.0.0.1:{info.port}}} (deploy/kong/README.md)"
    )
    targets = [t["target"] for t in upstreams[upstream]["targets"]]
    want = f"${{{name.upper()}_TARGETS:-127.0.0.1:{info.port}}}"
    assert targets == [want], f"kong.yml {upstream}: targets should be [{want}], not {targets}"
    paths = kong_paths(kong_template(), upstream)
    assert paths, f"deploy/kong/kong.yml: add a service on host {upstream} with its routes"
    for path in paths:
        assert not path.startswith("~"), "regex routes: extend this test to match them"
        served = [p for p in info.paths if p == path or p.startswith(path.rstrip("/") + "/")]
        assert served, (
            f"kong.yml routes {path} to {name}, which serves none of it "
            f"(its paths: {', '.join(info.paths)})"
        )


# ----------------------------------------------------------------- rendering for a deployment
@cache
def public_key_file(tmp: Path) -> Path:
    path = tmp / "jwt-public.pem"
    path.write_text(KeyPair.generate().public_pem)
    return path


def render_for(env: dict[str, str], tmp_path: Path) -> dict[str, Any]:
    """The template rendered with a deployment's environment; the project's checks must pass."""
    environ = {**env, "JWT_PUBLIC_KEYS_FILE": str(public_key_file(tmp_path))}
    out = tmp_path / "kong.yml"
    out.write_text(render_text(KONG_TEMPLATE.read_text(), environ))
    assert problems(out) == []
    data: dict[str, Any] = yaml.safe_load(out.read_text())
    return data


def template_variables() -> set[str]:
    """The ${VAR}s the template's values use (its comments mention others as examples)."""
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, str):
            found.update(m.group(1) for m in PLACEHOLDER.finditer(node))
        elif isinstance(node, dict):
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(kong_template())
    return found


def check_rendered(where: str, env: dict[str, str], tmp_path: Path, host: str) -> None:
    """Every template variable without a key-derived value is set, and targets are ours."""
    unset = template_variables() - set(env) - {"JWT_KID", "JWT_PUBLIC_KEY"}
    assert not unset, f"{where}: set {sorted(unset)} for `svc-gateway render`"
    rendered = render_for(env, tmp_path)
    for upstream in rendered["upstreams"]:
        name = upstream["name"].removesuffix("-upstream")
        info = service(name) if name in ALL else None
        assert info is not None, f"kong.yml upstream {upstream['name']}: no such service"
        targets = [t["target"] for t in upstream["targets"]]
        assert targets == [f"{host.format(name=name)}:{info.port}"], (
            f"{where}: {name.upper()}_TARGETS renders to {targets}"
        )


# --------------------------------------------------------------------------------- compose
def test_compose_runs_no_unknown_service(compose: dict[str, Any]) -> None:
    extra = set(compose["services"]) - set(ALL) - COMPOSE_INFRA
    assert not extra, f"deploy/compose.yaml runs {sorted(extra)}, which no package defines"
    for name in set(ALL) - set(compose["services"]):
        pytest.fail(f"deploy/compose.yaml: add a service {name!r} (copy another service's block)")


@pytest.mark.parametrize("name", ALL)
def test_compose_service(name: str, compose: dict[str, Any]) -> None:
    info = service(name)
    where = f"deploy/compose.yaml services.{name}"
    block = compose["services"][name]
    assert re.fullmatch(rf"svc-{name}:[\w.-]+", block["image"]), f"{where}: image svc-{name}:<tag>"
    assert block["environment"]["PORT"] == str(info.port), f"{where}: PORT: '{info.port}'"
    assert block["healthcheck"]["test"][-1] == "--healthcheck", f"{where}: the image's healthcheck"
    kong_waits = compose["services"]["kong"]["depends_on"]
    assert kong_waits.get(name, {}).get("condition") == "service_healthy", (
        f"deploy/compose.yaml services.kong.depends_on: add {name}: {{condition: service_healthy}}"
    )
    env = compose["services"]["kong-config"]["environment"]
    var = f"{name.upper()}_TARGETS"
    assert env.get(var) == f"{name}:{info.port}", (
        f"deploy/compose.yaml services.kong-config.environment: {var}: {name}:{info.port}"
    )


def test_compose_kong_config_renders(compose: dict[str, Any], tmp_path: Path) -> None:
    env = dict(compose["services"]["kong-config"]["environment"])
    check_rendered("deploy/compose.yaml kong-config", env, tmp_path, "{name}")


def test_compose_payment_calls_the_order_service(compose: dict[str, Any]) -> None:
    order = service("order")
    url = compose["services"]["payment"]["environment"]["ORDER_SERVICE_URL"]
    assert url == f"http://order:{order.port}"


# ------------------------------------------------------------------------------ kubernetes
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_k8s_runs_no_unknown_service(
    overlay: str, overlays: dict[str, list[dict[str, Any]]]
) -> None:
    deployments = set(by_kind(overlays[overlay], "Deployment")) - K8S_INFRA
    extra = deployments - set(ALL)
    assert not extra, f"deploy/k8s ({overlay}) deploys {sorted(extra)}, which no package defines"
    for name in set(ALL) - deployments:
        pytest.fail(
            f"deploy/k8s: add {name!r} to SERVICES in deploy/k8s/generate.py, run it, and list "
            f"services/{name}.yaml in deploy/k8s/base/kustomization.yaml"
        )


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("name", ALL)
def test_k8s_service(name: str, overlay: str, overlays: dict[str, list[dict[str, Any]]]) -> None:
    info = service(name)
    docs = overlays[overlay]
    where = f"deploy/k8s ({overlay}) {name}"
    deployment = by_kind(docs, "Deployment")[name]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"].rsplit("/", 1)[-1].startswith(f"svc-{name}:"), where
    if overlay == "prod":  # from the registry (the overlay's images), never a local image
        assert "/" in container["image"], f"{where}: image {container['image']} has no registry"
    if overlay == "dev":  # the overlay's promise: one replica each
        assert deployment["spec"]["replicas"] == 1, (
            f"{where}: add `- name: {name}` / `count: 1` to replicas: in "
            "deploy/k8s/overlays/dev/kustomization.yaml"
        )
    assert [p["containerPort"] for p in container["ports"]] == [info.port], f"{where}: port"
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["PORT"] == str(info.port), f"{where}: env PORT"
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready", where
    assert container["livenessProbe"]["httpGet"]["path"] == "/health", where
    k8s_service = by_kind(docs, "Service").get(name)
    assert k8s_service is not None, f"{where}: no Service"
    assert [p["port"] for p in k8s_service["spec"]["ports"]] == [info.port], f"{where}: Service"
    hpa = by_kind(docs, "HorizontalPodAutoscaler").get(name)
    assert hpa is not None, f"{where}: no HorizontalPodAutoscaler"
    assert hpa["spec"]["scaleTargetRef"]["name"] == name, f"{where}: HPA target"
    pdb = by_kind(docs, "PodDisruptionBudget").get(name)
    assert pdb is not None, f"{where}: no PodDisruptionBudget"
    assert pdb["spec"]["selector"]["matchLabels"] == {"app.kubernetes.io/name": name}
    render_env = by_kind(docs, "ConfigMap")["kong-render-env"]["data"]
    var = f"{name.upper()}_TARGETS"
    assert render_env.get(var) == f"{name}:{info.port}", (
        f"deploy/k8s/base/kong.yaml kong-render-env: {var}: {name}:{info.port}"
    )


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_k8s_kong_config_renders(
    overlay: str, overlays: dict[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    env = dict(by_kind(overlays[overlay], "ConfigMap")["kong-render-env"]["data"])
    check_rendered(f"deploy/k8s ({overlay}) kong-render-env", env, tmp_path, "{name}")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_k8s_payment_calls_the_order_service(
    overlay: str, overlays: dict[str, list[dict[str, Any]]]
) -> None:
    order = service("order")
    (container,) = by_kind(overlays[overlay], "Deployment")["payment"]["spec"]["template"]["spec"][
        "containers"
    ]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["ORDER_SERVICE_URL"] == f"http://order:{order.port}"


def test_the_deploy_files_set_only_variables_the_services_read() -> None:
    """A misspelt setting is silently ignored by a service: every variable compose and the
    Kubernetes generator give a service must be one of its settings (``NAME_FILE`` is read by
    the image's entrypoint as ``NAME``)."""
    compose = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())["services"]
    generate = load_script("deploy/k8s/generate.py")
    rows = {row.name: row for row in generate.SERVICES}
    for name, manifest in discover().items():
        variables = set(manifest.settings.variables())
        given = {
            "deploy/compose.yaml": set(compose[name].get("environment") or {}),
            "deploy/k8s/generate.py": rows[name].variables(),
        }
        for where, names in given.items():
            for var in names:
                assert var.removesuffix("_FILE") in variables, (
                    f"{where}: {name} is given {var}, which is not one of its settings"
                )
