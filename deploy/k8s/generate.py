"""Write deploy/k8s/base/services/<name>.yaml (Deployment, Service, HPA, PDB) for every service,
base/otel-collector.yaml (the OpenTelemetry Collector, its config from deploy/observability)
and base/network-policies.yaml (who may talk to whom).

    python deploy/k8s/generate.py          # rewrite the files
    python deploy/k8s/generate.py --check  # exit 1 if a committed file differs (CI runs this)

The six per-service files differ only in name, port, resources and the secrets each one mounts,
so they are generated from the table below rather than copied by hand; the files are committed
(kustomize reads them, reviewers read them). Adding a service: a row in SERVICES (and in
deploy/images.py), then run this and add the file to base/kustomization.yaml.
Standard library only (the YAML is written by hand, one resource per document).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "base" / "services"


@dataclass(frozen=True)
class Service:
    name: str
    port: int
    cpu: str = "100m"
    memory: str = "128Mi"
    cpu_limit: str = "1"
    memory_limit: str = "256Mi"
    # env NAME_FILE -> key in the service's Secret `svc-<name>` (mounted at /run/secrets/<name>)
    secret_files: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    data_volume: bool = False
    # What it connects to: its data stores (keys of STORES) and the services it calls (their
    # manifests' calls={...}); tests/deploy checks both against the manifests.
    stores: tuple[str, ...] = ()
    calls: tuple[str, ...] = ()

    def store_env(self) -> dict[str, str]:
        """Its own MongoDB and Redis users: the address from the svc-stores ConfigMap (read
        into MONGO_URL / REDIS_ENDPOINT by valueFrom, not envFrom, so a service without the
        store gets none of it), the password from its Secret svc-<name>."""
        env: dict[str, str] = {}
        if "mongodb" in self.stores:
            env["MONGO_USERNAME"] = self.name
        if "redis" in self.stores:
            env["REDIS_URL"] = f"redis://{self.name}@$(REDIS_ENDPOINT)"
        return env

    def store_secret_files(self) -> dict[str, str]:
        files: dict[str, str] = {}
        if "mongodb" in self.stores:
            files["MONGO_PASSWORD_FILE"] = "mongo-password"  # noqa: S105 (a file name)
        if "redis" in self.stores:
            files["REDIS_PASSWORD_FILE"] = "redis-password"  # noqa: S105 (a file name)
        return files

    def all_secret_files(self) -> dict[str, str]:
        return {**self.store_secret_files(), **self.secret_files}

    def variables(self) -> set[str]:
        """Every variable its Deployment sets (tests/deploy: each one a setting it reads)."""
        from_stores = {"MONGO_URL"} if "mongodb" in self.stores else set()
        return {"PORT", *self.env, *self.store_env(), *self.all_secret_files(), *from_stores}


SERVICES = [
    Service("cache", 3001, stores=("redis",)),
    Service(
        "customer",
        3002,
        cpu="250m",
        cpu_limit="2",  # bcrypt (cost 12) is CPU-bound
        secret_files={
            "JWT_PRIVATE_KEY_FILE": "jwt-private.pem",
            "PASSWORD_PEPPER_FILE": "password-pepper",
        },
        stores=("mongodb", "redis"),
    ),
    Service("order", 3003, stores=("mongodb", "redis")),
    Service(
        "payment",
        3004,
        secret_files={"IDEMPOTENCY_SECRET_FILE": "idempotency-secret"},
        env={"ORDER_SERVICE_URL": "http://order:3003"},
        stores=("mongodb", "redis"),
        calls=("order",),
    ),
    Service(
        "chat", 3005, memory_limit="512Mi", stores=("mongodb", "redis")
    ),  # memory: one buffer per open WebSocket
    Service(
        "files",
        3006,
        memory_limit="512Mi",
        secret_files={
            "FILES_S3_ACCESS_KEY_ID_FILE": "aws-access-key-id",
            "FILES_S3_SECRET_ACCESS_KEY_FILE": "aws-secret-access-key",
            # encryption at rest: the master keys; FILES_ENCRYPTION_KEY_ID names the active one
            "FILES_ENCRYPTION_KEYS_FILE": "files-encryption-keys",
        },
        env={"FILES_STORAGE": "s3", "FILES_LOCAL_ROOT": "/data", "FILES_ENCRYPTION_KEY_ID": "k1"},
        data_volume=True,
        stores=("mongodb", "redis", "s3"),
    ),
    Service("web", 3000),
]


def q(value: object) -> str:
    """A YAML scalar: JSON strings are valid YAML and never ambiguous."""
    return json.dumps(value)


def manifest(s: Service) -> str:
    def labels(indent: int) -> str:
        pad = " " * indent
        return (
            f"{pad}app.kubernetes.io/name: {s.name}\n"
            f"{pad}app.kubernetes.io/part-of: svc\n"
            f"{pad}app.kubernetes.io/component: service\n"
        )

    env_lines = [f"            - name: PORT\n              value: {q(str(s.port))}"]
    for var, key in (("MONGO_URL", "mongodb"), ("REDIS_ENDPOINT", "redis")):
        if key in s.stores:
            env_lines.append(
                f"            - name: {var}\n              valueFrom:\n"
                f"                configMapKeyRef:\n                  name: svc-stores\n"
                f"                  key: {var}"
            )
    for name, value in {**s.store_env(), **s.env}.items():
        env_lines.append(f"            - name: {name}\n              value: {q(value)}")
    for name, key in s.all_secret_files().items():
        env_lines.append(
            f"            - name: {name}\n              value: {q(f'/run/secrets/{s.name}/{key}')}"
        )
    mounts = [
        "            - name: tmp\n              mountPath: /tmp",
        "            - name: jwt-public\n              mountPath: /run/secrets/jwt\n"
        "              readOnly: true",
    ]
    volumes = [
        "        - name: tmp\n          emptyDir:\n            sizeLimit: 64Mi",
        "        - name: jwt-public\n          secret:\n            secretName: svc-jwt-public",
    ]
    if s.all_secret_files():
        mounts.append(
            f"            - name: secrets\n              mountPath: /run/secrets/{s.name}\n"
            "              readOnly: true"
        )
        volumes.append(
            f"        - name: secrets\n          secret:\n            secretName: svc-{s.name}"
        )
    if s.data_volume:
        # FILES_STORAGE=local only: replace with a ReadWriteMany PVC to run more than one
        # replica on local storage (the default here is s3, which needs none).
        mounts.append("            - name: data\n              mountPath: /data")
        volumes.append("        - name: data\n          emptyDir: {}")
    probe = (
        "            httpGet:\n              path: {path}\n              port: http\n"
        "            periodSeconds: {period}\n            timeoutSeconds: 2\n"
        "            failureThreshold: {failures}\n"
    )
    return f"""\
