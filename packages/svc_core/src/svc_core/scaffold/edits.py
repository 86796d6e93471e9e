"""Text insertions that add a service to the files it must appear in, at anchors.

Each function takes a file's text and returns it with the new service added; an anchor that is
not there raises :class:`AnchorMissing`, naming what it looked for. Nothing is parsed and written
back, so the rest of each file (comments, order, anchors, quoting) is left byte for byte.
"""

from __future__ import annotations

import contextlib
import importlib.util
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from svc_core.scaffold.templates import VERSION, Options


class AnchorMissing(Exception):
    pass


def _lines(text: str) -> list[str]:
    return text.splitlines(keepends=True)


def _section(lines: list[str], header: str, top: str = r"[A-Za-z_]") -> tuple[int, int]:
    """[start, end) of the lines after the top-level ``header`` line up to the next line that
    starts with ``top`` (a YAML key; ``\\[`` for a TOML table)."""
    try:
        start = next(i for i, line in enumerate(lines) if line.rstrip("\n") == header) + 1
    except StopIteration:
        raise AnchorMissing(f"no line {header!r}") from None
    end = next((i for i in range(start, len(lines)) if re.match(top, lines[i])), len(lines))
    return start, end


def _after_last(lines: list[str], start: int, end: int, pattern: str, what: str) -> int:
    """The index after the last line in [start, end) that matches ``pattern``."""
    found = [i for i in range(start, end) if re.match(pattern, lines[i])]
    if not found:
        raise AnchorMissing(f"no {what} to add the new one after")
    return found[-1] + 1


def _before_comments(lines: list[str], index: int) -> int:
    """Back from ``index`` over the blank and comment lines that introduce what is there."""
    while index > 0 and (not lines[index - 1].strip() or lines[index - 1].lstrip().startswith("#")):
        index -= 1
    return index


def _insert(lines: list[str], index: int, block: str) -> str:
    return "".join([*lines[:index], block, *lines[index:]])


# --- reading what is there -------------------------------------------------------------------


def image_services(text: str) -> dict[str, int]:
    lines = _lines(text)
    start = next((i for i, line in enumerate(lines) if line.startswith("SERVICES")), None)
    if start is None:
        return {}
    found: dict[str, int] = {}
    for line in lines[start + 1 :]:
        if line.startswith("}"):
            break
        m = re.match(r'\s+"([a-z0-9]+)":\s*(\d+),', line)
        if m:
            found[m.group(1)] = int(m.group(2))
    return found


def k8s_services(text: str) -> dict[str, int]:
    return {m.group(1): int(m.group(2)) for m in re.finditer(r'Service\(\s*"(\w+)",\s*(\d+)', text)}


def kong_names(text: str) -> list[str]:
    """Names of Kong services, routes and upstreams (not plugins)."""
    lines = _lines(text)
    names: list[str] = []
    for header, pattern in (
        ("services:", r"(?:  |      )- name: (\S+)"),
        ("upstreams:", r"  - name: (\S+)"),
    ):
        start, end = _section(lines, header)
        names += [m.group(1) for i in range(start, end) if (m := re.match(pattern, lines[i]))]
    return names


def kong_paths(text: str) -> dict[str, str]:
    """Every path a Kong route matches (as a prefix) -> the route's name."""
    lines = _lines(text)
    start, end = _section(lines, "services:")
    found: dict[str, str] = {}
    route = "?"
    for line in lines[start:end]:
        if m := re.match(r"      - name: (\S+)", line):
            route = m.group(1)
        if m := re.match(r"\s+paths:\s*\[(.*)\]", line):
            for path in m.group(1).split(","):
                found[path.strip().strip("\"'")] = route
    return found


def kong_ports(text: str) -> set[int]:
    return {int(p) for p in re.findall(r"_TARGETS:-[\w.-]+:(\d+)", text)}


def compose_services(text: str) -> list[str]:
    lines = _lines(text)
    start, end = _section(lines, "services:")
    return [m.group(1) for i in range(start, end) if (m := re.match(r"  ([\w-]+):", lines[i]))]


