"""Conditional and range requests on a download, decided in api.md's order.

``If-None-Match`` is decided first (304), then ``Range``: one byte range (RFC 9110 §14.1.2)
gives 206, an unsatisfiable one 416, and anything else (several ranges, another unit, a
malformed value, an ``If-Range`` that does not name the current ETag) the whole file.
"""

from __future__ import annotations

import dataclasses
import re

# ASCII digits only (RFC 9110's DIGIT; ``\d`` would take other scripts' digits too)
_SPEC = re.compile(r"\A([0-9]*)-([0-9]*)\Z")
#: a position past any file: longer numbers are read as this, never parsed whole (Python
#: refuses to parse more than 4300 digits, and a client may send that many)
_FAR = 10**18


def _position(digits: str) -> int:
    digits = digits.lstrip("0") or "0"
    return _FAR if len(digits) > 18 else int(digits)


@dataclasses.dataclass(frozen=True, slots=True)
class ByteRange:
    start: int
    length: int

    @property
    def end(self) -> int:
        """The last byte's position (inclusive), as ``Content-Range`` writes it."""
        return self.start + self.length - 1

    def content_range(self, size: int) -> str:
        return f"bytes {self.start}-{self.end}/{size}"


class Unsatisfiable(Exception):
    """The one range asked for starts past the end (416)."""


def etag_matches(header: str | None, etag: str) -> bool:
    """``If-None-Match``: weak comparison, ``*`` matches any current representation."""
    if header is None:
        return False
    for candidate in header.split(","):
        candidate = candidate.strip()
        if candidate == "*":
            return True
        if candidate.startswith("W/"):
            candidate = candidate[2:]
        if candidate == etag:
            return True
    return False


def requested_range(
    header: str | None, size: int, *, if_range: str | None, etag: str
) -> ByteRange | None:
    """The one range to send, or ``None`` for the whole file; raises :class:`Unsatisfiable`."""
    if header is None:
        return None
    if if_range is not None and if_range.strip() != etag:
        return None  # the client's copy is another version: send it all
    unit, _, specs = header.partition("=")
    if unit.strip().lower() != "bytes":
        return None
    parts = [part.strip() for part in specs.split(",") if part.strip()]
    if len(parts) != 1:
        return None  # several ranges: the whole file (api.md)
    match = _SPEC.match(parts[0])
    if match is None or match.group(0) == "-":
        return None
    first, last = match.groups()
    if not first:  # suffix: the last N bytes
        suffix = _position(last)
        if suffix == 0 or size == 0:
            raise Unsatisfiable
        length = min(suffix, size)
        return ByteRange(size - length, length)
    start = _position(first)
    end = _position(last) if last else size - 1
    if last and end < start:
        return None  # invalid: ignored, as RFC 9110 allows
    if start >= size:
        raise Unsatisfiable
    end = min(end, size - 1)
    return ByteRange(start, end - start + 1)