# Generated by deploy/k8s/generate.py: edit the table there, then run it.
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {s.name}
  labels:
{labels(4)}spec:
  replicas: 2
  revisionHistoryLimit: 5
  selector:
    matchLabels:
      app.kubernetes.io/name: {s.name}
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxUnavailable: 0
      maxSurge: 1
  template:
    metadata:
      labels:
{labels(8)}\
      annotations:
        prometheus.io/scrape: "true"
        prometheus.io/port: {q(str(s.port))}
        prometheus.io/path: /metrics
    spec:
      automountServiceAccountToken: false
      terminationGracePeriodSeconds: 30
      securityContext:
        runAsNonRoot: true
        runAsUser: 10001
        runAsGroup: 10001
        fsGroup: 10001
        seccompProfile:
          type: RuntimeDefault
      topologySpreadConstraints:
        - maxSkew: 1
          topologyKey: kubernetes.io/hostname
          whenUnsatisfiable: ScheduleAnyway
          labelSelector:
            matchLabels:
              app.kubernetes.io/name: {s.name}
        - maxSkew: 1
          topologyKey: topology.kubernetes.io/zone
          whenUnsatisfiable: ScheduleAnyway
          labelSelector:
            matchLabels:
              app.kubernetes.io/name: {s.name}
      containers:
        - name: {s.name}
          image: svc-{s.name}:0.1.0
          imagePullPolicy: IfNotPresent
          ports:
            - name: http
              containerPort: {s.port}
              protocol: TCP
          envFrom:
            - configMapRef:
                name: svc-config
          env:
{chr(10).join(env_lines)}
          resources:
            requests:
              cpu: {s.cpu}
              memory: {s.memory}
            limits:
              cpu: {q(s.cpu_limit)}
              memory: {s.memory_limit}
          securityContext:
            runAsNonRoot: true
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities:
              drop: [ALL]
          startupProbe:
{probe.format(path="/health", period=2, failures=30)}\
          livenessProbe:
{probe.format(path="/health", period=10, failures=3)}\
          readinessProbe:
{probe.format(path="/ready", period=5, failures=2)}\
          lifecycle:
            preStop:
              # Let the endpoint removal reach Kong and kube-proxy before SIGTERM.
              exec:
                command: ["sleep", "5"]
          volumeMounts:
{chr(10).join(mounts)}
      volumes:
{chr(10).join(volumes)}
---
apiVersion: v1
kind: Service
metadata:
  name: {s.name}
  labels:
{labels(4)}spec:
  type: ClusterIP
  selector:
    app.kubernetes.io/name: {s.name}
  ports:
    - name: http
      port: {s.port}
      targetPort: http
      protocol: TCP
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {s.name}
  labels:
{labels(4)}spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {s.name}
  minReplicas: 2
  maxReplicas: 10
  metrics:
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: 70
  behavior:
    scaleDown:
      stabilizationWindowSeconds: 300
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {s.name}
  labels:
{labels(4)}spec:
  maxUnavailable: 1
  selector:
    matchLabels:
      app.kubernetes.io/name: {s.name}