def compose_ports(text: str) -> set[int]:
    return {int(p) for p in re.findall(r'^\s+PORT: "(\d+)"', text, re.M)}


# --- the edits -------------------------------------------------------------------------------


def _service_alternation(services: tuple[str, ...]) -> str:
    return "(?:" + "|".join(re.escape(s) for s in services) + ")" if services else "(?!)"


def root_pyproject(text: str, o: Options, services: tuple[str, ...]) -> str:
    """The dev group, the workspace source, ruff's first-party list and coverage's sources."""
    alt = _service_alternation(services)
    lines = _lines(text)
    start, end = _section(lines, "[dependency-groups]", r"\[")
    at = _after_last(lines, start, end, rf'    "svc-{alt}",\n', "service in the dev group")
    text = _insert(lines, at, f'    "svc-{o.name}",\n')
    lines = _lines(text)
    start, end = _section(lines, "[tool.uv.sources]", r"\[")
    at = _after_last(
        lines,
        start,
        end,
        rf"svc-{alt} = \{{ workspace = true \}}\n",
        "service in [tool.uv.sources]",
    )
    text = _insert(lines, at, f"svc-{o.name} = {{ workspace = true }}\n")
    for header, key in (
        ("[tool.ruff.lint.isort]", "known-first-party"),
        ("[tool.coverage.run]", "source"),
    ):
        text = _extend_inline_list(text, header, key, f"svc_{o.name}", alt)
    return text


def _extend_inline_list(text: str, header: str, key: str, item: str, alt: str) -> str:
    """Add ``"item"`` after the last service in the one-line list ``key = [...]``."""
    lines = _lines(text)
    start, end = _section(lines, header, r"\[")
    for i in range(start, end):
        if lines[i].startswith(f"{key} = ["):
            found = list(re.finditer(rf'"svc_{alt}"', lines[i]))
            if not found:
                raise AnchorMissing(f"{header} {key}: no service in the list")
            lines[i] = f'{lines[i][: found[-1].end()]}, "{item}"{lines[i][found[-1].end() :]}'
            return "".join(lines)
    raise AnchorMissing(f"{header}: no one-line `{key} = [...]`")


def kong_yml(text: str, o: Options, services: tuple[str, ...]) -> str:
    """A Kong service on ``<name>-upstream`` with its route and the REST jwt, and the upstream."""
    service = f"""
  - name: {o.name}
    protocol: http
    host: {o.name}-upstream
    plugins: [*jwt_rest]
    routes:
      - name: {o.name}
        paths: [/{o.name}]
        strip_path: false
        protocols: [http, https]
"""
    upstream = f"""\
  - name: {o.name}-upstream
    algorithm: round-robin
    healthchecks: *healthchecks
    targets:
      - target: ${{{o.name.upper()}_TARGETS:-127.0.0.1:{o.port}}}
"""
    if "&jwt_rest" not in text or "&healthchecks" not in text:
        raise AnchorMissing("the &jwt_rest and &healthchecks anchors the new blocks refer to")
    lines = _lines(text)
    _, end = _section(lines, "services:")
    text = _insert(lines, _before_comments(lines, end), service)
    lines = _lines(text)
    start, end = _section(lines, "upstreams:")
    at = _after_last(lines, start, end, r"      - target: ", "upstream target")
    return _insert(lines, at, upstream)


def images_py(text: str, o: Options, services: tuple[str, ...]) -> str:
    lines = _lines(text)
    start = next((i for i, line in enumerate(lines) if line.startswith("SERVICES")), None)
    if start is None:
        raise AnchorMissing("no `SERVICES: dict[str, int] = {`")
    at = _after_last(lines, start, _closing(lines, start, "}"), r'\s+"\w+": \d+,', "service")
    return _insert(lines, at, f'    "{o.name}": {o.port},\n')


def _closing(lines: list[str], start: int, bracket: str) -> int:
    for i in range(start + 1, len(lines)):
        if lines[i].startswith(bracket):
            return i
    raise AnchorMissing(f"no closing {bracket!r} after line {start + 1}")


