"""Render the kong.yml template: fill ``${VAR}`` / ``${VAR:-default}`` from the environment.

The template (deploy/kong/kong.yml) is plain YAML with placeholders in string values, so what
differs per environment (Redis host, service targets, CORS origins, the public signing keys)
never lives in the file. Two kinds of variables:

- scalar: the placeholder is replaced by the value. A value made only of one placeholder that
  renders to digits becomes an integer (ports, database numbers).
- list: a list item (or a mapping that is a list item) that mentions a list variable is repeated
  once per value. ``*_TARGETS`` and ``GATEWAY_CORS_ORIGINS`` are comma-separated lists;
  ``JWT_KID`` / ``JWT_PUBLIC_KEY`` are derived from the PEM bundle in ``JWT_PUBLIC_KEYS`` or
  ``JWT_PUBLIC_KEYS_FILE`` (one jwt credential per live key, ``key`` = the RFC 7638 thumbprint).

A placeholder with no value and no default is an error (``${VAR:-}`` allows an empty one), and
so is a private key anywhere in the input: the rendered file is meant to be shipped to Kong.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from svc_core.auth import key_id, load_public_keys, public_pem

PLACEHOLDER = re.compile(r"\$\{([A-Z][A-Z0-9_]*)(?::-([^}]*))?\}")
LIST_SUFFIXES = ("_TARGETS", "_ORIGINS")
KEY_VARIABLES = ("JWT_KID", "JWT_PUBLIC_KEY")


class RenderError(ValueError):
    """The template cannot be rendered with this environment; the message says why."""


def public_keys_pem(environ: Mapping[str, str]) -> str:
    """The PEM bundle of public keys named by JWT_PUBLIC_KEYS and/or JWT_PUBLIC_KEYS_FILE."""
    pem = environ.get("JWT_PUBLIC_KEYS", "")
    path = environ.get("JWT_PUBLIC_KEYS_FILE", "")
    if path:
        try:
            pem += "\n" + Path(path).read_text()
        except OSError as exc:
            raise RenderError(f"JWT_PUBLIC_KEYS_FILE: cannot read {path}: {exc}") from None
    if "PRIVATE KEY" in pem:
        raise RenderError("JWT_PUBLIC_KEYS(_FILE) contains a private key; give public keys only")
    return pem


def list_values(environ: Mapping[str, str]) -> dict[str, list[str]]:
    """The derived key variables: one entry per public key, in bundle order."""
    try:
        keys = load_public_keys(public_keys_pem(environ))
    except ValueError as exc:
        raise RenderError(f"JWT_PUBLIC_KEYS: {exc}") from None
    return {
        "JWT_KID": [key_id(k) for k in keys],
        "JWT_PUBLIC_KEY": [public_pem(k) for k in keys],
    }


class _Renderer:
    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ
        self.derived = list_values(environ)

    def is_list(self, name: str) -> bool:
        return name in KEY_VARIABLES or name.endswith(LIST_SUFFIXES)

    def values(self, name: str, default: str | None) -> list[str]:
        if name in self.derived:
            if not self.derived[name]:
                raise RenderError(
                    f"{name}: no public key given (set JWT_PUBLIC_KEYS or JWT_PUBLIC_KEYS_FILE)"
                )
            return self.derived[name]
        raw = self.environ.get(name) or default
        if raw is None or (raw == "" and default is None):
            # `${VAR:-}` (an explicit empty default) is the one way to allow an empty value
            raise RenderError(f"{name}: required by the template but not set")
        if self.is_list(name):
            return [part.strip() for part in raw.split(",") if part.strip()]
        return [raw]

    def list_vars(self, node: Any) -> dict[str, str | None]:
        """List variables (and defaults) a list item mentions directly: a scalar or flat mapping."""
        strings = [node] if isinstance(node, str) else []
        if isinstance(node, dict):
            strings = [v for v in node.values() if isinstance(v, str)]
        return {
            m.group(1): m.group(2)
            for s in strings
            for m in PLACEHOLDER.finditer(s)
            if self.is_list(m.group(1))
        }

    def scalar(self, text: str, index: int) -> Any:
        def sub(match: re.Match[str]) -> str:
            values = self.values(match.group(1), match.group(2))
            return values[index if len(values) > 1 else 0]

        rendered = PLACEHOLDER.sub(sub, text)
        if PLACEHOLDER.fullmatch(text) and rendered.isdigit():
            return int(rendered)
        if "PRIVATE KEY" in rendered:
            raise RenderError("refusing to render a private key into kong.yml")
        return rendered

    def node(self, node: Any, index: int = 0) -> Any:
        if isinstance(node, str):
            return self.scalar(node, index)
        if isinstance(node, dict):
            return {k: self.node(v, index) for k, v in node.items()}
        if isinstance(node, list):
            out: list[Any] = []
            for item in node:
                names = self.list_vars(item)
                counts = {len(self.values(n, default)) for n, default in names.items()}
                if len(counts) > 1:
                    raise RenderError(f"list variables {sorted(names)} have different lengths")
                repeat = counts.pop() if counts else 1
                out.extend(self.node(item, i) for i in range(repeat))
            return out
        return node


class _NoAliasDumper(yaml.SafeDumper):
    """Anchors expanded (Kong and decK get plain entities); PEM blocks as literal blocks."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_NoAliasDumper.add_representer(str, _str)


def render_text(template: str, environ: Mapping[str, str]) -> str:
    """The rendered YAML of ``template`` (anchors expanded, placeholders filled)."""
    document = yaml.safe_load(template)
    if not isinstance(document, dict):
        raise RenderError("the template is not a YAML mapping")
    rendered = _Renderer(environ).node(document)
    header = "# Rendered by `svc-gateway render` from deploy/kong/kong.yml. Do not edit.\n"
    body = yaml.dump(rendered, Dumper=_NoAliasDumper, sort_keys=False, width=100)
    return header + body


def render_file(template: Path, out: Path, environ: Mapping[str, str]) -> None:
    text = render_text(template.read_text(), environ)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