"""


COLLECTOR_CONFIG = HERE.parent / "observability" / "otel-collector.yaml"
COLLECTOR_IMAGE = "otel/opentelemetry-collector:0.114.0"  # as in deploy/compose.yaml


def collector() -> str:
    """The OpenTelemetry Collector: its ConfigMap holds deploy/observability/otel-collector.yaml
    as it is (one config for compose and Kubernetes), a Deployment, a Service, an HPA, a PDB."""
    config = "".join(
        f"    {line}" if line.strip() else "\n"
        for line in COLLECTOR_CONFIG.read_text().splitlines(keepends=True)
    )
    labels = (
        "    app.kubernetes.io/name: otel-collector\n"
        "    app.kubernetes.io/part-of: svc\n"
        "    app.kubernetes.io/component: observability\n"
    )
    pod_labels = labels.replace("    ", "        ")
    select = "      app.kubernetes.io/name: otel-collector\n"
    return f"""\
# Generated by deploy/k8s/generate.py from deploy/observability/otel-collector.yaml: edit that
# file (the receivers, processors and the exporter to your tracing backend), then run it.
apiVersion: v1
kind: ConfigMap
metadata:
  name: otel-collector
  labels:
{labels}data:
  config.yaml: |
{config}---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: otel-collector
  labels:
{labels}spec:
  replicas: 1
  revisionHistoryLimit: 5
  selector:
    matchLabels:
{select}  template:
    metadata:
      labels:
{pod_labels}    spec:
      automountServiceAccountToken: false
      securityContext:
        runAsNonRoot: true
        runAsUser: 10001
        runAsGroup: 10001
        seccompProfile:
          type: RuntimeDefault
      topologySpreadConstraints:
        - maxSkew: 1
          topologyKey: kubernetes.io/hostname
          whenUnsatisfiable: ScheduleAnyway
          labelSelector:
            matchLabels:
              app.kubernetes.io/name: otel-collector
      containers:
        - name: otel-collector
          image: {COLLECTOR_IMAGE}
          imagePullPolicy: IfNotPresent
          args: ["--config=/conf/config.yaml"]
          ports:
            - name: otlp-grpc
              containerPort: 4317
              protocol: TCP
            - name: otlp-http
              containerPort: 4318
              protocol: TCP
            - name: health
              containerPort: 13133
              protocol: TCP
          livenessProbe:
            httpGet:
              path: /
              port: health
            periodSeconds: 10
            timeoutSeconds: 2
            failureThreshold: 3
          readinessProbe:
            httpGet:
              path: /
              port: health
            periodSeconds: 5
            timeoutSeconds: 2
            failureThreshold: 2
          resources:
            requests:
              cpu: 100m
              memory: 128Mi
            limits:
              cpu: "1"
              memory: 512Mi
          securityContext:
            readOnlyRootFilesystem: true
            allowPrivilegeEscalation: false
            runAsNonRoot: true
            capabilities:
              drop: [ALL]
          volumeMounts:
            - name: config
              mountPath: /conf
              readOnly: true
            - name: tmp
              mountPath: /tmp
      volumes:
        - name: config
          configMap:
            name: otel-collector
        - name: tmp
          emptyDir:
            sizeLimit: 64Mi