def compose_yaml(text: str, o: Options, services: tuple[str, ...]) -> str:
    """The service block (after the last service) with its own Redis user (and MongoDB user),
    their secrets, kong-config's target and Kong's wait."""
    alt = _service_alternation(services)
    lines = _lines(text)
    start, end = _section(lines, "services:")
    config = next((i for i in range(start, end) if lines[i] == "  kong-config:\n"), None)
    if config is None:
        raise AnchorMissing("no `  kong-config:` service")
    redis_secret = f"{{source: redis-password-{o.name}, target: /run/secrets/redis-password}}"
    if o.mongo:
        mongo_secret = f"{{source: mongo-password-{o.name}, target: /run/secrets/mongo-password}}"
        waits = ""  # *service's: mongo-init (its user) and Redis
        mongo_env = (
            "      MONGO_URL: mongodb://mongo:27017/?replicaSet=rs0\n"
            f"      MONGO_USERNAME: {o.name}\n"
            "      MONGO_PASSWORD_FILE: /run/secrets/mongo-password\n"
        )
        secrets = f"[jwt-public, {redis_secret}, {mongo_secret}]"
    else:
        waits = (
            "    depends_on:  # Redis only: no MongoDB\n      redis: {condition: service_healthy}\n"
        )
        mongo_env = ""
        secrets = f"[jwt-public, {redis_secret}]"
    block = f"""
  {o.name}:
    <<: *service
    image: ${{SVC_IMAGE_PREFIX:-}}svc-{o.name}:${{SVC_VERSION:-0.1.0}}
{waits}    environment:
      <<: *env
{mongo_env}      PORT: "{o.port}"
      REDIS_URL: redis://{o.name}@redis:6379/0
    secrets: {secrets}
"""
    text = _insert(lines, _before_comments(lines, config), block)
    lines = _lines(text)
    start, end = _section(lines, "secrets:")
    at = _after_last(
        lines, start, end, r"  redis-password-[\w-]+: ", "redis-password-<user> secret"
    )
    text = _insert(
        lines, at, f"  redis-password-{o.name}: {{file: ./secrets/redis-password-{o.name}}}\n"
    )
    if o.mongo:
        lines = _lines(text)
        start, end = _section(lines, "secrets:")
        at = _after_last(lines, start, end, r"  mongo-password-[\w-]+: ", "mongo-password-<user>")
        secret = f"  mongo-password-{o.name}: {{file: ./secrets/mongo-password-{o.name}}}\n"
        text = _insert(lines, at, secret)
        lines = _lines(text)
        start, end = _block(lines, "  mongo-init:\n")
        at = _after_last(
            lines, start, end, r"      - mongo-password-[\w-]+\n", "mongo-init's secrets"
        )
        text = _insert(lines, at, f"      - mongo-password-{o.name}\n")
    lines = _lines(text)
    start, end = _block(lines, "  kong-config:\n")
    at = _after_last(lines, start, end, r"      [A-Z0-9_]+_TARGETS: ", "kong-config *_TARGETS")
    text = _insert(lines, at, f"      {o.name.upper()}_TARGETS: {o.name}:{o.port}\n")
    lines = _lines(text)
    start, end = _block(lines, "  kong:\n")
    at = _after_last(
        lines,
        start,
        end,
        rf"      {alt}: \{{condition: service_healthy\}}\n",
        "service in kong's depends_on",
    )
    return _insert(lines, at, f"      {o.name}: {{condition: service_healthy}}\n")


def redis_acl_py(text: str, o: Options, services: tuple[str, ...]) -> str:
    """The service's row in svc_core.redis_acl (its own ACL user): the connection and the
    revocation list every service needs, its key prefix and the commands of its Redis
    repository (items on Redis), its stream (events)."""
    lines = _lines(text)
    start = next((i for i, line in enumerate(lines) if line.startswith("USERS: dict[")), None)
    if start is None:
        raise AnchorMissing("no `USERS: dict[...] = {`")
    gateway = next(
        (i for i in range(start, len(lines)) if lines[i] == '    "gateway": CONNECTION\n'), None
    )
    if gateway is None:
        raise AnchorMissing('no `    "gateway": CONNECTION` row')
    parts = ["CONNECTION", "AUTH"]
    if o.storage == "Redis":  # the template's repository: SET + ZADD in MULTI, ZRANGE, MGET
        parts.append(f'Access(keys=("{o.name}:*",), commands=("set", "zadd", "zrange", "mget"))')
    if o.events:
        parts.append(f'streams("events:{o.name}")')
    row = f'    "{o.name}": ' + " + ".join(parts) + ",\n"
    if len(row) > 101:  # as ruff formats it: one line if it fits, else one operand a line
        row = f'    "{o.name}": ' + "\n    + ".join(parts) + ",\n"
    return _insert(lines, _before_comments(lines, gateway), row)


