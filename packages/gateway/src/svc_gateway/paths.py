"""Request paths as Kong 3.9.1 routes and forwards them (DEVELOPMENT TOOL).

K:kong/router/utils.lua ``strip_uri_args`` normalises ``var.request_uri`` (without its query)
with K:kong/tools/uri.lua ``normalize(uri, true)``, and the router matches on the result. The
upstream path is computed from that same normalised path (K:kong/router/utils.lua
``get_upstream_uri_v0``, ``sanitize_uri_postfix``) and sent through ``escape``
(K:kong/runloop/handler.lua, ``var.upstream_uri = escape(match_t.upstream_uri)``), then the raw
query is appended. ``X-Forwarded-Path`` stays the raw path as the client sent it.

``normalize``:
- percent-encoded triplets are decoded, except reserved characters (RFC 3986
  ``!*'();:@&=+$,/?%#[]``), which stay encoded with upper-case hex (``%2f`` -> ``%2F``);
- dot segments are removed (RFC 3986 5.2.4: ``/a/./b`` -> ``/a/b``, ``/a/..`` -> ``/``,
  ``/cache/.`` -> ``/cache/``), after decoding, so ``/%2e%2e/`` is ``/../``;
- duplicate slashes are merged.
``escape`` then percent-encodes every byte outside
``!#$&'()*+,/:;=?@[]A-Za-z0-9-_.~%``, so a decoded ``%0A`` or ``%C3%A9`` goes upstream encoded
again (upper-case hex) and a decoded unreserved character (``%41``) goes as itself.

Strings here hold one character per byte (code points 0-255), as Lua strings do.
"""

from __future__ import annotations

import re

RESERVED = frozenset(map(ord, "!*'();:@&=+$,/?%#[]"))
_TRIPLET = re.compile(r"%([0-9A-Fa-f]{2})")
_UNSAFE = re.compile(r"[^!#$&'()*+,/:;=?@\[\]A-Za-z0-9\-_.~%]")


def _decode(match: re.Match[str]) -> str:
    value = int(match.group(1), 16)
    return match.group(0).upper() if value in RESERVED else chr(value)


def normalize(uri: str, merge_slashes: bool = True) -> str:
    """K:kong/tools/uri.lua ``normalize``, step for step."""
    if uri in ("", "/"):
        return uri
    if "%" in uri:
        uri = _TRIPLET.sub(_decode, uri)
    if "." not in uri and (not merge_slashes or "//" not in uri):
        return uri
    output: list[str] = []
    while uri:
        if uri == "/.":
            uri = "/"
        elif uri == "/..":
            uri = "/"
            if output:
                output.pop()
        elif uri in (".", ".."):
            uri = ""
        elif uri.startswith("../"):
            uri = uri[3:]
        elif uri.startswith(("./", "/./")):
            uri = uri[2:]
        elif uri.startswith("/../"):
            uri = uri[3:]
            if output:
                output.pop()
        elif merge_slashes and uri.startswith("//"):
            uri = uri[1:]
        else:
            end = uri.find("/", 1)
            if end == -1:
                output.append(uri)
                uri = ""
            else:
                output.append(uri[:end])
                uri = uri[end:]
    return "".join(output)


def escape(uri: str) -> str:
    """K:kong/tools/uri.lua ``escape``: ``%XX`` for every byte outside the safe set."""
    return _UNSAFE.sub(lambda m: f"%{ord(m.group(0)):02X}", uri)


def _sanitize_postfix(postfix: str) -> str:
    """K:kong/router/utils.lua ``sanitize_uri_postfix``."""
    if postfix in (".", ".."):
        return ""
    if postfix.startswith("./"):
        return postfix[2:]
    if postfix.startswith("../"):
        return postfix[3:]
    return postfix


def upstream_path(path: str, prefix: str, strip_path: bool) -> str:
    """K:kong/router/utils.lua ``get_upstream_uri_v0`` for a service without a path
    (``upstream_base`` "/", the only kind the local gateway accepts)."""
    if not strip_path:
        return path
    postfix = _sanitize_postfix(path[len(prefix) :])
    if postfix == "":
        return "/"
    return postfix if postfix.startswith("/") else "/" + postfix