---
apiVersion: v1
kind: Service
metadata:
  name: otel-collector
  labels:
{labels}spec:
  type: ClusterIP
  selector:
{select}  ports:
    - name: otlp-grpc
      port: 4317
      targetPort: otlp-grpc
      protocol: TCP
    - name: otlp-http
      port: 4318
      targetPort: otlp-http
      protocol: TCP
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: otel-collector
  labels:
{labels}spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: otel-collector
  minReplicas: 1
  maxReplicas: 4
  metrics:
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: 70
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: otel-collector
  labels:
{labels}spec:
  maxUnavailable: 1
  selector:
    matchLabels:
{select}"""


@dataclass(frozen=True)
class Store:
    """Where a data store is, as a NetworkPolicy egress peer. The base names the in-cluster
    operators'/charts' namespaces (as overlays/dev's external.yaml does); an overlay whose
    stores are outside the cluster patches the policy's egress with ipBlocks (overlays/prod)."""

    port: int
    namespace: str | None = None  # a namespace of the cluster, or None: outside it (ipBlock)
    pod: str | None = None  # or pods of this namespace (a Deployment written here)


STORES = {
    "mongodb": Store(27017, namespace="mongodb"),
    "redis": Store(6379, namespace="redis"),
    # S3 (HTTPS) is outside the cluster: any public address, never a private range.
    "s3": Store(443),
    # The OpenTelemetry Collector (OTLP/HTTP, base/otel-collector.yaml, in this namespace):
    # Kong's opentelemetry plugin and every service (svc-config's OTEL_EXPORTER_OTLP_ENDPOINT).
    "otlp": Store(4318, pod="otel-collector"),
}
EVERY_SERVICE_STORES = ("otlp",)  # what svc-config points every service at
PRIVATE = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16")
KONG_PORTS = (8000, 8443)
KONG_STORES = ("redis", "otlp")  # rate-limit counters; traces


def peer_store(store: Store, indent: int) -> str:
    pad = " " * indent
    if store.pod is not None:
        return pods(store.pod, indent)
    if store.namespace is not None:
        return (
            f"{pad}- namespaceSelector:\n{pad}    matchLabels:\n"
            f"{pad}      kubernetes.io/metadata.name: {store.namespace}\n"
        )
    excepts = "".join(f"{pad}      - {cidr}\n" for cidr in PRIVATE)
    return f"{pad}- ipBlock:\n{pad}    cidr: 0.0.0.0/0\n{pad}    except:\n{excepts}"


def pods(name: str, indent: int) -> str:
    pad = " " * indent
    return (
        f"{pad}- podSelector:\n{pad}    matchLabels:\n{pad}      app.kubernetes.io/name: {name}\n"
    )


def policy(name: str, comment: str, selector: str, body: str) -> str:
    return (
        f"# {comment}\n"
        "apiVersion: networking.k8s.io/v1\n"
        "kind: NetworkPolicy\n"
        f"metadata:\n  name: {name}\n"
        f"spec:\n  podSelector:\n{selector}{body}"
    )


def select(*names: str) -> str:
    if len(names) == 1:
        return f"    matchLabels:\n      app.kubernetes.io/name: {names[0]}\n"
    values = ", ".join(names)
    return (
        "    matchExpressions:\n      - key: app.kubernetes.io/name\n"
        f"        operator: In\n        values: [{values}]\n"
    )


def tcp(*ports: int) -> str:
    return "".join(f"        - protocol: TCP\n          port: {p}\n" for p in ports)


def network_policies() -> str:
    """Default deny in both directions, then exactly the allowed paths, each its own policy:
    DNS for every pod; the world to Kong's proxy; Kong to each service; each named
    service-to-service call; each data store from the pods that use it."""
    ports = {s.name: s.port for s in SERVICES}
    docs = [
        policy(
            "default-deny",
            "Nothing in or out of any pod of the namespace unless a policy below allows it.",
            "    {}\n",
            "  policyTypes: [Ingress, Egress]\n",
        ),
        policy(
            "allow-dns",
            "Every pod may resolve names (the cluster DNS in kube-system).",
            "    {}\n",
            "  policyTypes: [Egress]\n  egress:\n    - to:\n"
            "        - namespaceSelector:\n            matchLabels:\n"
            "              kubernetes.io/metadata.name: kube-system\n"
            "          podSelector:\n            matchLabels:\n"
            "              k8s-app: kube-dns\n"
            "      ports:\n        - protocol: UDP\n          port: 53\n"
            "        - protocol: TCP\n          port: 53\n",
        ),
        policy(
            "kong-ingress",
            "The public entry point: anyone may reach Kong's proxy (HTTP and HTTPS).",
            select("kong"),
            f"  policyTypes: [Ingress]\n  ingress:\n    - ports:\n{tcp(*KONG_PORTS)}",
        ),
    ]
    services = list(SERVICES)
    egress = "".join(f"    - to:\n{pods(s.name, 8)}      ports:\n{tcp(s.port)}" for s in services)
    docs.append(
        policy(
            "kong-to-services",
            "Kong proxies to every service's port, and to nothing else of the namespace.",
            select("kong"),
            f"  policyTypes: [Egress]\n  egress:\n{egress}",
        )
    )
    for s in services:
        docs.append(
            policy(
                f"kong-to-{s.name}",
                f"Only Kong reaches {s.name}'s port (callers have their own policy).",
                select(s.name),
                f"  policyTypes: [Ingress]\n  ingress:\n    - from:\n{pods('kong', 8)}"
                f"      ports:\n{tcp(s.port)}",
            )
        )
    for s in services:
        for callee in s.calls:
            docs.append(
                policy(
                    f"{s.name}-to-{callee}",
                    f"{s.name} calls {callee} (its manifest's calls=...): egress from {s.name}.",
                    select(s.name),
                    f"  policyTypes: [Egress]\n  egress:\n    - to:\n{pods(callee, 8)}"
                    f"      ports:\n{tcp(ports[callee])}",
                )
            )
            docs.append(
                policy(
                    f"{s.name}-to-{callee}-ingress",
                    f"{s.name} calls {callee}: ingress to {callee}.",
                    select(callee),
                    f"  policyTypes: [Ingress]\n  ingress:\n    - from:\n{pods(s.name, 8)}"
                    f"      ports:\n{tcp(ports[callee])}",
                )
            )
    for store_name, store in STORES.items():
        users = [s.name for s in services if store_name in (*s.stores, *EVERY_SERVICE_STORES)]
        if store_name in KONG_STORES:
            users.append("kong")
        if not users:
            continue
        docs.append(
            policy(
                f"egress-{store_name}",
                f"{store_name} (port {store.port}), only from the pods that use it.",
                select(*users),
                f"  policyTypes: [Egress]\n  egress:\n    - to:\n{peer_store(store, 8)}"
                f"      ports:\n{tcp(store.port)}",
            )
        )
        if store.pod is not None:  # a store in this namespace: its ingress from the same pods
            sources = "".join(pods(user, 8) for user in users)
            docs.append(
                policy(
                    f"{store.pod}-ingress",
                    f"{store.pod} (port {store.port}): only from the pods that use it.",
                    select(store.pod),
                    f"  policyTypes: [Ingress]\n  ingress:\n    - from:\n{sources}"
                    f"      ports:\n{tcp(store.port)}",
                )
            )
    header = (
        "# Generated by deploy/k8s/generate.py from its SERVICES table (stores, calls): edit\n"
        "# it there, then run it. tests/deploy derives the same allow-list from the services'\n"
        "# manifests (uses=..., calls=...), so a new call or store without a policy fails CI.\n"
    )
    return header + "---\n".join(docs)


def files() -> dict[Path, str]:
    out = {OUT / f"{s.name}.yaml": manifest(s) for s in SERVICES}
    out[HERE / "base" / "otel-collector.yaml"] = collector()
    out[HERE / "base" / "network-policies.yaml"] = network_policies()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    args = parser.parse_args(argv)
    stale = [p for p, text in files().items() if not p.exists() or p.read_text() != text]
    if args.check:
        for path in stale:
            print(f"{path.relative_to(HERE.parent.parent)}: out of date; run {__file__}")
        return 1 if stale else 0
    OUT.mkdir(parents=True, exist_ok=True)
    for path, text in files().items():
        path.write_text(text)
    print(f"wrote {len(files())} files into {HERE / 'base'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
