"""``svc-core new NAME``: a new service package, its tests, and the service added everywhere it
must appear (the root pyproject, kong.yml, compose, Kubernetes and its prod overlay's images, the
image list, the Redis and MongoDB users, Prometheus' scrape config and its Grafana dashboard,
uv.lock).

Existing files are edited by inserting text at anchors (the line after the last service of a
list, the line before a section), never by parsing and re-serialising them, so their formatting
and comments stay as they are: ``git diff`` shows added lines, and on a one-line list an element
added to that line. Everything is planned first (:func:`plan`), checked, and only then written
(:func:`apply`); ``--dry-run`` prints the plan (:func:`describe`).
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib.util
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path

from svc_core.scaffold import edits
from svc_core.scaffold.templates import Options, package_files, test_files
from svc_core.service import valid_service_name

FIRST_PORT = 3001
#: ports that are not services' but are in use by the stack (gateway proxy, TLS, Kong status)
RESERVED_PORTS = {8000, 8100, 8443}


class Refused(Exception):
    """The generator will not go on; the message names the conflict."""


@dataclasses.dataclass
class Plan:
    root: Path
    options: Options
    #: new files: path relative to the root -> text
    create: dict[str, str]
    #: edited files: path relative to the root -> (text now, text after)
    edit: dict[str, tuple[str, str]]
    #: commands run in the root once the files are written (uv lock)
    commands: list[list[str]]


# --- what the repository already has ---------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Taken:
    #: name -> where it is used
    names: dict[str, str]
    #: port -> who uses it
    ports: dict[int, str]
    #: port of each service, for the default port
    service_ports: dict[str, int]
    #: path prefixes Kong routes -> the route's name
    kong_paths: dict[str, str]
    #: the services' names (entry points and deploy/images.py): the anchors of lists
    services: tuple[str, ...]


def find_root(start: Path) -> Path:
    """The workspace root: the nearest directory up from ``start`` with a uv workspace."""
    for directory in [start, *start.parents]:
        pyproject = directory / "pyproject.toml"
        if (
            pyproject.is_file()
            and (directory / "packages").is_dir()
            and "workspace" in tomllib.loads(pyproject.read_text()).get("tool", {}).get("uv", {})
        ):
            return directory
    raise Refused(f"no uv workspace (pyproject.toml with [tool.uv.workspace]) at or above {start}")


def _read(root: Path, relative: str) -> str:
    path = root / relative
    if not path.is_file():
        raise Refused(f"{relative}: not found (the generator edits it)")
    return path.read_text()


def registered(root: Path) -> dict[str, str]:
    """Service name -> package directory, from the ``svc.services`` entry points in the
    packages' pyproject.toml files (what nox and the dev stack read)."""
    found: dict[str, str] = {}
    for pyproject in sorted((root / "packages").glob("*/pyproject.toml")):
        project = tomllib.loads(pyproject.read_text()).get("project", {})
        for name in project.get("entry-points", {}).get("svc.services", {}):
            found[name] = pyproject.parent.name
    return found


def taken(root: Path) -> Taken:
    names: dict[str, str] = {}
    ports: dict[int, str] = dict.fromkeys(RESERVED_PORTS, "the gateway")
    service_ports: dict[str, int] = {}
    services = registered(root)
    for name, directory in services.items():
        names[name] = f"packages/{directory}/pyproject.toml (svc.services entry point)"
    for directory in sorted(p.name for p in (root / "packages").iterdir() if p.is_dir()):
        names.setdefault(directory, f"packages/{directory}")
    try:
        from svc_core.service import discover

        for name, service in discover().items():
            names.setdefault(name, "a registered manifest (svc_core.discover())")
            ports.setdefault(service.port, f"service {name!r} (its manifest)")
            service_ports[name] = service.port
    except Exception:  # noqa: S110 - an environment that cannot import them: the files still say
        pass
    images = _read(root, "deploy/images.py")
    for name, port in edits.image_services(images).items():
        names.setdefault(name, "deploy/images.py SERVICES")
        ports.setdefault(port, f"service {name!r} (deploy/images.py SERVICES)")
        service_ports.setdefault(name, port)
    kong = _read(root, "deploy/kong/kong.yml")
    for name in edits.kong_names(kong):
        names.setdefault(name.removesuffix("-upstream"), f"deploy/kong/kong.yml ({name})")
    for port in edits.kong_ports(kong):
        ports.setdefault(port, "an upstream target in deploy/kong/kong.yml")
    compose = _read(root, "deploy/compose.yaml")
    for name in edits.compose_services(compose):
        names.setdefault(name, "deploy/compose.yaml services")
    for port in edits.compose_ports(compose):
        ports.setdefault(port, "a PORT in deploy/compose.yaml")
    generate = _read(root, "deploy/k8s/generate.py")
    for name, port in edits.k8s_services(generate).items():
        names.setdefault(name, "deploy/k8s/generate.py SERVICES")
        ports.setdefault(port, f"service {name!r} (deploy/k8s/generate.py SERVICES)")
    every = tuple(dict.fromkeys([*services, *edits.image_services(images)]))
    return Taken(names, ports, service_ports, edits.kong_paths(kong), every)


