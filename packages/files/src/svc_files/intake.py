"""``POST /files``: stream the one multipart part named ``file`` into storage.

The body is read from the socket part by part, never as a whole (so the chassis'
``client_max_size``, which applies to ``request.read()``/``post()``, does not limit it: the
file service's own limit does, counted while streaming). Each chunk is counted, hashed and
sniffed before it is written; past the limit (413) or once the bytes can be no allowed type
(415) the upload stops at once. Whatever goes wrong, including the client going away, the
temporary write is aborted and the journal entry forgotten before the error propagates.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
from typing import Any

from aiohttp import BodyPartReader, MultipartReader, hdrs, web
from aiohttp.helpers import parse_mimetype
from aiohttp.http_exceptions import HttpProcessingError

from svc_core import BadRequest, UnsupportedMediaType, ValidationFailed, new_id, utcnow
from svc_files.domain import Meter, Parts
from svc_files.filenames import clean_filename
from svc_files.storage import CHUNK

log = logging.getLogger("svc_files")


@dataclasses.dataclass(frozen=True)
class Received:
    file_id: str
    filename: str
    content_type: str
    meter: Meter
    encryption: dict[str, Any] | None


class NotMultipart(BadRequest):
    code = "not_multipart"

    def default_detail(self) -> str:
        return "Send the file as multipart/form-data with one part named file."


def _missing_file() -> ValidationFailed:
    return ValidationFailed.single("file", "Send one part named file.")


def _another_part() -> ValidationFailed:
    return ValidationFailed.single("_schema", "Send exactly one part, named file, and no other.")


# Upload bodies are stored byte for byte as they stream: a Content-Encoding other than identity
# is refused (api.md "bodies": decoded as a whole, or refused with 415), never decoded on the fly.
DECODED = frozenset({"identity"})


def check_content_encoding(request: web.Request) -> None:
    """415 ``unsupported_content_encoding`` for a coding the server would not decode (or a
    chain of several), rather than storing the encoded bytes as if they were the file."""
    raw = request.headers.get(hdrs.CONTENT_ENCODING)
    if raw is None:
        return
    codings = [c.strip().lower() for c in raw.split(",") if c.strip()]
    if len(codings) > 1 or (codings and codings[0] not in DECODED):
        raise UnsupportedMediaType(
            f"Content-Encoding {raw!r} is not supported on uploads; send the bytes as they are.",
            code="unsupported_content_encoding",
        )


async def _reader(request: web.Request) -> MultipartReader:
    mimetype = parse_mimetype(request.headers.get("Content-Type", ""))
    if (mimetype.type, mimetype.subtype) != (
        "multipart",
        "form-data",
    ) or not mimetype.parameters.get("boundary"):
        raise NotMultipart()
    try:
        return await request.multipart()
    except (ValueError, AssertionError, KeyError):
        raise NotMultipart() from None


# framing errors, and a body whose Content-Encoding does not decode (aiohttp decodes gzip,
# deflate, br as it reads)
_MALFORMED = (ValueError, AssertionError, HttpProcessingError, web.RequestPayloadError)
_FILENAME_STAR = re.compile(r";\s*filename\*\s*=", re.IGNORECASE)
_FILENAME = re.compile(r';\s*filename\s*=\s*(?:"([^"]*)"|([^\s;]+))', re.IGNORECASE)


def _malformed() -> BadRequest:
    return BadRequest("The multipart body is malformed.", code="malformed_multipart")


async def _next(reader: MultipartReader) -> BodyPartReader | MultipartReader | None:
    try:
        part: BodyPartReader | MultipartReader | None = await reader.next()
        return part
    except _MALFORMED:
        raise _malformed() from None


def part_filename(part: BodyPartReader) -> str | None:
    """The filename as the client wrote it. ``filename*`` (RFC 5987) wins when present; a
    quoted ``filename`` is taken as is, backslashes included: browsers send Windows paths
    unescaped and percent-encode only ``"`` and line breaks (RFC 7578 §4.2, WHATWG), so a
    backslash is a path separator here, not a quoted-string escape."""
    disposition = part.headers.get(hdrs.CONTENT_DISPOSITION, "")
    if _FILENAME_STAR.search(disposition):
        return part.filename
    match = _FILENAME.search(disposition)
    if match is None:
        return None
    return match.group(1) if match.group(1) is not None else match.group(2)


async def receive(request: web.Request, parts: Parts) -> Received:
    """The accepted, committed upload (its bytes are in storage, its metadata not yet)."""
    check_content_encoding(request)
    reader = await _reader(request)
    part = await _next(reader)
    if part is None:
        raise _missing_file()
    if not isinstance(part, BodyPartReader) or part.name != "file":
        raise _another_part()
    filename = clean_filename(part_filename(part))
    file_id = new_id()
    meter = Meter(parts.max_size)
    await parts.files.journal_begin(file_id, now=utcnow())
    try:
        writer, encryption = await parts.vault.create(file_id)
        try:
            while chunk := await _read_chunk(part):
                meter.feed(chunk)  # 413 / 415 before the chunk is stored
                await writer.write(chunk)
            if meter.size == 0:
                raise ValidationFailed.single("file", "The file is empty.")
            content_type = meter.content_type(filename)
            if await _next(reader) is not None:
                raise _another_part()
            await writer.commit()
        except BaseException:
            await shielded(writer.abort())
            raise
    except BaseException:
        await shielded(parts.files.journal_end(file_id))
        raise
    return Received(file_id, filename, content_type, meter, encryption)


async def _read_chunk(part: BodyPartReader) -> bytes:
    try:
        return await part.read_chunk(CHUNK)
    except _MALFORMED:
        raise _malformed() from None


async def shielded(cleanup: object) -> None:
    """Run a cleanup to its end even when the request's task is being cancelled (a client that
    went away): nothing must stay behind."""
    assert asyncio.iscoroutine(cleanup)
    task = asyncio.ensure_future(cleanup)
    try:
        await asyncio.shield(task)
    except Exception:
        # the original error is what the client hears about; this one goes to the log (the
        # startup sweep and the expiry remove what a failed cleanup left)
        log.exception("cleanup failed")
