"""Where a file's bytes live, behind one small interface with two backends.

- ``local`` (the default): files under a root directory, sharded by id; a write goes to a
  temporary name and is moved into place only when it is complete and accepted.
- ``s3``: any S3-compatible store through aiobotocore; a write is a multipart upload (a single
  PUT when small), invisible until completed.

Keys are file ids the service generated (:func:`check_key`), never anything a client sent.
A write that is not committed leaves nothing behind once aborted; ``sweep`` removes what a
crash left (temporaries older than the grace period).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Protocol

from aiohttp import web

_KEY = re.compile(r"\A[0-9a-f]{16,64}\Z")


class StorageError(Exception):
    """The backend failed (disk, network, store)."""


class Missing(Exception):
    """No bytes under that key."""


def check_key(key: str) -> str:
    """Only generated ids (lower-case hex) are keys: nothing a client sent reaches a path."""
    if not _KEY.match(key):
        raise ValueError(f"not a storage key: {key!r}")
    return key


class Writer(Protocol):
    """One file being written. ``commit`` makes it visible under its key; ``abort`` (safe to
    call at any time, also after a failed ``commit``) removes every trace of it."""

    async def write(self, chunk: bytes) -> None: ...

    async def commit(self) -> None: ...

    async def abort(self) -> None: ...


class Body(Protocol):
    """An opened byte range of a stored file. ``close`` it whether or not it was sent."""

    async def send(self, request: web.Request, response: web.StreamResponse) -> None:
        """Write the bytes to a prepared ``response``."""

    async def close(self) -> None: ...


class Storage(Protocol):
    name: str

    async def start(self) -> None:
        """Open clients, create directories; no sweeping (see :meth:`sweep`)."""

    async def close(self) -> None: ...

    async def ping(self) -> None:
        """Raise when the backend cannot be reached (readiness)."""

    async def create(self, key: str) -> Writer: ...

    def read(self, key: str, start: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        """The bytes ``[start, start + length)`` in chunks; raises :class:`Missing`."""
        ...

    async def open(self, key: str, start: int, length: int) -> Body:
        """The bytes ``[start, start + length)``, ready to send; raises :class:`Missing`."""
        ...

    async def exists(self, key: str) -> bool: ...

    async def delete(self, key: str) -> None:
        """Remove the bytes; no error when there are none."""

    async def sweep(self, older_than: float) -> int:
        """Remove temporaries (unfinished writes) last touched more than ``older_than``
        seconds ago; return how many."""
        ...

    async def keys(self) -> list[str]:
        """Every committed key (tests and maintenance; not used on a request path)."""
        ...

    async def temporaries(self) -> int:
        """How many unfinished writes exist now (tests and maintenance)."""
        ...

    # A resumable upload's bytes are pieces ("segments"), one per write, named by the offset
    # they start at, visible to every instance; the upload's state (in MongoDB) says how many
    # bytes count. Once complete they are copied, in order, into the file's own key.

    async def segment(self, upload_id: str, offset: int) -> Writer: ...

    async def segments(self, upload_id: str) -> list[tuple[int, int]]:
        """(offset, size) of every piece, in order."""
        ...

    def read_segment(self, upload_id: str, offset: int) -> AsyncIterator[bytes]: ...

    async def drop_segments(self, upload_id: str, *, from_offset: int = 0) -> None:
        """Remove the pieces starting at or after ``from_offset``."""


CHUNK = 256 * 1024


def open_storage(settings: object) -> Storage:
    """The backend the settings name (``FILES_STORAGE``)."""
    from svc_files.settings import FilesSettings

    assert isinstance(settings, FilesSettings)
    if settings.storage == "local":
        from svc_files.storage.local import LocalStorage

        return LocalStorage(settings.local_root)
    if settings.storage == "s3":
        from svc_files.storage.s3 import S3Storage

        return S3Storage(
            bucket=settings.s3_bucket,
            prefix=settings.s3_prefix,
            endpoint_url=settings.s3_endpoint_url or None,
            region=settings.s3_region,
            access_key_id=settings.s3_access_key_id or None,
            secret_access_key=settings.s3_secret_access_key or None,
            part_size=settings.s3_part_size,
        )
    raise ValueError(f"FILES_STORAGE: unknown backend {settings.storage!r}")
