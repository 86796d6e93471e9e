"""Thin handlers: the chassis has authenticated, loaded the caller's file or upload (404) and
checked the query (422); uploads read their own bodies (``raw_body``: streamed, never JSON).

Uploads (a multipart one, or the request that completes a tus upload) and deletes are audited
(svc_core.audit), one record each.

Downloads decide in api.md's order: the file (404), ``If-None-Match`` (304), then ``Range``
(206 / 416, or the whole file), and stream the bytes straight from storage.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from svc_core import (
    NotFound,
    RouteTable,
    audit,
    current_claims,
    prepare,
    query,
    resource,
    utcnow,
)
from svc_core.errors import RangeNotSatisfiable
from svc_files import domain, tus, uploads
from svc_files.domain import Parts
from svc_files.filenames import content_disposition
from svc_files.intake import check_content_encoding, receive, shielded
from svc_files.parts import PARTS
from svc_files.ranges import Unsatisfiable, etag_matches, requested_range
from svc_files.repository import File, Upload
from svc_files.schemas import FileListQuery, FileOut
from svc_files.storage import Missing

routes = RouteTable()
TUS = {"Tus-Resumable": tus.VERSION}  # on every response of the tus routes, problems included
#: every tus request but OPTIONS sends it (412 otherwise): declared so /openapi.json says so
SPEAKS_TUS = (
    {"in": "header", "name": "Tus-Resumable", "required": True, "schema": {"const": tus.VERSION}},
)


def _parts(request: web.Request) -> Parts:
    return PARTS.of(request)


async def owned_file(request: web.Request) -> File:
    """The caller's file named in the path; someone else's answers exactly like a missing one."""
    file = await _parts(request).files.get(
        request.match_info["file_id"], owner=current_claims(request).sub
    )
    if file is None:
        raise NotFound("No such file.")
    return file


@routes.post(
    "/files",
    response=FileOut,
    status=201,
    errors=(400, 413, 415, 422),
    raw_body=True,
)
async def upload_file(request: web.Request) -> File:
    """Upload one file (multipart/form-data, one part named file); its type comes from its bytes."""
    parts = _parts(request)
    async with audit.event(request, "file.upload") as event:
        event.detail["method"] = "multipart"
        received = await receive(request, parts)
        file = domain.new_file(
            file_id=received.file_id,
            owner=current_claims(request).sub,
            filename=received.filename,
            meter=received.meter,
            content_type=received.content_type,
            now=utcnow(),
            encryption=received.encryption,
        )
        try:
            await parts.files.insert(file)
        except BaseException:
            await shielded(parts.storage.delete(file["_id"]))
            raise
        finally:
            await shielded(parts.files.journal_end(file["_id"]))
        event.about("file", file["_id"])
        event.detail.update(size=file["size"], content_type=file["content_type"])
    return file


@routes.get("/files", query=FileListQuery, response=FileOut, many=True)
async def list_files(request: web.Request) -> dict[str, Any]:
    """The caller's files, newest first."""
    q = query(request)
    return await _parts(request).files.page(
        owner=current_claims(request).sub, limit=q["limit"], cursor=q["cursor"]
    )


@routes.get("/files/{file_id}", load=owned_file, response=FileOut, errors=(404,))
async def get_file(request: web.Request) -> File:
    """One of the caller's files (metadata)."""
    file: File = resource(request)
    return file


@routes.get(
    "/files/{file_id}/content",
    load=owned_file,
    errors=(404, 416),
    content_type="application/octet-stream",
)
async def download_file(request: web.Request) -> web.StreamResponse:
    """The file's exact bytes (GET and HEAD), with ETag, If-None-Match and one byte Range."""
    file: File = resource(request)
    etag = domain.etag(file)
    size = file["size"]
    headers = {
        "ETag": etag,
        "Cache-Control": "private, no-cache",
        "X-Content-Type-Options": "nosniff",
        "Content-Disposition": content_disposition(file["filename"]),
        "Accept-Ranges": "bytes",
    }
    if etag_matches(request.headers.get("If-None-Match"), etag):
        return web.Response(status=304, headers=headers)
    try:
        wanted = requested_range(
            request.headers.get("Range"), size, if_range=request.headers.get("If-Range"), etag=etag
        )
    except Unsatisfiable:
        raise RangeNotSatisfiable(
            f"The range starts past the end of the file ({size} bytes).",
            headers={"Content-Range": f"bytes */{size}"},
        ) from None
    start, length, status = 0, size, 200
    if wanted is not None:
        start, length, status = wanted.start, wanted.length, 206
        headers["Content-Range"] = wanted.content_range(size)
    response = web.StreamResponse(status=status, headers=headers)
    response.content_type = domain.header_content_type(file["content_type"])
    response.content_length = length
    if request.method == "HEAD":
        await prepare(request, response)
        await response.write_eof()
        return response
    try:
        body = await _parts(request).vault.open(file, start, length)
    except Missing:  # deleted meanwhile (the bytes go first)
        raise NotFound("No such file.") from None
    try:
        await prepare(request, response)
        await body.send(request, response)
    finally:
        await body.close()
    await response.write_eof()
    return response


