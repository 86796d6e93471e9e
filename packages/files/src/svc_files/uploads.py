"""Resumable uploads (tus): state in MongoDB, bytes as pieces in the storage backend, so any
chunk may reach any instance.

A write (``PATCH``, or the first chunk of ``POST``) takes the upload's lease with one
conditional update on its offset: of two writers at one offset exactly one wins, the other gets
409. The bytes stream into a new piece named by the offset they start at; each chunk passes the
early type check (whose small state travels with the upload) before it is stored. When the
request ends, normally or because its client went away, the piece is kept with every byte that
arrived, the offset moves past them and the lease is let go. The write that brings the last byte
copies the pieces, in order, into the file's own key through the same checks as ``POST /files``
(size, sha256, type, with JSON decided over the whole text) and creates the file with the
upload's id. Unfinished uploads expire 24 hours after their last write; ``expire`` removes them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
import secrets
from typing import Any

from aiohttp import web

from svc_core import BadRequest, NotFound, PayloadTooLarge, new_id, utcnow
from svc_files import domain, tus
from svc_files.domain import FileTypeNotAllowed, Meter, Parts
from svc_files.filenames import clean_filename
from svc_files.intake import shielded
from svc_files.repository import Upload
from svc_files.sniff import Sniffer

log = logging.getLogger("svc_files.uploads")

LIFETIME = dt.timedelta(hours=24)
# Seconds a writer holds an upload without showing progress: past the gateway's 60 s body
# timeout, so a stalled request is cut off before its lease can run out.
LEASE = 120.0


def now() -> dt.datetime:
    """The clock of this module (tests move it)."""
    return utcnow()


@dataclasses.dataclass(frozen=True)
class Progress:
    offset: int
    length: int
    expires_at: dt.datetime | None  # None once finished


def progress(upload: Upload) -> Progress:
    complete = upload["complete"]
    return Progress(upload["offset"], upload["length"], None if complete else upload["expires_at"])


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


async def find(parts: Parts, upload_id: str, *, owner: str) -> Upload:
    """The caller's upload, unfinished and unexpired, or finished while its file exists; else
    404 (unknown, expired, discarded, or another customer's)."""
    upload = await parts.uploads.get(upload_id, owner=owner)
    if upload is not None:
        if upload["complete"]:
            if await parts.files.exists(upload_id):
                return upload
        elif _aware(upload["expires_at"]) > now():
            return upload
    raise NotFound("No such upload.")


async def create(parts: Parts, *, owner: str, length: int, metadata: dict[str, str]) -> Upload:
    at = now()
    upload_id = new_id()
    upload: Upload = {
        "_id": upload_id,
        "owner": owner,
        "length": length,
        "offset": 0,
        "filename": clean_filename(metadata.get("filename")),
        "complete": False,
        "created_at": at,
        "updated_at": at,
        "expires_at": at + LIFETIME,
        "sniff": None,
        "lock": None,
        # the data key its pieces' keys derive from (None: stored as they are)
        "encryption": parts.vault.new_upload_record(upload_id),
    }
    await parts.uploads.insert(upload)
    return upload


async def write(parts: Parts, upload: Upload, request: web.Request, *, offset: int) -> Progress:
    """Append the request's body at ``offset`` (the client's ``Upload-Offset``)."""
    if upload["complete"] or upload["offset"] != offset:
        raise tus.OffsetMismatch(
            f"The upload is at offset {upload['offset']}"
            + (" and finished." if upload["complete"] else ".")
        )
    # (an encoded body's Content-Length is not the bytes it brings: counted while streaming)
    declared = None if "Content-Encoding" in request.headers else request.content_length
    if declared is not None and offset + declared > upload["length"]:
        raise PayloadTooLarge("The bytes would pass Upload-Length.")
    token = secrets.token_hex(8)
    held = await parts.uploads.acquire(
        upload["_id"], owner=upload["owner"], offset=offset, token=token, now=now(), lease=LEASE
    )
    if held is None:
        raise tus.OffsetMismatch("Another request is writing at this offset, or moved it.")
    return await _write_held(parts, held, request, token=token)


async def write_first(parts: Parts, upload: Upload, request: web.Request) -> Progress:
    """The first chunk, sent with the creation request: refused (413), the upload is not kept
    either, since the client never learns its ``Location``."""
    try:
        return await write(parts, upload, request, offset=0)
    except PayloadTooLarge:
        await parts.storage.drop_segments(upload["_id"])
        await parts.uploads.delete(upload["_id"])
        raise


async def _write_held(
    parts: Parts, upload: Upload, request: web.Request, *, token: str
) -> Progress:
    upload_id, offset = upload["_id"], upload["offset"]
    storage = parts.storage
    try:
        await storage.drop_segments(upload_id, from_offset=offset)  # what a crash wrote past it
        writer = await parts.vault.segment(upload, offset)
    except BaseException:
        await shielded(parts.uploads.release(upload_id, token=token, fields={}))
        raise
    sniffer = Sniffer.early(upload["sniff"])
    received = 0
    renew_at = asyncio.get_running_loop().time() + LEASE / 3
    try:
        async for chunk in request.content.iter_any():  # whatever arrived: nothing waits
            if offset + received + len(chunk) > upload["length"]:
                raise PayloadTooLarge("The bytes would pass Upload-Length.")
            sniffer.feed(chunk)
            if sniffer.refused:
                raise FileTypeNotAllowed()
            await writer.write(chunk)
            received += len(chunk)
            if asyncio.get_running_loop().time() > renew_at:  # still writing: keep the lease
                renew_at += LEASE / 3
                await parts.uploads.renew(
                    upload_id, token=token, until=now() + dt.timedelta(seconds=LEASE)
                )
    except PayloadTooLarge:
        # this request's bytes are refused whole; the upload stays where it was
        await shielded(_let_go(parts, upload, writer, token=token, keep=0, sniffer=None))
        raise
    except FileTypeNotAllowed:
        await shielded(_discard(parts, upload_id, writer))
        raise
    except web.RequestPayloadError:
        # The body broke off (its client went away) or does not decode: keep what arrived.
        await shielded(_let_go(parts, upload, writer, token=token, keep=received, sniffer=sniffer))
        raise BadRequest("The request body broke off or does not decode.") from None
    except BaseException:
        # The client went away (or anything else broke): keep every byte that arrived.
        await shielded(_let_go(parts, upload, writer, token=token, keep=received, sniffer=sniffer))
        raise
    reached = offset + received
    if reached < upload["length"]:
        if not await _let_go(parts, upload, writer, token=token, keep=received, sniffer=sniffer):
            raise tus.OffsetMismatch("This request stalled and lost the upload to another one.")
        return Progress(
            reached, upload["length"], now() + LIFETIME if received else upload["expires_at"]
        )
    # The last byte is in: claim the making of the file before the piece counts, so a racing
    # termination either came first (this request keeps nothing) or is refused (409).
    if not await parts.uploads.claim_finish(upload_id, token=token):
        await writer.abort()
        if await parts.uploads.get(upload_id, owner=upload["owner"]) is None:
            raise NotFound("No such upload.")
        raise tus.OffsetMismatch("This request stalled and lost the upload to another one.")
    await writer.commit()
    await _finish(parts, upload, token=token)
    return Progress(reached, upload["length"], None)


async def _let_go(
    parts: Parts,
    upload: Upload,
    writer: Any,
    *,
    token: str,
    keep: int,
    sniffer: Sniffer | None,
) -> bool:
    """Store the bytes that arrived (``keep`` of them), move the offset, release the lease.
    A writer that lost its lease (stalled past it, another took over) keeps nothing: False."""
    fields: dict[str, Any] = {}
    still_ours = await parts.uploads.renew(
        upload["_id"], token=token, until=now() + dt.timedelta(seconds=LEASE)
    )
    if keep and still_ours:
        await writer.commit()
        at = now()
        fields = {
            "offset": upload["offset"] + keep,
            "sniff": sniffer.state() if sniffer is not None else upload["sniff"],
            "updated_at": at,
            "expires_at": at + LIFETIME,
        }
    else:
        await writer.abort()
    await parts.uploads.release(upload["_id"], token=token, fields=fields)
    return still_ours


async def _discard(parts: Parts, upload_id: str, writer: Any) -> None:
    await writer.abort()
    await parts.storage.drop_segments(upload_id)
    await parts.uploads.delete(upload_id)


async def _finish(parts: Parts, upload: Upload, *, token: str) -> None:
    """Copy the pieces into the file's key through ``POST /files``' checks; create the file."""
    upload_id = upload["_id"]
    meter = Meter(parts.max_size)
    await parts.files.journal_begin(upload_id, now=utcnow())
    try:
        writer, encryption = await parts.vault.create(upload_id)
        try:
            expected = 0
            for start, size in await parts.vault.segments(upload):
                if start != expected:
                    raise RuntimeError(f"upload {upload_id}: a gap at {expected}")
                async for chunk in parts.vault.read_segment(upload, start):
                    meter.feed(chunk)
                    await writer.write(chunk)
                expected += size
            if expected != upload["length"]:
                raise RuntimeError(f"upload {upload_id}: {expected} of {upload['length']} bytes")
            content_type = meter.content_type(upload["filename"])
            await writer.commit()
        except BaseException:
            await shielded(writer.abort())
            raise
        file = domain.new_file(
            file_id=upload_id,
            owner=upload["owner"],
            filename=upload["filename"],
            meter=meter,
            content_type=content_type,
            now=utcnow(),
            encryption=encryption,
        )
        try:
            await parts.files.insert(file)
        except BaseException:
            await shielded(parts.storage.delete(upload_id))
            raise
    except FileTypeNotAllowed:
        await shielded(parts.storage.drop_segments(upload_id))
        await shielded(parts.uploads.delete(upload_id))
        raise
    except BaseException:
        # Keep the pieces; let a retry (HEAD says the offset is the length) be refused cleanly,
        # and a termination go through.
        await shielded(
            parts.uploads.release(
                upload_id,
                token=token,
                fields={"offset": upload["length"], "updated_at": now(), "finishing": False},
            )
        )
        raise
    finally:
        await shielded(parts.files.journal_end(upload_id))
    await parts.uploads.release(
        upload_id,
        token=token,
        fields={"offset": upload["length"], "complete": True, "sniff": None, "updated_at": now()},
    )
    await parts.storage.drop_segments(upload_id)


async def terminate(parts: Parts, upload: Upload) -> None:
    """``DELETE``: the unfinished upload and its bytes are gone (state first: no new writes; a
    writer holding the lease keeps nothing). An upload whose last byte is in and is being made
    a file is complete: 409."""
    if upload["complete"]:
        raise tus.UploadComplete()
    if not await parts.uploads.delete_unfinished(upload["_id"], owner=upload["owner"], now=now()):
        current = await parts.uploads.get(upload["_id"], owner=upload["owner"])
        if current is not None:  # finished, or being made a file, since it was read
            raise tus.UploadComplete()
        raise NotFound("No such upload.")
    await parts.storage.drop_segments(upload["_id"])


async def expire(parts: Parts) -> int:
    """Remove unfinished uploads whose last write is more than 24 hours old."""
    removed = 0
    for upload_id in await parts.uploads.expired(now()):
        await parts.storage.drop_segments(upload_id)
        await parts.uploads.delete(upload_id)
        removed += 1
    if removed:
        log.info("expired unfinished uploads", extra={"count": removed})
    return removed


async def expire_periodically(parts: Parts, interval: float) -> None:
    """Every ``interval``: remove expired unfinished uploads, and sweep what a crash left (the
    startup sweep alone would never reach what a crash left less than ``FILES_SWEEP_GRACE`` before
    the restart, nor what a crashed instance left while the others keep running)."""
    while True:
        await asyncio.sleep(interval)
        try:
            await expire(parts)
            await domain.sweep(parts, grace=parts.settings.sweep_grace, now=utcnow())
        except Exception:
            log.exception("upload expiry failed; retried at the next interval")
