"""The tus 1.0.0 protocol's headers (tus.io, "Resumable upload protocol 1.0.x"): what a request
must carry, how its values parse, and the problems api.md names for them."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import email.utils
import functools
import re
from collections.abc import Awaitable, Callable

from aiohttp import web

from svc_core import BadRequest, Conflict, Problem, UnsupportedMediaType, ValidationFailed

VERSION = "1.0.0"
EXTENSIONS = "creation,creation-with-upload,termination,expiration"
CHUNK_TYPE = "application/offset+octet-stream"
_DECIMAL = re.compile(r"\A[0-9]+\Z")
_KEY = re.compile(r"\A[^\s,]+\Z")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class VersionUnsupported(Problem):
    status = 412
    code = "tus_version_unsupported"

    def default_detail(self) -> str:
        return "Send Tus-Resumable: 1.0.0."


class UploadLengthInvalid(BadRequest):
    code = "upload_length_invalid"


class UploadMetadataInvalid(BadRequest):
    code = "upload_metadata_invalid"


class OffsetMismatch(Conflict):
    code = "upload_offset_mismatch"


class UploadComplete(Conflict):
    code = "upload_complete"

    def default_detail(self) -> str:
        return "The upload is finished; delete the file instead."


class ChunkTypeInvalid(UnsupportedMediaType):
    def default_detail(self) -> str:
        return f"Send the bytes as Content-Type: {CHUNK_TYPE}."


def require_version(request: web.Request) -> None:
    """412 unless the request speaks tus 1.0.0 (every request but ``OPTIONS``)."""
    if request.method != "OPTIONS" and request.headers.get("Tus-Resumable") != VERSION:
        raise VersionUnsupported(headers={"Tus-Version": VERSION})


def speaks_tus(handler: Handler) -> Handler:
    """Every response carries ``Tus-Resumable``; every request but ``OPTIONS`` must too."""

    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            require_version(request)
            response = await handler(request)
        except Problem as problem:
            problem.headers.setdefault("Tus-Resumable", VERSION)
            raise
        response.headers["Tus-Resumable"] = VERSION
        return response

    return wrapped


def upload_length(request: web.Request, *, limit: int) -> int:
    """``Upload-Length``: 400 absent / not decimal / deferred, 413 past the limit, 422 zero."""
    if "Upload-Defer-Length" in request.headers:
        raise UploadLengthInvalid("Upload-Defer-Length is not supported; send Upload-Length.")
    raw = request.headers.get("Upload-Length")
    if raw is None or not _DECIMAL.match(raw):
        raise UploadLengthInvalid("Send Upload-Length: the file's size in bytes, in decimal.")
    length = int(raw)
    if length > limit:
        from svc_files.domain import FileTooLarge

        raise FileTooLarge(limit)
    if length == 0:
        raise ValidationFailed.single("Upload-Length", "The file is empty.")
    return length


def upload_offset(request: web.Request) -> int:
    raw = request.headers.get("Upload-Offset")
    if raw is None or not _DECIMAL.match(raw):
        raise OffsetMismatch("Send Upload-Offset: the server's offset, from HEAD.")
    return int(raw)


def metadata(request: web.Request) -> dict[str, str]:
    """``Upload-Metadata``: comma-separated ``key base64value`` (or a lone ``key``) pairs; keys
    unique, values base64 of UTF-8. Anything else is 400 ``upload_metadata_invalid``."""
    raw = request.headers.get("Upload-Metadata")
    if raw is None or not raw.strip():
        return {}
    pairs: dict[str, str] = {}
    for item in raw.split(","):
        fields = item.strip().split(" ")
        if len(fields) > 2 or not _KEY.match(fields[0]) or fields[0] in pairs:
            raise UploadMetadataInvalid("Upload-Metadata: expected unique `key base64value` pairs.")
        value = ""
        if len(fields) == 2:
            try:
                value = base64.b64decode(fields[1], validate=True).decode("utf-8")
            except (binascii.Error, ValueError):
                raise UploadMetadataInvalid(
                    f"Upload-Metadata: the value of {fields[0]!r} is not base64 of UTF-8 text."
                ) from None
        pairs[fields[0]] = value
    return pairs


def chunk_type(request: web.Request) -> None:
    if request.content_type != CHUNK_TYPE:
        raise ChunkTypeInvalid()


def http_date(value: dt.datetime) -> str:
    return email.utils.format_datetime(value.astimezone(dt.UTC), usegmt=True)
