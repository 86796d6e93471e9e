"""The type of an upload, from its bytes only (api.md's rules), decided while it streams.

Binary types by their signatures, read by puremagic (a maintained, pure-Python signature
database) from the first :data:`HEAD_BYTES`, with api.md's allowlist on top: a signature outside
it (an ELF executable, a tar, ...) is never accepted as that type. Anything without an allowed
signature must be text: valid UTF-8 with no NUL byte; then ``text/csv`` when the display name
ends in ``.csv``, else ``application/json`` when the whole text parses as JSON (RFC 8259, checked
incrementally by ijson so memory stays flat), else ``text/plain``.
"""

from __future__ import annotations

import codecs
from typing import Any

import ijson
import puremagic

#: every allowed signature sits in the first few bytes; a little more for puremagic's sake
HEAD_BYTES = 4096

BINARY_TYPES = frozenset(
    {"image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf", "application/zip"}
)
TEXT_TYPES = frozenset({"text/plain", "text/csv", "application/json"})
ALLOWED_TYPES = BINARY_TYPES | TEXT_TYPES
# Local file header, empty archive, spanned archive: ZIP containers (docx, xlsx, jar...) are zip.
_ZIP_SIGNATURES = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")


class TypeNotAllowed(Exception):
    """The bytes are none of the allowed types."""


def binary_type(head: bytes) -> str | None:
    """The allowed binary type whose signature ``head`` carries, if any."""
    if not head:
        return None
    try:
        matches = puremagic.magic_string(head)
    except (puremagic.PureError, ValueError):
        return None
    for match in matches:
        if match.mime_type in BINARY_TYPES and match.mime_type != "application/zip":
            return str(match.mime_type)
        if bytes(match.byte_match).startswith(_ZIP_SIGNATURES):
            return "application/zip"
    return None


class _Discard:
    """ijson's push parser sends every event here; none is kept."""

    def send(self, value: Any) -> None:
        return None


class Sniffer:
    """Feed the bytes in order; ``refused`` turns true as soon as they can no longer be an
    allowed type; ``content_type(filename)`` decides once the last byte is in."""

    def __init__(self, *, json: bool = True) -> None:
        self._head = bytearray()
        self._binary: str | None = None
        self._head_decided = False
        self._text = True
        self._decoder = codecs.getincrementaldecoder("utf-8")("strict")
        self._json: Any = ijson.basic_parse_coro(_Discard()) if json else None
        self._is_json = json

    # A resumable upload's bytes arrive over many requests, maybe at other instances: the early
    # refusal (head, binary type, UTF-8 so far) travels between them as a small state. JSON is
    # not tracked there; it is decided over the whole file once the last byte is in.

    def state(self) -> dict[str, Any]:
        pending, _flag = self._decoder.getstate()
        return {
            "head": bytes(self._head),
            "decided": self._head_decided,
            "binary": self._binary,
            "text": self._text,
            "pending": bytes(pending),
        }

    @classmethod
    def early(cls, state: dict[str, Any] | None = None) -> Sniffer:
        sniffer = cls(json=False)
        if state:
            sniffer._head = bytearray(state["head"])
            sniffer._head_decided = bool(state["decided"])
            sniffer._binary = state["binary"]
            sniffer._text = bool(state["text"])
            sniffer._decoder.setstate((bytes(state["pending"]), 0))
        return sniffer

    @property
    def refused(self) -> bool:
        return self._head_decided and self._binary is None and not self._text

    def feed(self, chunk: bytes) -> None:
        if not chunk:
            return
        if not self._head_decided:
            self._head += chunk[: HEAD_BYTES - len(self._head)]
            if len(self._head) >= HEAD_BYTES:
                self._decide_head()
        if self._binary is None and self._text:
            self._feed_text(chunk)

    def _decide_head(self) -> None:
        self._head_decided = True
        self._binary = binary_type(bytes(self._head))
        self._head = bytearray()

    def _feed_text(self, chunk: bytes) -> None:
        if b"\x00" in chunk:
            self._text = False
            return
        try:
            self._decoder.decode(chunk)
        except UnicodeDecodeError:
            self._text = False
            return
        if self._is_json and self._json is not None:
            try:
                self._json.send(chunk)
            except ijson.JSONError:
                self._is_json = False

    def content_type(self, filename: str) -> str:
        """The detected type; raises :class:`TypeNotAllowed`."""
        if not self._head_decided:
            self._decide_head()
        if self._binary is not None:
            return self._binary
        if self._text:
            try:
                self._decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                self._text = False
        if not self._text:
            raise TypeNotAllowed
        if filename.lower().endswith(".csv"):
            return "text/csv"
        if self._is_json and self._json is not None:
            try:
                self._json.close()
            except ijson.JSONError:
                self._is_json = False
        return "application/json" if self._is_json else "text/plain"