def mongo_users_js(text: str, o: Options, services: tuple[str, ...]) -> str:
    """The service's MongoDB user (readWrite on its own database) in the JSON table of
    deploy/mongo/create-users.js; nothing for a service without MongoDB."""
    if not o.mongo:
        return text
    lines = _lines(text)
    end = next((i for i, line in enumerate(lines) if line == "// END USERS\n"), None)
    if end is None or end < 2 or lines[end - 1] != "];\n":
        raise AnchorMissing("no `];` before `// END USERS`")
    last = end - 2
    if not lines[last].startswith("  {"):
        raise AnchorMissing("no user row before `];`")
    row = (
        f'  {{"user": "{o.name}", "db": "{o.name}", '
        f'"roles": [{{"role": "readWrite", "db": "{o.name}"}}]}}\n'
    )
    lines[last] = lines[last].rstrip("\n").rstrip(",") + ",\n"
    return _insert(lines, last + 1, row)


def _block(lines: list[str], header: str) -> tuple[int, int]:
    """[start, end) of the compose service ``header`` (indent 2) up to the next one."""
    try:
        start = lines.index(header) + 1
    except ValueError:
        raise AnchorMissing(f"no {header.strip()!r}") from None
    end = next(
        (i for i in range(start, len(lines)) if re.match(r"(?:  )?[\w-]", lines[i])), len(lines)
    )
    return start, end


def k8s_generate(text: str, o: Options, services: tuple[str, ...]) -> str:
    lines = _lines(text)
    start = next((i for i, line in enumerate(lines) if line.startswith("SERVICES = [")), None)
    if start is None:
        raise AnchorMissing("no `SERVICES = [`")
    # its data stores, for its Secret and its NetworkPolicies (Auth() always brings Redis)
    stores = '("mongodb", "redis")' if o.mongo else '("redis",)'
    row = f'    Service("{o.name}", {o.port}, stores={stores}),\n'
    return _insert(lines, _closing(lines, start, "]"), row)


def kustomization(text: str, o: Options, services: tuple[str, ...]) -> str:
    lines = _lines(text)
    at = _after_last(lines, 0, len(lines), r"  - services/[\w-]+\.yaml", "services/<name>.yaml")
    return _insert(lines, at, f"  - services/{o.name}.yaml\n")


def k8s_kong(text: str, o: Options, services: tuple[str, ...]) -> str:
    lines = _lines(text)
    end = next((i for i, line in enumerate(lines) if line.startswith("---")), len(lines))
    at = _after_last(lines, 0, end, r"  [A-Z0-9_]+_TARGETS: ", "kong-render-env *_TARGETS")
    return _insert(lines, at, f"  {o.name.upper()}_TARGETS: {o.name}:{o.port}\n")


def prometheus_yml(text: str, o: Options, services: tuple[str, ...]) -> str:
    """The service's target, labelled with its name, in the ``svc`` scrape job of
    deploy/observability/prometheus.yml (after the last one)."""
    lines = _lines(text)
    start = next((i for i, line in enumerate(lines) if line == "  - job_name: svc\n"), None)
    if start is None:
        raise AnchorMissing("no `  - job_name: svc` scrape config")
    end = next(
        (i for i in range(start + 1, len(lines)) if lines[i].startswith("  - job_name: ")),
        len(lines),
    )
    at = _after_last(
        lines, start, end, r"        labels: \{service: [\w-]+\}\n", "service target in job svc"
    )
    target = f'      - targets: ["{o.name}:{o.port}"]\n        labels: {{service: {o.name}}}\n'
    return _insert(lines, at, target)


