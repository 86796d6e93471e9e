"""Display filenames, cleaned exactly as api.md says, and the header that carries them back.

A filename is shown to people and never used to build a path: storage keys come from generated
ids only (see :mod:`svc_files.storage`).
"""

from __future__ import annotations

import unicodedata
from urllib.parse import quote, unquote

MAX_BYTES = 255
FALLBACK = "file"
# RFC 5987 attr-char beyond ALPHA / DIGIT (which quote() always keeps)
_ATTR_CHARS = "!#$&+-.^_`|~"


def clean_filename(raw: str | None) -> str:
    """Percent-decoded (RFC 7578 §4.2), reduced to its last path segment (``/`` and ``\\``),
    Unicode Cc and Cf removed, cut to 255 UTF-8 bytes keeping its extension; ``file`` when
    nothing is left. A dot segment (``.``, ``..``) is no name either: ``file``."""
    if not raw:
        return FALLBACK
    # Header bytes that were not UTF-8 reach us as lone surrogates: make them U+FFFD.
    name = raw.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    name = unquote(name, errors="replace")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch) not in ("Cc", "Cf", "Cs"))
    name = _cut(name, MAX_BYTES)
    if name in ("", ".", ".."):
        return FALLBACK
    return name


def _cut(name: str, limit: int) -> str:
    if len(name.encode("utf-8")) <= limit:
        return name
    dot = name.rfind(".")
    extension = name[dot:] if dot > 0 else ""
    room = limit - len(extension.encode("utf-8"))
    if not extension or room <= 0:
        return _prefix(name, limit)
    return _prefix(name[:dot], room) + extension


def _prefix(text: str, limit: int) -> str:
    """The longest prefix of ``text`` that fits in ``limit`` UTF-8 bytes (whole characters)."""
    return text.encode("utf-8")[:limit].decode("utf-8", "ignore")


def content_disposition(filename: str) -> str:
    """RFC 6266 ``attachment`` with the name as an RFC 5987 ``filename*`` (UTF-8)."""
    return f"attachment; filename*=UTF-8''{quote(filename, safe=_ATTR_CHARS)}"
