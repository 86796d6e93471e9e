"""The storage backend as the service uses it: stored bytes encrypted at rest when a master key
is active (``encryption``), passed through as they are otherwise.

Whether an object is encrypted is the object's own record, never the current setting: a file's
metadata (``encryption``) or an upload's state says which master key wrapped its data key, so
files stored before encryption was turned on stay readable, and an upload keeps one format
from its first piece to its last.

- **Files** are sealed as they stream (:class:`SealingWriter`); a download reads the stored range
  that holds the chunks its ``Range`` touches and decrypts only those (at most two chunks of
  plaintext in memory). The first chunk is opened before anything is sent, so a missing key or
  a tampered first chunk is a clean 500; a later chunk that fails cuts the response short (the
  client sees fewer bytes than ``Content-Length``), never unauthenticated bytes.
- **Resumable uploads**: each piece (one ``PATCH``) is a sealed stream of its own, a random salt
  first; its key is derived from the upload's data key and that salt, and its last chunk is
  sealed at commit, whatever its length, so an interrupted ``PATCH`` keeps every byte that
  arrived. The last ``PATCH`` copies the pieces into the file through a fresh file key (the copy
  that checks size, sha256 and type, which happens anyway).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from aiohttp import web

from svc_core.errors import InternalError
from svc_files.encryption import (
    SALT,
    TAG,
    Keyring,
    KeyUnavailable,
    Record,
    Sealer,
    Tampered,
    chunk_span,
    plain_size,
)
from svc_files.storage import Body, Storage, Writer

log = logging.getLogger("svc_files.vault")


class StoredBytesUnreadable(InternalError):
    """A 500 whose reason (a master key not configured, bytes that fail authentication) is in
    the server's log, never in the answer."""


class SealingWriter:
    """A :class:`Writer` that seals what it is given, chunk by chunk, into another writer. The
    last full chunk stays buffered until ``commit``: only then is it known to be the last."""

    def __init__(self, inner: Writer, sealer: Sealer, header: bytes = b"") -> None:
        self._inner = inner
        self._sealer = sealer
        self._header = header
        self._buffer = bytearray()
        self._index = 0

    async def write(self, chunk: bytes) -> None:
        self._buffer += chunk
        size = self._sealer.chunk
        if len(self._buffer) <= size:
            return
        out = bytearray(self._header)
        self._header = b""
        taken = 0
        while len(self._buffer) - taken > size:
            plain = bytes(self._buffer[taken : taken + size])
            out += self._sealer.seal(self._index, plain, last=False)
            self._index += 1
            taken += size
        del self._buffer[:taken]
        await self._inner.write(bytes(out))

    async def commit(self) -> None:
        last = self._sealer.seal(self._index, bytes(self._buffer), last=True)
        await self._inner.write(self._header + last)
        self._header, self._buffer = b"", bytearray()
        await self._inner.commit()

    async def abort(self) -> None:
        self._buffer = bytearray()
        await self._inner.abort()


class _Reader:
    """Exact-size reads over a stream of chunks of any size."""

    def __init__(self, source: AsyncIterator[bytes]) -> None:
        self._source = source
        self._buffer = bytearray()
        self._done = False

    async def read(self, size: int) -> bytes:
        """``size`` bytes, fewer only at the end of the stream."""
        while len(self._buffer) < size and not self._done:
            try:
                self._buffer += await anext(self._source)
            except StopAsyncIteration:
                self._done = True
        out = bytes(self._buffer[:size])
        del self._buffer[:size]
        return out