def prod_images(text: str, o: Options, services: tuple[str, ...]) -> str:
    """The service's image in the prod overlay's ``images:`` (after the last service's), from
    the same registry as that one, tagged with the new package's version."""
    alt = _service_alternation(services)
    lines = _lines(text)
    start, end = _section(lines, "images:")
    at = _after_last(lines, start, end, rf"  - name: svc-{alt}\n", "service's image in images:")
    block_end = next((i for i in range(at, end) if lines[i].startswith("  - ")), end)
    block_end = max(_before_comments(lines, block_end), at)
    last = lines[at - 1][len("  - name: ") :].rstrip("\n")
    registry = next(
        (
            m.group(1)
            for line in lines[at:block_end]
            if (m := re.match(rf"    newName: (\S+)/{re.escape(last)}\n", line))
        ),
        None,
    )
    if registry is None:
        raise AnchorMissing(f"no `newName: <registry>/{last}` to take the registry from")
    row = f"  - name: svc-{o.name}\n    newName: {registry}/svc-{o.name}\n    newTag: {VERSION}\n"
    return _insert(lines, block_end, row)


def dev_replicas(text: str, o: Options, services: tuple[str, ...]) -> str:
    """One replica of the service in the dev overlay's ``replicas:`` (after the last service's;
    the overlay's promise is one replica each)."""
    alt = _service_alternation(services)
    lines = _lines(text)
    start, end = _section(lines, "replicas:")
    at = _after_last(lines, start, end, rf"  - name: {alt}\n", "service in replicas:")
    if at >= end or not re.fullmatch(r"    count: \d+\n", lines[at]):
        raise AnchorMissing("a `count:` line under the last service in replicas:")
    return _insert(lines, at + 1, f"  - name: {o.name}\n    count: 1\n")


@contextlib.contextmanager
def _script(path: Path, text: str, module_name: str) -> Iterator[Any]:
    """The repository's script at ``path``, with the source ``text``, as a module (registered
    while in use: dataclasses look their module up)."""
    spec = importlib.util.spec_from_loader(module_name, loader=None)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    module.__file__ = str(path)
    sys.modules[module_name] = module
    try:
        exec(compile(text, str(path), "exec"), module.__dict__)  # noqa: S102 - the repo's script
        yield module
    finally:
        del sys.modules[module_name]


def dashboard_file(root: Path, name: str) -> tuple[str, str]:
    """deploy/observability/dashboards/<name>.json as ``dashboards.py`` writes it (its own
    ``service_file()``, so ``dashboards.py --check`` agrees once the package is there)."""
    path = root / "deploy" / "observability" / "dashboards.py"
    if not path.is_file():
        raise AnchorMissing("deploy/observability/dashboards.py: not found")
    with _script(path, path.read_text(), "_svc_scaffold_dashboards") as module:
        if not callable(getattr(module, "service_file", None)):
            raise AnchorMissing("deploy/observability/dashboards.py: no service_file(name)")
        written, text = module.service_file(name)
    return str(Path(written).relative_to(root.resolve())), text


def k8s_manifest(root: Path, generate_text: str, name: str) -> dict[str, str]:
    """The Kubernetes files ``deploy/k8s/generate.py`` (as edited) writes that are new or
    change: the new service's manifest and the regenerated NetworkPolicies (the script's own
    ``files()``, so each is exactly what running it produces)."""
    path = root / "deploy" / "k8s" / "generate.py"
    with _script(path, generate_text, "_svc_scaffold_k8s_generate") as module:
        files: dict[Path, str] = module.files()
    wanted: Any = next((p for p in files if p.name == f"{name}.yaml"), None)
    if wanted is None:
        raise AnchorMissing("deploy/k8s/generate.py wrote no file for the new service")
    out = {str(Path(wanted).relative_to(root)): files[wanted]}
    for path, text in files.items():
        if path != wanted and Path(path).exists() and Path(path).read_text() != text:
            out[str(Path(path).relative_to(root))] = text
    return out