# --- checks ----------------------------------------------------------------------------------


def check_name(name: str, root: Path, known: Taken) -> None:
    if not valid_service_name(name) or not f"svc_{name}".isidentifier():
        raise Refused(
            f"invalid service name {name!r}: 2-31 characters of a-z and 0-9, starting with a "
            "letter (the manifest's rule; svc_<name> is the Python package)"
        )
    if name in known.names:
        raise Refused(f"service name {name!r} is taken: {known.names[name]}")
    for relative in (f"packages/{name}", f"tests/{name}"):
        if (root / relative).exists():
            raise Refused(f"{relative} already exists")
    if importlib.util.find_spec(f"svc_{name}") is not None:
        raise Refused(f"svc_{name} is already an importable module: the name {name!r} is taken")
    for path, route in known.kong_paths.items():
        prefix = path.rstrip("/")
        if f"/{name}/items".startswith(prefix + "/") or path.startswith(f"/{name}"):
            raise Refused(
                f"deploy/kong/kong.yml route {route!r} already routes {path}, which the new "
                f"service's /{name}/... paths would share"
            )


def choose_port(port: int | None, known: Taken) -> int:
    if port is not None:
        if not 1024 < port <= 65535:
            raise Refused(f"port {port}: choose a TCP port in 1025-65535")
        if port in known.ports:
            raise Refused(f"port {port} is taken by {known.ports[port]}")
        return port
    port = max(known.service_ports.values(), default=FIRST_PORT - 1) + 1
    while port in known.ports:
        port += 1
    return port


def dirty(root: Path, paths: list[str]) -> list[str]:
    """The paths among ``paths`` that git reports changed, staged or untracked."""
    try:
        result = subprocess.run(  # noqa: S603 - a fixed command over the repository's own paths
            ["git", "status", "--porcelain", "--", *paths],  # noqa: S607 - git from the PATH
            cwd=root,
            capture_output=True,
            text=True,
            check=False,
        )
    except FileNotFoundError:
        raise Refused("git is not on the PATH: cannot tell whether the files are clean") from None
    if result.returncode != 0:
        raise Refused(f"{root} is not a git work tree ({result.stderr.strip()}): cannot tell "
                      "whether the files it must edit are clean")  # fmt: skip
    return [line[3:] for line in result.stdout.splitlines() if line.strip()]


# --- the plan --------------------------------------------------------------------------------

#: file -> the edit that adds the service to it (each inserts text at an anchor)
EDITS: dict[str, Callable[[str, Options, tuple[str, ...]], str]] = {
    "pyproject.toml": edits.root_pyproject,
    "deploy/kong/kong.yml": edits.kong_yml,
    "deploy/images.py": edits.images_py,
    "deploy/compose.yaml": edits.compose_yaml,
    "deploy/k8s/generate.py": edits.k8s_generate,
    "deploy/k8s/base/kustomization.yaml": edits.kustomization,
    "deploy/k8s/base/kong.yaml": edits.k8s_kong,
    "packages/svc_core/src/svc_core/redis_acl.py": edits.redis_acl_py,
    "deploy/mongo/create-users.js": edits.mongo_users_js,
    "deploy/observability/prometheus.yml": edits.prometheus_yml,
    "deploy/k8s/overlays/prod/kustomization.yaml": edits.prod_images,
    "deploy/k8s/overlays/dev/kustomization.yaml": edits.dev_replicas,
}
LOCK = "uv.lock"