async def _opened_range(
    source: AsyncIterator[bytes], sealer: Sealer, *, size: int, start: int, length: int
) -> AsyncGenerator[bytes, None]:
    """The plaintext ``[start, start + length)`` of a sealed file of ``size`` bytes, from the
    stored range :func:`chunk_span` names."""
    chunk = sealer.chunk
    first, last, _offset, _stored = chunk_span(start, length, size, chunk)
    final = max(0, -(-size // chunk) - 1)
    reader = _Reader(source)
    skip, left = start - first * chunk, length
    for index in range(first, last + 1):
        piece = await reader.read(chunk + TAG)
        if len(piece) < TAG:
            raise Tampered(f"the stored bytes end before chunk {index}")
        plain = sealer.open(index, piece, last=index == final)[skip : skip + left]
        skip, left = 0, left - len(plain)
        yield plain
    if left:
        raise Tampered("the stored bytes are shorter than the file")


async def _opened_stream(source: AsyncIterator[bytes], sealer: Sealer) -> AsyncIterator[bytes]:
    """A whole sealed stream of unknown length (a piece of an upload), chunk by chunk: a chunk
    is the last when nothing follows it, and it must have been sealed as the last."""
    reader = _Reader(source)
    size = sealer.chunk + TAG
    piece = await reader.read(size)
    index = 0
    while True:
        following = await reader.read(size) if len(piece) == size else b""
        yield sealer.open(index, piece, last=not following)
        if not following:
            return
        piece, index = following, index + 1


class SealedBody:
    """A download's plaintext, its first piece already opened (see the module's docstring)."""

    def __init__(self, first: bytes, rest: AsyncGenerator[bytes, None], what: str) -> None:
        self._first = first
        self._rest = rest
        self._what = what

    async def send(self, request: web.Request, response: web.StreamResponse) -> None:
        await response.write(self._first)
        try:
            async for plain in self._rest:
                await response.write(plain)
        except Tampered as exc:
            log.error("stored bytes refused mid-download: %s: %s", self._what, exc)
            raise ConnectionResetError("stored bytes failed authentication") from None

    async def close(self) -> None:
        await self._rest.aclose()


class Vault:
    def __init__(self, storage: Storage, keyring: Keyring) -> None:
        self.storage = storage
        self.keyring = keyring

    def _data_key(self, context: str, record: Record) -> bytes:
        try:
            return self.keyring.data_key(context, record)
        except KeyUnavailable as exc:
            log.error(
                "cannot decrypt %s: its master key %r is not in FILES_ENCRYPTION_KEYS "
                "(keep every key that still wraps a data key listed; docs/operations.md)",
                context,
                exc.key_id,
            )
            raise StoredBytesUnreadable() from None
        except Tampered as exc:
            log.error("refused %s: %s", context, exc)
            raise StoredBytesUnreadable() from None

    # --- files ------------------------------------------------------------------------------

    async def create(self, file_id: str) -> tuple[Writer, Record | None]:
        """A writer for the file's bytes and the record its metadata keeps (None: stored as
        they are)."""
        writer = await self.storage.create(file_id)
        if not self.keyring.encrypts:
            return writer, None
        context = f"file/{file_id}"
        data_key, record = self.keyring.new_data_key(context)
        return SealingWriter(writer, Sealer(data_key, context, record["chunk"])), record

    async def open(self, file: dict[str, Any], start: int, length: int) -> Body:
        """The plaintext ``[start, start + length)`` of a file, ready to send; raises
        :class:`~svc_files.storage.Missing`, or :class:`StoredBytesUnreadable` (500)."""
        record = file.get("encryption")
        if record is None:
            return await self.storage.open(file["_id"], start, length)
        context = f"file/{file['_id']}"
        sealer = Sealer(self._data_key(context, record), context, record["chunk"])
        _first, _last, offset, stored = chunk_span(start, length, file["size"], sealer.chunk)
        source = self.storage.read(file["_id"], offset, stored)
        chunks = _opened_range(source, sealer, size=file["size"], start=start, length=length)
        try:
            first = await anext(chunks)
        except Tampered as exc:
            await chunks.aclose()
            log.error("refused %s: %s", context, exc)
            raise StoredBytesUnreadable() from None
        except BaseException:
            await chunks.aclose()
            raise
        return SealedBody(first, chunks, context)

    # --- resumable uploads ------------------------------------------------------------------

    def new_upload_record(self, upload_id: str) -> Record | None:
        """The record a new upload keeps (its pieces' keys derive from it), or None."""
        if not self.keyring.encrypts:
            return None
        return self.keyring.new_data_key(f"upload/{upload_id}")[1]

    def _segment_sealer(self, upload: dict[str, Any], offset: int, salt: bytes) -> Sealer:
        upload_key = self._data_key(f"upload/{upload['_id']}", upload["encryption"])
        return Sealer.for_segment(upload_key, f"upload/{upload['_id']}/{offset}", salt)

    async def segment(self, upload: dict[str, Any], offset: int) -> Writer:
        writer = await self.storage.segment(upload["_id"], offset)
        if upload.get("encryption") is None:
            return writer
        salt = os.urandom(SALT)
        return SealingWriter(writer, self._segment_sealer(upload, offset, salt), header=salt)

    async def segments(self, upload: dict[str, Any]) -> list[tuple[int, int]]:
        """(offset, plaintext size) of every piece, in order."""
        found = await self.storage.segments(upload["_id"])
        record = upload.get("encryption")
        if record is None:
            return found
        return [(offset, plain_size(stored - SALT, record["chunk"])) for offset, stored in found]

    async def read_segment(self, upload: dict[str, Any], offset: int) -> AsyncIterator[bytes]:
        source = self.storage.read_segment(upload["_id"], offset)
        async with contextlib.aclosing(source):  # type: ignore[type-var]
            if upload.get("encryption") is None:
                async for chunk in source:
                    yield chunk
                return
            reader = _Reader(source)
            salt = await reader.read(SALT)
            sealer = self._segment_sealer(upload, offset, salt)

            async def rest() -> AsyncIterator[bytes]:
                while chunk := await reader.read(64 * 1024):
                    yield chunk

            try:
                async for plain in _opened_stream(rest(), sealer):
                    yield plain
            except Tampered as exc:
                log.error("refused a piece of upload %s at %d: %s", upload["_id"], offset, exc)
                raise StoredBytesUnreadable() from None
