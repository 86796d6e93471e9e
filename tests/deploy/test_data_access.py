"""Database access control and network isolation (issue 19), held to the services' manifests:
each service that declares ``Mongo(...)`` gets its own MongoDB user with readWrite on its own
database only (deploy/mongo/create-users.js, compose's mongo-init job, Kubernetes Secrets), and
the Kubernetes NetworkPolicies allow exactly the paths the manifests imply (Kong to each
service, each ``calls={...}`` pair, each service to its data stores, DNS), nothing more."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from svc_core import Mongo, Redis, discover
from tests.deploy.conftest import DEPLOY, OVERLAYS, by_kind, in_ci, load_script
from tests.deploy.test_policies import ours

SCRIPT = DEPLOY / "mongo" / "create-users.js"
MANIFESTS = discover()
MONGO_SERVICES = {name for name, m in MANIFESTS.items() if m.uses_resource(Mongo)}


def mongo_users() -> list[dict[str, Any]]:
    users: list[dict[str, Any]] = load_script("deploy/make_secrets.py").mongo_users()
    return users


# ------------------------------------------------------------------------- MongoDB users
def test_the_init_script_has_one_user_per_mongo_service_with_its_own_database_only() -> None:
    users = mongo_users()
    names = [u["user"] for u in users]
    assert len(names) == len(set(names)), "a user twice in create-users.js"
    assert set(names) == MONGO_SERVICES, (
        f"deploy/mongo/create-users.js USERS: {sorted(names)}; the services that declare "
        f"Mongo(...) are {sorted(MONGO_SERVICES)}"
    )
    for user in users:
        name = user["user"]
        assert user["db"] == name, f"{name}: its user lives in its own database"
        assert user["roles"] == [{"role": "readWrite", "db": name}], (
            f"{name}: readWrite on {name} and nothing else, got {user['roles']}"
        )


HARNESS = r"""
const vm = require("vm");
const fs = require("fs");
const [script, envJson, runs] = process.argv.slice(2);
const calls = [];
const existing = new Set();
function database(name) {
  return {
    auth: (user, pwd) => { calls.push(["auth", name, user, pwd]); return {ok: 1}; },
    getUser: (user) => (existing.has(`${name}/${user}`) ? {user: user} : null),
    createUser: (doc) => {
      existing.add(`${name}/${doc.user}`);
      calls.push(["createUser", name, doc]);
    },
    updateUser: (user, doc) => { calls.push(["updateUser", name, user, doc]); },
  };
}
for (let i = 0; i < Number(runs); i++) {
  vm.runInNewContext(fs.readFileSync(script, "utf8"), {
    require: require,
    process: {env: JSON.parse(envJson)},
    db: {getSiblingDB: database},
    print: (line) => calls.push(["print", line]),
  });
}
console.log(JSON.stringify(calls));
"""


def test_the_init_script_creates_then_resets_each_user_from_its_password_file(
    tmp_path: Path,
) -> None:
    """The script itself, run twice by node against a recording stand-in for mongosh's ``db``:
    it logs in as the administrator from the password file, creates every user from its own
    password file, resets them on the second run, and prints no password."""
    node = shutil.which("node")
    if node is None:
        if in_ci():
            pytest.fail("node is not installed (.ci/run installs nodejs)")
        pytest.skip("node is not installed")
    secrets = tmp_path / "secrets"
    load_script("deploy/make_secrets.py").generate(secrets)
    harness = tmp_path / "harness.js"
    harness.write_text(HARNESS)
    env = {
        "MONGO_ADMIN_PASSWORD_FILE": str(secrets / "mongo-root-password"),
        "MONGO_PASSWORDS_DIR": str(secrets),
    }
    result = subprocess.run(
        [node, str(harness), str(SCRIPT), json.dumps(env), "2"],
        capture_output=True,
        text=True,
        check=True,
    )
    calls = json.loads(result.stdout)
    root = (secrets / "mongo-root-password").read_text().strip()
    assert [c for c in calls if c[0] == "auth"] == [["auth", "admin", "root", root]] * 2
    passwords = {
        u["user"]: (secrets / f"mongo-password-{u['user']}").read_text().strip()
        for u in mongo_users()
    }
    created = {c[2]["user"]: c for c in calls if c[0] == "createUser"}
    assert set(created) == MONGO_SERVICES
    for name, (_, database, doc) in created.items():
        assert database == name
        assert doc == {
            "user": name,
            "pwd": passwords[name],
            "roles": [{"role": "readWrite", "db": name}],
        }
    updated = {c[2]: c[3] for c in calls if c[0] == "updateUser"}
    assert set(updated) == MONGO_SERVICES  # the second run resets, never duplicates
    printed = " ".join(c[1] for c in calls if c[0] == "print")
    for secret in [root, *passwords.values()]:
        assert secret not in printed


def test_compose_gives_each_mongo_service_its_own_user_and_runs_mongo_with_auth(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    for name, block in ours(compose).items():
        env = block["environment"]
        if name not in MONGO_SERVICES:
            assert not any(k.startswith("MONGO_") for k in env), f"{name} uses no MongoDB"
            assert "mongo-init" not in block.get("depends_on", {}), name
            continue
        url = urlsplit(env["MONGO_URL"])
        assert url.username is None, f"{name}: credentials in the URL"
        assert url.password is None, f"{name}: credentials in the URL"
        assert env["MONGO_USERNAME"] == name
        assert env["MONGO_PASSWORD_FILE"] == "/run/secrets/mongo-password"
        mounted = {s["target"]: s["source"] for s in block["secrets"]}
        assert mounted["/run/secrets/mongo-password"] == f"mongo-password-{name}", name
        assert not {s for s in mounted.values() if s.startswith("mongo-")} - {
            f"mongo-password-{name}"
        }, f"{name}: another MongoDB secret mounted"
        assert block["depends_on"]["mongo-init"]["condition"] == "service_completed_successfully"
    mongo = services["mongo"]
    command = " ".join(mongo["command"])
    assert "--keyFile /data/configdb/keyfile" in command
    assert "install -m 0400 -o mongodb -g mongodb /run/secrets/mongo-keyfile" in command
    assert mongo["environment"]["MONGO_INITDB_ROOT_PASSWORD_FILE"] == (
        "/run/secrets/mongo-root-password"
    )
    init = services["mongo-init"]
    assert init["depends_on"]["mongo"]["condition"] == "service_healthy"
    assert "/etc/mongo-init/create-users.js" in init["entrypoint"]
    (config,) = init["configs"]
    assert Path(compose["configs"][config["source"]]["file"]) == SCRIPT
    mounted = {s["source"] for s in init["secrets"]}
    assert mounted == {"mongo-root-password"} | {f"mongo-password-{n}" for n in MONGO_SERVICES}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_k8s_gives_each_store_user_its_own_secret_and_nothing_to_the_others(
    overlay: str, overlays: dict[str, list[dict[str, Any]]]
) -> None:
    docs = overlays[overlay]
    for name, deployment in by_kind(docs, "Deployment").items():
        if name not in MANIFESTS:  # kong, the collector: no store user of a service
            continue
        pod = deployment["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        env = {e["name"]: e for e in container["env"]}
        secrets = {v["name"]: v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}
        uses_redis = MANIFESTS[name].uses_resource(Redis)
        if name in MONGO_SERVICES:
            assert env["MONGO_URL"]["valueFrom"]["configMapKeyRef"]["name"] == "svc-stores"
            assert env["MONGO_USERNAME"]["value"] == name
            assert env["MONGO_PASSWORD_FILE"]["value"] == f"/run/secrets/{name}/mongo-password"
        else:
            assert not {k for k in env if k.startswith("MONGO_")}, f"{name} uses no MongoDB"
        if uses_redis:
            assert env["REDIS_URL"]["value"] == f"redis://{name}@$(REDIS_ENDPOINT)"
            assert env["REDIS_PASSWORD_FILE"]["value"] == f"/run/secrets/{name}/redis-password"
        else:
            assert not {k for k in env if k.startswith("REDIS_")}, f"{name} uses no Redis"
        if name in MONGO_SERVICES or uses_redis:
            assert secrets["secrets"] == f"svc-{name}"


# ------------------------------------------------------------------------- NetworkPolicies
DNS = ("ns:kube-system/kube-dns", "UDP", 53)
DNS_TCP = ("ns:kube-system/kube-dns", "TCP", 53)
ANY = "any"


COLLECTOR = "otel-collector"  # base/otel-collector.yaml: where "otlp" is


def selects(selector: dict[str, Any], pod: str) -> bool:
    if not selector:
        return True
    if "matchLabels" in selector:
        return bool(selector["matchLabels"].get("app.kubernetes.io/name") == pod)
    (expression,) = selector["matchExpressions"]
    assert expression["key"] == "app.kubernetes.io/name"
    assert expression["operator"] == "In"
    return pod in expression["values"]


def peer_key(peer: dict[str, Any] | None) -> str:
    if peer is None:
        return ANY
    if "ipBlock" in peer:
        block = peer["ipBlock"]
        return f"ip:{block['cidr']}!{','.join(block.get('except', []))}"
    namespace = peer.get("namespaceSelector")
    pods = peer.get("podSelector")
    if namespace is None:
        return f"pod:{pods['matchLabels']['app.kubernetes.io/name']}"
    where = f"ns:{namespace['matchLabels']['kubernetes.io/metadata.name']}"
    if pods is not None:
        where += f"/{pods['matchLabels']['k8s-app']}"
    return where


def paths(docs: list[dict[str, Any]]) -> dict[tuple[str, str], set[tuple[str, str, int]]]:
    """(pod, direction) -> the (peer, protocol, port) the policies allow."""
    pods = set(by_kind(docs, "Deployment"))
    out: dict[tuple[str, str], set[tuple[str, str, int]]] = {
        (p, d): set() for p in pods for d in ("ingress", "egress")
    }
    for name, doc in by_kind(docs, "NetworkPolicy").items():
        spec = doc["spec"]
        for pod in pods:
            if not selects(spec["podSelector"], pod):
                continue
            for direction, peers_key in (("ingress", "from"), ("egress", "to")):
                for rule in spec.get(direction, []):
                    ports = rule.get("ports")
                    assert ports, f"{name}: a rule without ports allows every port"
                    for peer in rule.get(peers_key) or [None]:
                        for port in ports:
                            out[(pod, direction)].add(
                                (peer_key(peer), port["protocol"], port["port"])
                            )
    return out


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_allow_exactly_what_the_manifests_imply(
    overlay: str, overlays: dict[str, list[dict[str, Any]]]
) -> None:
    docs = overlays[overlay]
    policies = by_kind(docs, "NetworkPolicy")
    deny = policies["default-deny"]["spec"]
    assert deny["podSelector"] == {}
    assert sorted(deny["policyTypes"]) == ["Egress", "Ingress"]
    assert "ingress" not in deny
    assert "egress" not in deny
    ports = {name: m.port for name, m in MANIFESTS.items()}
    deployments = by_kind(docs, "Deployment")
    config = by_kind(docs, "ConfigMap")
    s3 = urlsplit(config["svc-config"]["data"]["FILES_S3_ENDPOINT_URL"])
    s3_port = s3.port or {"https": 443, "http": 80}[s3.scheme]
    store_ports = {"mongodb": 27017, "redis": 6379, "s3": s3_port, "otlp": 4318}
    peers: dict[str, str] = {}
    for store, port in store_ports.items():
        (rule,) = policies[f"egress-{store}"]["spec"]["egress"]
        (peer,) = rule["to"]
        peers[store] = peer_key(peer)
        assert peers[store] not in (ANY, "ip:0.0.0.0/0!"), f"egress-{store}: unrestricted"
        assert [p["port"] for p in rule["ports"]] == [port], f"egress-{store}"

    def stores(name: str) -> set[str]:
        if name == "kong":
            found = {"redis"}  # rate-limit counters (policy: redis)
            if config["kong-render-env"]["data"].get("OTEL_TRACES_ENDPOINT"):
                found.add("otlp")
            return found
        manifest = MANIFESTS[name]
        found = {"mongodb"} if manifest.uses_resource(Mongo) else set()
        if manifest.uses_resource(Redis):
            found.add("redis")
        (container,) = deployments[name]["spec"]["template"]["spec"]["containers"]
        env = {e["name"]: e.get("value") for e in container["env"]}
        if env.get("FILES_STORAGE") == "s3":
            found.add("s3")
        if config["svc-config"]["data"].get("OTEL_EXPORTER_OTLP_ENDPOINT"):
            found.add("otlp")
        return found

    expected: dict[tuple[str, str], set[tuple[str, str, int]]] = {}
    for name in deployments:
        if name == COLLECTOR:  # a store of this namespace: reached by exactly its users
            users = [n for n in deployments if n != COLLECTOR and "otlp" in stores(n)]
            expected[(name, "ingress")] = {(f"pod:{u}", "TCP", store_ports["otlp"]) for u in users}
            expected[(name, "egress")] = {
                DNS,
                DNS_TCP,
            }  # the default exporter (debug) sends nothing
            continue
        egress = {DNS, DNS_TCP} | {(peers[s], "TCP", store_ports[s]) for s in stores(name)}
        if name == "kong":
            ingress = {(ANY, "TCP", 8000), (ANY, "TCP", 8443)}
            egress |= {(f"pod:{s}", "TCP", ports[s]) for s in MANIFESTS}
        else:
            callers = [c for c, m in MANIFESTS.items() if name in m.calls]
            ingress = {(f"pod:{c}", "TCP", ports[name]) for c in ["kong", *callers]}
            egress |= {(f"pod:{callee}", "TCP", ports[callee]) for callee in MANIFESTS[name].calls}
        expected[(name, "ingress")] = ingress
        expected[(name, "egress")] = egress
    actual = paths(docs)
    for key in sorted(expected):
        assert actual[key] == expected[key], (
            f"deploy/k8s ({overlay}) {key[0]} {key[1]}: "
            f"missing {sorted(expected[key] - actual[key])}, "
            f"extra {sorted(actual[key] - expected[key])}"
            " (edit SERVICES in deploy/k8s/generate.py and run it)"
        )


def test_every_service_to_service_call_has_its_named_policies(
    overlays: dict[str, list[dict[str, Any]]],
) -> None:
    names = set(by_kind(overlays["prod"], "NetworkPolicy"))
    calls = [(caller, callee) for caller, m in MANIFESTS.items() for callee in m.calls]
    assert calls, "the manifests declare no call (payment calls order)"
    for caller, callee in calls:
        assert f"{caller}-to-{callee}" in names
        assert f"{caller}-to-{callee}-ingress" in names
