"""``nox -s images``: build and tag one image per service from deploy/docker/Dockerfile.

    python deploy/images.py                       # build every image, print each one's size
    python deploy/images.py --only order,payment  # some of them
    python deploy/images.py --push registry.example.com/team   # build, tag REGISTRY/..., push

Images are built through the Docker SDK (PyPI ``docker``) from the repository root. Where no
Docker engine is reachable it says so and exits 0: there is nothing to build against, and that is
not a failure of the project. A failed build or push exits 1.

A service whose package has no ``__main__.py`` yet (work in progress) is skipped with a message.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import subprocess
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = "deploy/docker/Dockerfile"
SOURCE = "https://example.invalid/svc"  # set --source to the repository's URL for the labels

# The services and the ports they listen on (each Settings' default_port). The consistency test
# (tests/deploy/test_consistency.py) holds this list to the code, kong.yml, the dev stack, compose
# and the Kubernetes manifests.
SERVICES: dict[str, int] = {
    "cache": 3001,
    "customer": 3002,
    "order": 3003,
    "payment": 3004,
    "chat": 3005,
    "files": 3006,
    "web": 3000,
}
# Not a service: the tooling image whose `svc-gateway render` fills kong.yml for Kong.
TOOLS: dict[str, int] = {"gateway": 8000}


@dataclass(frozen=True)
class Image:
    name: str  # the package directory under packages/
    port: int
    version: str

    @property
    def repository(self) -> str:
        return f"svc-{self.name}"

    @property
    def tag(self) -> str:
        return f"{self.repository}:{self.version}"


def package_version(name: str) -> str:
    text = (ROOT / "packages" / name / "pyproject.toml").read_text()
    match = re.search(r'^version\s*=\s*"([^"]+)"', text, re.MULTILINE)
    if not match:
        raise SystemExit(f"packages/{name}/pyproject.toml: no version")
    return match.group(1)


def is_ready(name: str) -> bool:
    """A service can be imaged once its package has an entry point (``python -m svc_<name>``)."""
    return (ROOT / "packages" / name / "src" / f"svc_{name}" / "__main__.py").is_file()


def git_revision() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],  # noqa: S607 (git from the PATH)
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return out.stdout.strip()


def build_args(image: Image, revision: str, created: str, source: str) -> dict[str, str]:
    return {
        "SERVICE": image.name,
        "PORT": str(image.port),
        "VERSION": image.version,
        "REVISION": revision,
        "CREATED": created,
        "SOURCE": source,
    }


def selected(only: Iterable[str] | None) -> tuple[list[Image], list[str]]:
    """The images to build, and messages about the ones skipped."""
    wanted = {**SERVICES, **TOOLS}
    names = list(wanted) if only is None else list(only)
    unknown = [n for n in names if n not in wanted]
    if unknown:
        raise SystemExit(f"unknown image(s): {', '.join(unknown)}; known: {', '.join(wanted)}")
    images, skipped = [], []
    for name in names:
        if not is_ready(name):
            skipped.append(f"svc-{name}: skipped, packages/{name} has no __main__.py yet")
            continue
        images.append(Image(name, wanted[name], package_version(name)))
    return images, skipped


def human(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB"


def connect() -> Any | None:
    """A Docker client whose engine answers, else None (the reason printed)."""
    try:
        import docker
        from docker.errors import DockerException
    except ImportError:
        print("the Docker SDK is not installed (pip install docker); no image built")
        return None
    try:
        client = docker.from_env()
        client.ping()
    except DockerException as exc:
        print(f"no Docker engine reachable ({exc}); no image built, nothing pushed")
        return None
    return client


def build(client: Any, image: Image, args: dict[str, str]) -> Any:
    built, _logs = client.images.build(
        path=str(ROOT),
        dockerfile=DOCKERFILE,
        buildargs=args,
        tag=image.tag,
        rm=True,
        forcerm=True,
        labels={"org.opencontainers.image.title": image.repository},
    )
    return built


def push(client: Any, image: Any, local: Image, registry: str) -> str:
    repository = f"{registry.rstrip('/')}/{local.repository}"
    image.tag(repository, tag=local.version)
    for line in client.images.push(repository, tag=local.version, stream=True, decode=True):
        if "error" in line:
            raise RuntimeError(f"push {repository}:{local.version}: {line['error']}")
    return f"{repository}:{local.version}"


def main(argv: list[str] | None = None, connect: Callable[[], Any | None] = connect) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--push", metavar="REGISTRY", help="tag REGISTRY/svc-<name>:<version>, push"
    )
    parser.add_argument("--only", help="comma-separated image names (default: all)")
    parser.add_argument("--source", default=SOURCE, help="org.opencontainers.image.source label")
    args = parser.parse_args(argv)
    only = [n.strip() for n in args.only.split(",") if n.strip()] if args.only else None
    images, skipped = selected(only)
    for message in skipped:
        print(message)
    client = connect()
    if client is None:
        print("images: skipped (where a Docker engine runs, `nox -s images` builds them)")
        return 0
    revision = git_revision()
    created = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    failed = False
    for image in images:
        try:
            built = build(client, image, build_args(image, revision, created, args.source))
            size = built.attrs.get("Size", 0)
            print(f"{image.tag}: {human(size)} ({built.short_id})")
            if args.push:
                print(f"  pushed {push(client, built, image, args.push)}")
        except Exception as exc:  # the SDK's BuildError/APIError, or a push error
            print(f"{image.tag}: FAILED: {exc}", file=sys.stderr)
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