def plan(
    root: Path,
    name: str,
    *,
    port: int | None = None,
    mongo: bool = False,
    redis: bool = False,
    events: bool = False,
    lock: bool = True,
) -> Plan:
    known = taken(root)
    check_name(name, root, known)
    options = Options(name, choose_port(port, known), mongo=mongo, redis=redis, events=events)
    # deploy/k8s/generate.py rewrites the NetworkPolicies for the new service too
    to_check = [*EDITS, "deploy/k8s/base/network-policies.yaml", *([LOCK] if lock else [])]
    changed = dirty(root, to_check)
    if changed:
        raise Refused(
            "uncommitted changes in files it must edit: "
            + ", ".join(changed)
            + " (commit or stash them first)"
        )
    edit: dict[str, tuple[str, str]] = {}
    for relative, change in EDITS.items():
        before = _read(root, relative)
        try:
            after = change(before, options, known.services)
        except edits.AnchorMissing as exc:
            raise Refused(f"{relative}: {exc}") from None
        if after != before:  # e.g. no MongoDB user for a service on Redis
            edit[relative] = (before, after)
    create = {**package_files(options), **test_files(options)}
    generate_after = edit["deploy/k8s/generate.py"][1]
    try:
        k8s_files = edits.k8s_manifest(root, generate_after, name)
        dashboard, dashboard_text = edits.dashboard_file(root, name)
    except edits.AnchorMissing as exc:
        raise Refused(str(exc)) from None
    for k8s_file, k8s_text in k8s_files.items():
        if (root / k8s_file).exists():  # regenerated (the NetworkPolicies)
            edit[k8s_file] = ((root / k8s_file).read_text(), k8s_text)
        else:
            create[k8s_file] = k8s_text
    create[dashboard] = dashboard_text  # what deploy/observability/dashboards.py writes
    for relative in create:
        if (root / relative).exists():
            raise Refused(f"{relative} already exists")
    commands = [["uv", "lock"]] if lock else []
    return Plan(root, options, create, edit, commands)


def describe(p: Plan) -> str:
    o = p.options
    extras = [w for w, on in (("MongoDB", o.mongo), ("Redis", o.redis), ("events", o.events)) if on]
    out = [
        f"svc-core new {o.name}: port {o.port}, items on {o.storage}"
        + (f" (uses {', '.join(extras)})" if extras else ""),
        "",
        "would create:",
    ]
    out += [
        f"  {path}  ({len(text.splitlines())} lines)" for path, text in sorted(p.create.items())
    ]
    out += ["", "would change:"]
    for path, (before, after) in p.edit.items():
        added = sum(1 for _ in _changed_lines(before, after))
        out.append(f"  {path}  ({added} lines added or extended)")
    out += ["", *(f"would run: {' '.join(c)}" for c in p.commands)]
    for path, (before, after) in p.edit.items():
        out.append("")
        out += difflib.unified_diff(
            before.splitlines(), after.splitlines(), f"a/{path}", f"b/{path}", lineterm=""
        )
    return "\n".join(out) + "\n"


def _changed_lines(before: str, after: str) -> list[str]:
    return [
        line
        for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="")
        if line.startswith("+") and not line.startswith("+++")
    ]


def apply(p: Plan, *, echo: Callable[[str], None] = print) -> None:
    for relative, text in p.create.items():
        path = p.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        echo(f"created {relative}")
    for relative, (_before, after) in p.edit.items():
        (p.root / relative).write_text(after)
        echo(f"changed {relative}")
    _tidy(p, echo)
    for command in p.commands:
        exe = shutil.which(command[0])
        if exe is None:
            echo(f"{command[0]} is not on the PATH: run `{' '.join(command)}` yourself")
            continue
        echo(f"running {' '.join(command)}")
        subprocess.run([exe, *command[1:]], cwd=p.root, check=True)  # noqa: S603 - fixed argv


def _tidy(p: Plan, echo: Callable[[str], None]) -> None:
    """Sort imports and format the new and edited Python files with the project's ruff, where
    it is installed (they are formatted already; a long name can push a line over)."""
    ruff = shutil.which("ruff") or _beside_python("ruff")
    sources = [str(p.root / f) for f in [*p.create, *p.edit] if f.endswith(".py")]
    if ruff is None:
        echo("ruff is not installed: run `ruff check --fix` and `ruff format` on the new files")
        return
    for args in (["check", "--fix", "--select", "I", "--quiet"], ["format", "--quiet"]):
        subprocess.run([ruff, *args, *sources], cwd=p.root, check=False)  # noqa: S603


def _beside_python(tool: str) -> str | None:
    candidate = Path(sys.executable).parent / tool
    return str(candidate) if candidate.is_file() else None


def next_steps(p: Plan) -> str:
    name = p.options.name
    return "\n".join(
        [
            "",
            f'Next: nox -s "tests({name})"   # its tests',
            '      nox -s lint typecheck "tests(deploy)"',
            "      nox -s dev                # the stack, with "
            f"POST /{name}/items behind the gateway",
            "docs/adding-a-service.md explains each file.",
        ]
    )


__all__ = ["Plan", "Refused", "apply", "describe", "find_root", "next_steps", "plan"]
