"""The rules: what an accepted file is, how it is counted while it streams, how it is served,
and what a crash may leave behind.

Order of writes: bytes (committed in storage) before the metadata that points at them; on
delete, bytes before metadata; so no metadata ever points at nothing. An upload is journaled
before its first byte and forgotten once its metadata exists or it was discarded, so the startup
sweep knows exactly which stored bytes may be orphans.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import logging
from typing import Any

from svc_core import PayloadTooLarge, UnsupportedMediaType
from svc_files.repository import FileRepository, UploadRepository
from svc_files.settings import FilesSettings
from svc_files.sniff import TEXT_TYPES, Sniffer, TypeNotAllowed
from svc_files.storage import Storage
from svc_files.vault import Vault

log = logging.getLogger("svc_files")


@dataclasses.dataclass(frozen=True)
class Parts:
    """The service's parts, built once at startup (``svc_files.parts.PARTS``)."""

    settings: FilesSettings
    storage: Storage
    files: FileRepository
    uploads: UploadRepository
    #: the storage as reads and writes of bytes go through it (encrypted at rest when on)
    vault: Vault

    @property
    def max_size(self) -> int:
        return self.settings.max_size


class FileTooLarge(PayloadTooLarge):
    def __init__(self, limit: int) -> None:
        super().__init__(f"The file is larger than the limit of {limit} bytes.")


class FileTypeNotAllowed(UnsupportedMediaType):
    def default_detail(self) -> str:
        return (
            "The file's content is not an allowed type (PNG, JPEG, GIF, WebP, PDF, ZIP, "
            "or UTF-8 text: plain, CSV or JSON)."
        )


class Meter:
    """Counts, hashes and sniffs the bytes as they stream; refuses past the limit at once."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.size = 0
        self._sha256 = hashlib.sha256()
        self._sniffer = Sniffer()

    def feed(self, chunk: bytes) -> None:
        """Raises :class:`FileTooLarge` at the first byte past the limit and
        :class:`FileTypeNotAllowed` as soon as the bytes can be no allowed type."""
        self.size += len(chunk)
        if self.size > self.limit:
            raise FileTooLarge(self.limit)
        self._sha256.update(chunk)
        self._sniffer.feed(chunk)
        if self._sniffer.refused:
            raise FileTypeNotAllowed()

    @property
    def sha256(self) -> str:
        return self._sha256.hexdigest()

    def content_type(self, filename: str) -> str:
        try:
            return self._sniffer.content_type(filename)
        except TypeNotAllowed:
            raise FileTypeNotAllowed() from None


def new_file(
    *,
    file_id: str,
    owner: str,
    filename: str,
    meter: Meter,
    content_type: str,
    now: dt.datetime,
    encryption: dict[str, Any] | None,
) -> dict[str, Any]:
    """The metadata; size and sha256 are the plaintext's, ``encryption`` the wrapped data key
    (never in a public shape)."""
    file = {
        "_id": file_id,
        "owner": owner,
        "filename": filename,
        "content_type": content_type,
        "size": meter.size,
        "sha256": meter.sha256,
        "created_at": now,
    }
    if encryption is not None:
        file["encryption"] = encryption
    return file


def header_content_type(content_type: str) -> str:
    """The ``Content-Type`` a download carries: text types say their charset."""
    return f"{content_type}; charset=utf-8" if content_type in TEXT_TYPES else content_type


def etag(file: dict[str, Any]) -> str:
    return f'"{file["sha256"]}"'


async def sweep(parts: Parts, *, grace: float, now: dt.datetime) -> None:
    """Remove what a crash left: journaled uploads older than ``grace`` whose metadata never
    got written (their bytes, committed or not), then the backend's stale temporaries."""
    cutoff = now - dt.timedelta(seconds=grace)
    orphans = 0
    for file_id in await parts.files.journal_before(cutoff):
        if not await parts.files.exists(file_id):
            await parts.storage.delete(file_id)
            orphans += 1
        await parts.files.journal_end(file_id)
    temporaries = await parts.storage.sweep(grace)
    if orphans or temporaries:
        log.warning(
            "swept what a crash left",
            extra={"orphans": orphans, "temporaries": temporaries},
        )
