"""Encryption at rest: envelope encryption with AES-256-GCM, in fixed-size chunks (no I/O here).

- A **master key** (32 bytes, from ``FILES_ENCRYPTION_KEYS``, named by a key id) only wraps data
  keys; it never touches file bytes. ``FILES_ENCRYPTION_KEY_ID`` names the one new files use;
  the others stay listed so older files still open.
- Each stored object has its own random 32-byte **data key**, wrapped with AES-GCM by the active
  master key (the object's id is the wrap's associated data: a wrapped key cannot be moved to
  another file). The record ``{"alg", "key_id", "wrapped", "chunk"}`` lives in the metadata.
- The plaintext is cut into chunks of ``chunk`` bytes (64 KiB); chunk ``i`` is stored as
  ``AES-GCM(data key, nonce = i, aad = context | i | last?)``, ciphertext then 16-byte tag. A data
  key seals one stream only, so a nonce never repeats under a key; the associated data binds the
  object and the position, so chunks cannot be swapped, moved between files or cut off at the
  end (the last chunk says it is last). A byte range needs only the chunks it touches.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import os
import re
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

ALG = "AES-256-GCM-chunked-v1"
CHUNK = 64 * 1024
TAG = 16
KEY_BYTES = 32
SALT = 16  # a segment's header: the salt of its own key
_KEY_ID = re.compile(r"\A[A-Za-z0-9._-]{1,64}\Z")

Record = dict[str, Any]


class MalformedKeys(ValueError):
    """``FILES_ENCRYPTION_KEYS`` does not parse; the message never holds key material."""


class KeyUnavailable(Exception):
    """A stored object names a master key that is not configured (any more)."""

    def __init__(self, key_id: str) -> None:
        super().__init__(key_id)
        self.key_id = key_id


class Tampered(Exception):
    """Stored bytes (or a wrapped key) failed authentication: changed, cut, moved or swapped."""


def parse_keys(text: str) -> dict[str, bytes]:
    """``id:base64`` entries separated by commas, spaces or line breaks (a file's lines);
    ``#`` starts a comment line. Each key is 32 bytes (AES-256): ``openssl rand -base64 32``."""
    keys: dict[str, bytes] = {}
    lines = [line for line in text.splitlines() if not line.strip().startswith("#")]
    entries = [e for e in re.split(r"[\s,]+", "\n".join(lines)) if e]
    for number, entry in enumerate(entries, start=1):
        key_id, sep, encoded = entry.partition(":")
        if not sep or not _KEY_ID.match(key_id):
            raise MalformedKeys(
                f"entry {number}: expected key-id:base64 (a key id of letters, digits, . _ -)"
            )
        try:
            key = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise MalformedKeys(f"key {key_id!r}: not base64") from None
        if len(key) != KEY_BYTES:
            raise MalformedKeys(f"key {key_id!r}: {len(key)} bytes, expected {KEY_BYTES}")
        if key_id in keys:
            raise MalformedKeys(f"key {key_id!r}: listed twice")
        keys[key_id] = key
    return keys


@dataclasses.dataclass(frozen=True)
class Keyring:
    """The master keys by id and the active one (``None``: new objects are not encrypted)."""

    keys: Mapping[str, bytes]
    active: str | None

    @property
    def encrypts(self) -> bool:
        return self.active is not None

    def new_data_key(self, context: str) -> tuple[bytes, Record]:
        """A fresh data key for the object ``context`` names, and its record (wrapped by the
        active master key)."""
        assert self.active is not None
        data_key = AESGCM.generate_key(bit_length=8 * KEY_BYTES)
        nonce = os.urandom(12)
        wrapped = AESGCM(self.keys[self.active]).encrypt(
            nonce, data_key, _wrap_aad(context, self.active)
        )
        record = {
            "alg": ALG,
            "key_id": self.active,
            "wrapped": base64.b64encode(nonce + wrapped).decode(),
            "chunk": CHUNK,
        }
        return data_key, record

    def data_key(self, context: str, record: Record) -> bytes:
        """The data key of a record; :class:`KeyUnavailable` when its master key is not
        configured, :class:`Tampered` when the wrapped key does not authenticate."""
        if record.get("alg") != ALG:
            raise Tampered(f"unknown encryption {record.get('alg')!r}")
        key_id = str(record["key_id"])
        master = self.keys.get(key_id)
        if master is None:
            raise KeyUnavailable(key_id)
        try:  # a damaged record (not base64, too short) is refused like a forged one
            blob = base64.b64decode(str(record["wrapped"]), validate=True)
            return AESGCM(master).decrypt(blob[:12], blob[12:], _wrap_aad(context, key_id))
        except (InvalidTag, binascii.Error, ValueError, KeyError):
            raise Tampered(f"the data key of {context} does not authenticate") from None

    def rewrap(self, context: str, record: Record) -> Record:
        """The same data key wrapped by the active master key (rotation without touching the
        stored bytes)."""
        data_key = self.data_key(context, record)
        assert self.active is not None
        nonce = os.urandom(12)
        wrapped = AESGCM(self.keys[self.active]).encrypt(
            nonce, data_key, _wrap_aad(context, self.active)
        )
        return {
            **record,
            "key_id": self.active,
            "wrapped": base64.b64encode(nonce + wrapped).decode(),
        }


def _wrap_aad(context: str, key_id: str) -> bytes:
    return b"svc-files key\0" + context.encode() + b"\0" + key_id.encode()


class Sealer:
    """Seals and opens the chunks of one stream (one data key, one ``context``)."""

    def __init__(self, key: bytes, context: str, chunk: int = CHUNK) -> None:
        self._aead = AESGCM(key)
        self._context = b"svc-files chunk\0" + context.encode() + b"\0"
        self.chunk = chunk

    @classmethod
    def for_segment(cls, upload_key: bytes, context: str, salt: bytes) -> Sealer:
        """A segment's own key, derived from its upload's data key and a fresh salt: pieces
        rewritten at the same offset (after a crash) never share a key, so never a nonce."""
        key = HKDF(
            algorithm=hashes.SHA256(), length=KEY_BYTES, salt=salt, info=b"svc-files segment"
        ).derive(upload_key)
        return cls(key, context)

    def _aad(self, index: int, last: bool) -> bytes:
        return self._context + index.to_bytes(8, "big") + (b"\1" if last else b"\0")

    def seal(self, index: int, plaintext: bytes, *, last: bool) -> bytes:
        return self._aead.encrypt(index.to_bytes(12, "big"), plaintext, self._aad(index, last))

    def open(self, index: int, sealed: bytes, *, last: bool) -> bytes:
        try:
            return self._aead.decrypt(index.to_bytes(12, "big"), sealed, self._aad(index, last))
        except InvalidTag:
            raise Tampered(f"chunk {index} does not authenticate") from None


def sealed_size(plain: int, chunk: int = CHUNK) -> int:
    """Stored bytes of ``plain`` plaintext bytes (an empty stream is one empty last chunk)."""
    return plain + TAG * max(1, -(-plain // chunk))


def plain_size(stored: int, chunk: int = CHUNK) -> int:
    """The inverse of :func:`sealed_size`."""
    chunks = max(1, -(-stored // (chunk + TAG)))
    return stored - TAG * chunks


def chunk_span(start: int, length: int, size: int, chunk: int = CHUNK) -> tuple[int, int, int, int]:
    """For the plaintext bytes ``[start, start + length)`` of a ``size``-byte file: the first and
    last chunk, and the stored range ``(offset, length)`` that holds them."""
    first, last = start // chunk, (start + length - 1) // chunk
    last_plain = min(chunk, size - last * chunk)
    offset = first * (chunk + TAG)
    end = last * (chunk + TAG) + last_plain + TAG
    return first, last, offset, end - offset