@routes.delete("/files/{file_id}", load=owned_file, status=204, errors=(404,))
async def delete_file(request: web.Request) -> None:
    """Delete one of the caller's files: its bytes first, then its metadata, then the finished
    upload it came from, if any (an upload's id is its file's; HEAD said 404 already)."""
    file: File = resource(request)
    parts = _parts(request)
    async with audit.event(request, "file.delete", target=("file", file["_id"])) as event:
        event.detail.update(size=file["size"], content_type=file["content_type"])
        await parts.storage.delete(file["_id"])
        if not await parts.files.delete(file["_id"], owner=file["owner"]):
            raise NotFound("No such file.")
        await parts.uploads.delete(file["_id"])


# --- resumable uploads (tus 1.0.0) ---------------------------------------------------------


async def _audit_completion(
    request: web.Request, upload_id: str, progress: uploads.Progress
) -> None:
    """The request that wrote an upload's last byte made it a file: one ``file.upload``."""
    if progress.expires_at is not None:
        return  # not finished yet
    file = await _parts(request).files.get(upload_id, owner=current_claims(request).sub)
    await audit.record(
        request,
        "file.upload",
        outcome="success",
        target=("file", upload_id),
        detail={
            "method": "tus",
            "size": progress.length,
            "content_type": file["content_type"] if file is not None else None,
        },
    )


def _tus_headers(progress: uploads.Progress) -> dict[str, str]:
    headers = {"Upload-Offset": str(progress.offset)}
    if progress.expires_at is not None:
        headers["Upload-Expires"] = tus.http_date(progress.expires_at)
    return headers


async def owned_upload(request: web.Request) -> Upload:
    """The caller's upload named in the path (404), once the request speaks tus 1.0.0 (412)."""
    tus.require_version(request)
    return await uploads.find(
        _parts(request), request.match_info["upload_id"], owner=current_claims(request).sub
    )


@routes.route("OPTIONS", "/files/uploads", status=204, headers=TUS)
@tus.speaks_tus
async def tus_options(request: web.Request) -> web.Response:
    """What this tus server supports (version, extensions, the size limit)."""
    return web.Response(
        status=204,
        headers={
            "Tus-Version": tus.VERSION,
            "Tus-Extension": tus.EXTENSIONS,
            "Tus-Max-Size": str(_parts(request).max_size),
        },
    )


@routes.post(
    "/files/uploads",
    status=201,
    errors=(400, 412, 413, 415, 422),
    headers=TUS,
    parameters=SPEAKS_TUS,
    raw_body=True,
)
@tus.speaks_tus
async def create_upload(request: web.Request) -> web.Response:
    """Start a resumable upload (tus creation), optionally with its first bytes."""
    parts = _parts(request)
    length = tus.upload_length(request, limit=parts.max_size)
    metadata = tus.metadata(request)
    if request.body_exists:
        tus.chunk_type(request)
        check_content_encoding(request)
    upload = await uploads.create(
        parts, owner=current_claims(request).sub, length=length, metadata=metadata
    )
    headers = {"Location": f"/files/uploads/{upload['_id']}"}
    if request.body_exists:
        progress = await uploads.write_first(parts, upload, request)
        await _audit_completion(request, upload["_id"], progress)
        headers |= _tus_headers(progress)
    else:
        headers["Upload-Expires"] = tus.http_date(upload["expires_at"])
    return web.Response(status=201, headers=headers)


@routes.route(
    "HEAD",
    "/files/uploads/{upload_id}",
    load=owned_upload,
    errors=(404, 412),
    headers=TUS,
    parameters=SPEAKS_TUS,
)
@tus.speaks_tus
async def upload_progress(request: web.Request) -> web.Response:
    """How many bytes of the upload the server has."""
    progress = uploads.progress(resource(request))
    headers = _tus_headers(progress) | {
        "Upload-Length": str(progress.length),
        "Cache-Control": "no-store",
    }
    return web.Response(status=200, headers=headers)


@routes.patch(
    "/files/uploads/{upload_id}",
    load=owned_upload,
    status=204,
    errors=(404, 409, 412, 413, 415),
    headers=TUS,
    parameters=SPEAKS_TUS,
    raw_body=True,
)
@tus.speaks_tus
async def append_to_upload(request: web.Request) -> web.Response:
    """Append the body at Upload-Offset; the last byte turns the upload into a file."""
    upload: Upload = resource(request)
    tus.chunk_type(request)
    check_content_encoding(request)
    offset = tus.upload_offset(request)
    progress = await uploads.write(_parts(request), upload, request, offset=offset)
    await _audit_completion(request, upload["_id"], progress)
    return web.Response(status=204, headers=_tus_headers(progress))


@routes.delete(
    "/files/uploads/{upload_id}",
    load=owned_upload,
    status=204,
    errors=(404, 409, 412),
    headers=TUS,
    parameters=SPEAKS_TUS,
)
@tus.speaks_tus
async def terminate_upload(request: web.Request) -> web.Response:
    """Discard an unfinished upload and its bytes (tus termination)."""
    await uploads.terminate(_parts(request), resource(request))
    return web.Response(status=204)
