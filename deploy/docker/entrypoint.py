"""The images' entrypoint: secrets from files, then exec the service; or the HEALTHCHECK probe.

    entrypoint.py                 exec ``svc-$SVC_SERVICE`` (the image's service)
    entrypoint.py CMD ARGS...     exec that command instead (e.g. ``svc-gateway render ...``)
    entrypoint.py --healthcheck   GET http://127.0.0.1:$PORT/health; exit 0 on 2xx, else 1

The services read only environment variables. Compose secrets and Kubernetes secret volumes are
files, so before exec'ing the service every ``NAME_FILE=/path`` becomes ``NAME=<file content>``
(one trailing newline dropped), the usual ``_FILE`` convention of official images: the secret
never appears in the compose file, ``docker inspect`` or the image. Two variables the services
read as files themselves are left alone: ``JWT_PUBLIC_KEYS_FILE`` and ``JWT_PRIVATE_KEY_FILE``.
Setting both ``NAME`` and ``NAME_FILE`` is an error (which one would win is a guess).

exec keeps the service as PID 1, so the container's SIGTERM reaches svc_core's runner directly.
Standard library only: it runs on the bare slim image.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping, MutableMapping, Sequence

NATIVE_FILE_VARIABLES = frozenset({"JWT_PUBLIC_KEYS_FILE", "JWT_PRIVATE_KEY_FILE"})
SUFFIX = "_FILE"


class EntrypointError(Exception):
    """A configuration mistake; the message names the variable, never a secret's value."""


def load_file_variables(environ: MutableMapping[str, str]) -> list[str]:
    """Turn every ``NAME_FILE`` into ``NAME`` in place; return the names set (sorted)."""
    loaded = []
    for file_var in sorted(environ):
        if not file_var.endswith(SUFFIX) or file_var in NATIVE_FILE_VARIABLES:
            continue
        name = file_var[: -len(SUFFIX)]
        if not name:
            continue
        if name in environ:
            raise EntrypointError(f"{name} and {file_var} are both set; set only one")
        path = environ[file_var]
        try:
            with open(path, encoding="utf-8") as handle:
                value = handle.read()
        except OSError as exc:
            raise EntrypointError(f"{file_var}: cannot read {path}: {exc.strerror}") from None
        environ[name] = value.removesuffix("\n").removesuffix("\r")
        del environ[file_var]
        loaded.append(name)
    return loaded


def command(argv: Sequence[str], environ: Mapping[str, str]) -> list[str]:
    """The command to exec: the arguments, else the image's service."""
    if argv:
        return list(argv)
    service = environ.get("SVC_SERVICE", "")
    if not service:
        raise EntrypointError("SVC_SERVICE: not set and no command given")
    return [f"svc-{service}"]


def healthcheck(environ: Mapping[str, str], timeout: float = 2.0) -> int:
    """0 when GET /health on this container's port answers 2xx, else 1 (Docker's HEALTHCHECK)."""
    port = environ.get("PORT") or "8080"
    url = f"http://127.0.0.1:{port}/health"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            healthy = 200 <= response.status < 300
    except (urllib.error.URLError, OSError, ValueError) as exc:
        print(f"healthcheck: {url}: {exc}", file=sys.stderr)
        return 1
    return 0 if healthy else 1


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if args == ["--healthcheck"]:
        raise SystemExit(healthcheck(os.environ))
    try:
        load_file_variables(os.environ)
        cmd = command(args, os.environ)
    except EntrypointError as exc:
        raise SystemExit(f"entrypoint: {exc}") from None
    sys.stdout.flush()
    os.execvp(cmd[0], cmd)  # noqa: S606 (the container's own command, no shell)


if __name__ == "__main__":
    main()
