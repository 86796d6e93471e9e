"""Resumable uploads (tus 1.0.0): the real tuspy client for the happy paths, raw requests for
every failure row of api.md's tus table."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import io
import os

import pytest
from tusclient import client as tus_client

from svc_core.testing import assert_problem, eventually
from svc_files import uploads
from tests.files.helpers import ELF, PNG, left_in_storage

MIB = 1024 * 1024
TUS = {"Tus-Resumable": "1.0.0"}
CHUNK = {**TUS, "Content-Type": "application/offset+octet-stream"}


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def tuspy(client, headers, data: bytes, *, chunk_size: int, filename: str = "photo.png", url=None):
    """A tuspy (sync) uploader against the test server; run it in a thread."""
    server = str(client.make_url("/files/uploads"))
    return tus_client.TusClient(server, headers=dict(headers)).uploader(
        file_stream=io.BytesIO(data),
        chunk_size=chunk_size,
        metadata={"filename": filename},
        url=url,
        retries=0,
    )


async def create(client, headers, length: int, **extra) -> str:
    resp = await client.post(
        "/files/uploads", headers={**headers, **TUS, "Upload-Length": str(length), **extra}
    )
    assert resp.status == 201, await resp.text()
    location = resp.headers["Location"]
    assert location.startswith("/files/uploads/")
    return location


async def head(client, headers, location: str):
    return await client.head(location, headers={**headers, **TUS})


async def stalled_patch(client, headers, location: str, before: bytes, after: bytes):
    """A PATCH at offset 0 that sends ``before``, holds the upload's lease (waited for), and
    sends ``after`` once ``release`` is set: (the request's task, release)."""
    from svc_files.parts import PARTS

    upload_id = location.rsplit("/", 1)[-1]
    states = PARTS.of(client.app).uploads.uploads
    release = asyncio.Event()

    async def body():
        yield before
        await release.wait()
        yield after

    task = asyncio.create_task(
        client.patch(location, data=body(), headers={**headers, **CHUNK, "Upload-Offset": "0"})
    )

    async def held() -> bool:
        return (await states.find_one({"_id": upload_id}))["lock"] is not None

    await eventually(held, timeout=5)
    return task, release


# --- happy paths with tuspy -----------------------------------------------------------------


async def test_tuspy_uploads_in_several_chunks(client, alice):
    data = PNG + os.urandom(3 * MIB)
    uploader = tuspy(client, alice, data, chunk_size=MIB)
    await asyncio.to_thread(uploader.upload)
    upload_id = uploader.url.rsplit("/", 1)[-1]
    resp = await client.get(f"/files/{upload_id}", headers=alice)
    assert resp.status == 200
    file = await resp.json()
    assert file["id"] == upload_id
    assert file["size"] == len(data)
    assert file["sha256"] == hashlib.sha256(data).hexdigest()
    assert file["content_type"] == "image/png"
    assert file["filename"] == "photo.png"
    content = await client.get(f"/files/{upload_id}/content", headers=alice)
    assert await content.read() == data
    # indistinguishable from a POST /files upload: listed, and HEAD says it is whole
    listed = await (await client.get("/files", headers=alice)).json()
    assert [f["id"] for f in listed["items"]] == [upload_id]
    done = await head(client, alice, f"/files/uploads/{upload_id}")
    assert done.status == 200
    assert done.headers["Upload-Offset"] == done.headers["Upload-Length"] == str(len(data))
    assert "Upload-Expires" not in done.headers


async def test_a_paused_upload_is_resumed_by_a_fresh_client_from_head(client, alice):
    data = ("line of text ✓\n" * 100_000).encode()
    first = tuspy(client, alice, data, chunk_size=256 * 1024, filename="log.txt")
    await asyncio.to_thread(first.upload, 512 * 1024)  # stop_at: paused half way
    assert first.offset == 512 * 1024
    progress = await head(client, alice, first.url.replace(str(client.make_url("")), ""))
    assert progress.headers["Upload-Offset"] == str(512 * 1024)
    fresh = await asyncio.to_thread(
        tuspy, client, alice, data, chunk_size=300 * 1024, filename="log.txt", url=first.url
    )
    assert fresh.offset == 512 * 1024  # asked the server (HEAD)
    await asyncio.to_thread(fresh.upload)
    upload_id = first.url.rsplit("/", 1)[-1]
    file = await (await client.get(f"/files/{upload_id}", headers=alice)).json()
    assert file["sha256"] == hashlib.sha256(data).hexdigest()
    assert file["content_type"] == "text/plain"


# --- OPTIONS, POST ----------------------------------------------------------------------------


async def test_options_says_what_is_supported(client, alice, files_settings):
    resp = await client.options("/files/uploads", headers=alice)
    assert resp.status == 204
    assert resp.headers["Tus-Resumable"] == "1.0.0"
    assert resp.headers["Tus-Version"] == "1.0.0"
    assert resp.headers["Tus-Extension"] == "creation,creation-with-upload,termination,expiration"
    assert resp.headers["Tus-Max-Size"] == str(files_settings.max_size)


async def test_creation_answers_location_and_expiry(client, alice):
    resp = await client.post(
        "/files/uploads",
        headers={
            **alice,
            **TUS,
            "Upload-Length": "10",
            "Upload-Metadata": f"filename {b64('a/b.txt')},x",
        },
    )
    assert resp.status == 201
    assert resp.headers["Tus-Resumable"] == "1.0.0"
    assert "Upload-Offset" not in resp.headers
    expires = dt.datetime.strptime(resp.headers["Upload-Expires"], "%a, %d %b %Y %H:%M:%S GMT")
    delta = expires.replace(tzinfo=dt.UTC) - dt.datetime.now(dt.UTC)
    assert dt.timedelta(hours=23, minutes=59) < delta <= dt.timedelta(hours=24)
    progress = await head(client, alice, resp.headers["Location"])
    assert progress.status == 200
    assert progress.headers["Upload-Offset"] == "0"
    assert progress.headers["Upload-Length"] == "10"
    assert progress.headers["Cache-Control"] == "no-store"
    assert progress.headers["Upload-Expires"] == resp.headers["Upload-Expires"]


async def test_creation_with_upload(client, alice):
    resp = await client.post(
        "/files/uploads",
        data=b"hello ",
        headers={
            **alice,
            **CHUNK,
            "Upload-Length": "11",
            "Upload-Metadata": f"filename {b64('h.txt')}",
        },
    )
    assert resp.status == 201, await resp.text()
    assert resp.headers["Upload-Offset"] == "6"
    location = resp.headers["Location"]
    rest = await client.patch(
        location, data=b"world", headers={**alice, **CHUNK, "Upload-Offset": "6"}
    )
    assert rest.status == 204
    assert rest.headers["Upload-Offset"] == "11"
    assert "Upload-Expires" not in rest.headers
    file = await (await client.get(f"/files/{location.rsplit('/', 1)[-1]}", headers=alice)).json()
    assert file["filename"] == "h.txt"
    assert file["content_type"] == "text/plain"


async def test_a_whole_file_in_the_creation_request(client, alice):
    resp = await client.post(
        "/files/uploads", data=b'{"a": 1}', headers={**alice, **CHUNK, "Upload-Length": "8"}
    )
    assert resp.status == 201
    upload_id = resp.headers["Location"].rsplit("/", 1)[-1]
    file = await (await client.get(f"/files/{upload_id}", headers=alice)).json()
    assert file["content_type"] == "application/json"
    assert file["filename"] == "file"


@pytest.mark.parametrize(
    "headers",
    [{}, {"Upload-Length": "ten"}, {"Upload-Length": "-1"}, {"Upload-Length": "1.5"},
     {"Upload-Defer-Length": "1"}, {"Upload-Length": "5", "Upload-Defer-Length": "1"}],
)  # fmt: skip
async def test_upload_length_invalid_is_400(client, alice, headers):
    resp = await client.post("/files/uploads", headers={**alice, **TUS, **headers})
    await assert_problem(resp, 400, "upload_length_invalid")
    assert resp.headers["Tus-Resumable"] == "1.0.0"


@pytest.mark.parametrize("value", ["filename", "filename !!!", "a b c", "a YQ==,a YQ==", "f ////"])
async def test_upload_metadata_invalid_is_400(client, alice, value):
    headers = {**alice, **TUS, "Upload-Length": "5", "Upload-Metadata": value}
    if value == "filename":
        resp = await client.post("/files/uploads", headers=headers)  # a lone key is allowed
        assert resp.status == 201
        return
    await assert_problem(
        await client.post("/files/uploads", headers=headers), 400, "upload_metadata_invalid"
    )


async def test_upload_length_over_the_limit_is_413(client, alice, files_settings):
    headers = {**alice, **TUS, "Upload-Length": str(files_settings.max_size + 1)}
    await assert_problem(
        await client.post("/files/uploads", headers=headers), 413, "payload_too_large"
    )
    headers["Upload-Length"] = str(files_settings.max_size)
    assert (await client.post("/files/uploads", headers=headers)).status == 201


async def test_upload_length_zero_is_422(client, alice):
    headers = {**alice, **TUS, "Upload-Length": "0"}
    await assert_problem(
        await client.post("/files/uploads", headers=headers), 422, "validation_failed"
    )


async def test_tus_resumable_is_required(client, alice):
    for method, path, extra in [
        ("POST", "/files/uploads", {"Upload-Length": "5"}),
        ("HEAD", "/files/uploads/0123456789abcdef01234567", {}),
        ("PATCH", "/files/uploads/0123456789abcdef01234567", {}),
        ("DELETE", "/files/uploads/0123456789abcdef01234567", {}),
    ]:
        for version in (None, "0.2.2", "1.0"):
            headers = {**alice, **extra}
            if version:
                headers["Tus-Resumable"] = version
            resp = await client.request(method, path, headers=headers)
            assert resp.status == 412, (method, version)
            assert resp.headers["Tus-Version"] == "1.0.0"
            assert resp.headers["Tus-Resumable"] == "1.0.0"


# --- PATCH ------------------------------------------------------------------------------------


async def test_patch_with_another_content_type_is_415(client, alice):
    location = await create(client, alice, 5)
    resp = await client.patch(
        location,
        data=b"hello",
        headers={**alice, **TUS, "Upload-Offset": "0", "Content-Type": "text/plain"},
    )
    await assert_problem(resp, 415, "unsupported_media_type")


async def test_stale_offset_is_409(client, alice):
    location = await create(client, alice, 10)
    ok = await client.patch(location, data=b"abc", headers={**alice, **CHUNK, "Upload-Offset": "0"})
    assert ok.status == 204
    for offset in ("0", "2", "4", "x"):
        resp = await client.patch(
            location, data=b"d", headers={**alice, **CHUNK, "Upload-Offset": offset}
        )
        await assert_problem(resp, 409, "upload_offset_mismatch")
    assert (await head(client, alice, location)).headers["Upload-Offset"] == "3"


async def test_a_write_to_a_finished_upload_is_409(client, alice):
    location = await create(client, alice, 3)
    assert (
        await client.patch(location, data=b"abc", headers={**alice, **CHUNK, "Upload-Offset": "0"})
    ).status == 204
    resp = await client.patch(location, data=b"d", headers={**alice, **CHUNK, "Upload-Offset": "3"})
    await assert_problem(resp, 409, "upload_offset_mismatch")


async def test_bytes_past_upload_length_are_413_and_nothing_moves(client, alice, storage):
    location = await create(client, alice, 5)
    resp = await client.patch(
        location, data=b"too long", headers={**alice, **CHUNK, "Upload-Offset": "0"}
    )
    await assert_problem(resp, 413, "payload_too_large")

    async def chunked():
        yield b"abc"
        yield b"def"

    resp = await client.patch(
        location, data=chunked(), headers={**alice, **CHUNK, "Upload-Offset": "0"}
    )
    await assert_problem(resp, 413, "payload_too_large")
    assert (await head(client, alice, location)).headers["Upload-Offset"] == "0"
    assert await left_in_storage(storage) == ([], 0)


async def test_a_disallowed_type_is_refused_mid_upload_and_discarded(client, alice, storage):
    data = ELF + b"\x00" * (8 * 1024)
    location = await create(client, alice, len(data) + MIB)
    resp = await client.patch(location, data=data, headers={**alice, **CHUNK, "Upload-Offset": "0"})
    await assert_problem(resp, 415, "unsupported_media_type")
    assert (await head(client, alice, location)).status == 404  # discarded
    upload_id = location.rsplit("/", 1)[-1]
    assert await storage.segments(upload_id) == []


async def test_text_that_turns_invalid_later_is_refused_then(client, alice):
    location = await create(client, alice, 10_000)
    text = "é".encode() * 2500  # 5000 bytes of UTF-8 text
    ok = await client.patch(
        location, data=text[:4999], headers={**alice, **CHUNK, "Upload-Offset": "0"}
    )
    assert ok.status == 204  # an unfinished character at the end of what arrived is no error
    ok = await client.patch(
        location, data=b"\xa9abc", headers={**alice, **CHUNK, "Upload-Offset": "4999"}
    )
    assert ok.status == 204  # the character is finished by the next request
    bad = await client.patch(
        location, data=b"d\x00e", headers={**alice, **CHUNK, "Upload-Offset": "5003"}
    )
    await assert_problem(bad, 415, "unsupported_media_type")  # a NUL: no longer text
    assert (await head(client, alice, location)).status == 404  # and the upload is discarded


async def test_the_type_is_decided_on_the_last_byte(client, alice):
    location = await create(client, alice, 20, **{"Upload-Metadata": f"filename {b64('t.csv')}"})
    for offset, piece in ((0, b'{"a": '), (6, b"[1, 2, 3]"), (15, b"}\n\n\n\n")):
        resp = await client.patch(
            location, data=piece, headers={**alice, **CHUNK, "Upload-Offset": str(offset)}
        )
        assert resp.status == 204, await resp.text()
    file = await (await client.get(f"/files/{location.rsplit('/', 1)[-1]}", headers=alice)).json()
    assert file["content_type"] == "text/csv"  # .csv wins; JSON would have been decided at the end


async def test_the_last_byte_making_the_text_invalid_is_415(client, alice):
    location = await create(client, alice, 6)
    ok = await client.patch(
        location, data=b"hello", headers={**alice, **CHUNK, "Upload-Offset": "0"}
    )
    assert ok.status == 204
    last = await client.patch(
        location, data=b"\xe2", headers={**alice, **CHUNK, "Upload-Offset": "5"}
    )
    await assert_problem(last, 415, "unsupported_media_type")
    assert (await head(client, alice, location)).status == 404


async def test_two_concurrent_writes_at_one_offset_one_wins(client, alice):
    location = await create(client, alice, 2 * MIB)
    first, release = await stalled_patch(client, alice, location, b"a" * 1024, b"b" * 1024)
    second = await client.patch(
        location, data=b"c" * 10, headers={**alice, **CHUNK, "Upload-Offset": "0"}
    )
    await assert_problem(second, 409, "upload_offset_mismatch")
    release.set()
    assert (await first).status == 204
    assert (await head(client, alice, location)).headers["Upload-Offset"] == "2048"


async def test_an_interrupted_patch_keeps_what_arrived(client, alice, storage):
    location = await create(client, alice, 4 * MIB)
    sent = PNG + os.urandom(MIB) + b"x"
    _reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(
        (
            f"PATCH {location} HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: {alice['Authorization']}\r\nTus-Resumable: 1.0.0\r\n"
            "Content-Type: application/offset+octet-stream\r\nUpload-Offset: 0\r\n"
            f"Content-Length: {4 * MIB}\r\n\r\n"
        ).encode()
        + sent
    )
    await writer.drain()

    async def all_arrived() -> bool:  # the piece being written holds every byte sent
        return [p.stat().st_size for p in storage.tmp.iterdir()] == [len(sent)]

    await eventually(all_arrived, timeout=10)
    writer.transport.abort()  # then the break

    async def kept():
        resp = await head(client, alice, location)
        return resp.headers.get("Upload-Offset") == str(len(sent))

    await eventually(kept, timeout=10)
    rest = b"y" * (4 * MIB - len(sent))
    resp = await client.patch(
        location, data=io.BytesIO(rest), headers={**alice, **CHUNK, "Upload-Offset": str(len(sent))}
    )
    assert resp.status == 204, await resp.text()
    file = await (await client.get(f"/files/{location.rsplit('/', 1)[-1]}", headers=alice)).json()
    assert file["sha256"] == hashlib.sha256(sent + rest).hexdigest()


# --- DELETE, ownership, expiry ----------------------------------------------------------------


async def test_termination(client, alice, storage):
    location = await create(client, alice, 10)
    assert (
        await client.patch(location, data=b"abc", headers={**alice, **CHUNK, "Upload-Offset": "0"})
    ).status == 204
    resp = await client.delete(location, headers={**alice, **TUS})
    assert resp.status == 204
    assert resp.headers["Tus-Resumable"] == "1.0.0"
    assert (await head(client, alice, location)).status == 404
    assert await storage.segments(location.rsplit("/", 1)[-1]) == []
    assert (await client.delete(location, headers={**alice, **TUS})).status == 404


async def test_terminating_a_finished_upload_is_409(client, alice):
    location = await create(client, alice, 3)
    await client.patch(location, data=b"abc", headers={**alice, **CHUNK, "Upload-Offset": "0"})
    resp = await client.delete(location, headers={**alice, **TUS})
    await assert_problem(resp, 409, "upload_complete")


async def test_deleting_the_file_of_a_finished_upload_removes_the_upload(client, alice):
    """A finished upload lives as long as its file (api-decisions): no record outlives it."""
    from svc_files.parts import PARTS

    location = await create(client, alice, 3)
    await client.patch(location, data=b"abc", headers={**alice, **CHUNK, "Upload-Offset": "0"})
    upload_id = location.rsplit("/", 1)[-1]
    assert (await head(client, alice, location)).status == 200
    assert (await client.delete(f"/files/{upload_id}", headers=alice)).status == 204
    assert (await head(client, alice, location)).status == 404
    assert await PARTS.of(client.app).uploads.uploads.find_one({"_id": upload_id}) is None


async def test_another_customers_upload_is_404(client, alice, bob):
    location = await create(client, alice, 10)
    assert (await head(client, bob, location)).status == 404
    resp = await client.patch(location, data=b"abc", headers={**bob, **CHUNK, "Upload-Offset": "0"})
    await assert_problem(resp, 404, "not_found")
    await assert_problem(await client.delete(location, headers={**bob, **TUS}), 404, "not_found")
    assert (await head(client, alice, location)).headers["Upload-Offset"] == "0"


async def test_unknown_upload_is_404(client, alice):
    path = "/files/uploads/0123456789abcdef01234567"
    assert (await head(client, alice, path)).status == 404
    await assert_problem(
        await client.patch(path, data=b"x", headers={**alice, **CHUNK, "Upload-Offset": "0"}),
        404,
        "not_found",
    )


async def test_unfinished_uploads_expire_24_hours_after_their_last_write(
    client, alice, storage, monkeypatch
):
    location = await create(client, alice, 10)
    assert (
        await client.patch(location, data=b"abc", headers={**alice, **CHUNK, "Upload-Offset": "0"})
    ).status == 204
    start = dt.datetime.now(dt.UTC)
    monkeypatch.setattr(uploads, "now", lambda: start + dt.timedelta(hours=23, minutes=59))
    assert (await head(client, alice, location)).status == 200
    monkeypatch.setattr(uploads, "now", lambda: start + dt.timedelta(hours=24, seconds=1))
    assert (await head(client, alice, location)).status == 404
    resp = await client.patch(location, data=b"d", headers={**alice, **CHUNK, "Upload-Offset": "3"})
    await assert_problem(resp, 404, "not_found")
    from svc_files.parts import PARTS

    assert await uploads.expire(PARTS.of(client.app)) == 1
    assert await storage.segments(location.rsplit("/", 1)[-1]) == []


async def test_a_partial_upload_is_never_a_file(client, alice):
    location = await create(client, alice, 10)
    await client.patch(location, data=b"abc", headers={**alice, **CHUNK, "Upload-Offset": "0"})
    upload_id = location.rsplit("/", 1)[-1]
    assert (await client.get(f"/files/{upload_id}", headers=alice)).status == 404
    assert (await client.get(f"/files/{upload_id}/content", headers=alice)).status == 404
    assert (await (await client.get("/files", headers=alice)).json())["items"] == []


async def test_a_first_chunk_past_upload_length_keeps_no_upload(client, alice):
    resp = await client.post(
        "/files/uploads", data=b"123456", headers={**alice, **CHUNK, "Upload-Length": "5"}
    )
    await assert_problem(resp, 413, "payload_too_large")
    assert "Location" not in resp.headers
    from svc_files.parts import PARTS

    assert await PARTS.of(client.app).uploads.uploads.count_documents({}) == 0


async def test_a_first_chunk_of_another_type_is_415(client, alice):
    resp = await client.post(
        "/files/uploads",
        data=b"hello",
        headers={**alice, **TUS, "Upload-Length": "5", "Content-Type": "text/plain"},
    )
    await assert_problem(resp, 415, "unsupported_media_type")


async def test_a_writer_that_lost_its_lease_keeps_nothing(client, alice):
    """A request that stalled past its lease while another took the upload over: its bytes
    are not kept, and it hears 409."""
    from svc_files.parts import PARTS

    location = await create(client, alice, 100)
    upload_id = location.rsplit("/", 1)[-1]
    states = PARTS.of(client.app).uploads.uploads
    first, release = await stalled_patch(client, alice, location, b"a" * 10, b"b" * 10)
    await states.update_one({"_id": upload_id}, {"$set": {"lock.token": "someone-else"}})
    release.set()
    await assert_problem(await first, 409, "upload_offset_mismatch")
    await states.update_one({"_id": upload_id}, {"$set": {"lock": None}})
    assert (await head(client, alice, location)).headers["Upload-Offset"] == "0"
    resp = await client.patch(
        location, data=b"c" * 100, headers={**alice, **CHUNK, "Upload-Offset": "0"}
    )
    assert resp.status == 204


async def test_a_termination_during_the_last_chunk_keeps_nothing(client, alice, storage):
    """DELETE while the last byte's PATCH is still streaming: 204, and that PATCH hears 404 and
    makes no file (its piece is not committed)."""
    location = await create(client, alice, 20)
    upload_id = location.rsplit("/", 1)[-1]
    last, release = await stalled_patch(client, alice, location, b"a" * 10, b"b" * 10)
    assert (await client.delete(location, headers={**alice, **TUS})).status == 204
    release.set()
    await assert_problem(await last, 404, "not_found")
    assert (await client.get(f"/files/{upload_id}", headers=alice)).status == 404
    assert await storage.segments(upload_id) == []
    assert await left_in_storage(storage) == ([], 0)


async def test_a_termination_while_the_file_is_being_made_is_409(
    client, alice, storage, monkeypatch
):
    """DELETE once the last byte is in and the file is being made: the upload is complete
    (409 upload_complete), and the file is made."""
    finishing, go_on = asyncio.Event(), asyncio.Event()
    real_finish = uploads._finish

    async def paused_finish(*args, **kwargs):
        finishing.set()
        await go_on.wait()
        await real_finish(*args, **kwargs)

    monkeypatch.setattr(uploads, "_finish", paused_finish)
    location = await create(client, alice, 3)
    upload_id = location.rsplit("/", 1)[-1]
    last = asyncio.create_task(
        client.patch(location, data=b"abc", headers={**alice, **CHUNK, "Upload-Offset": "0"})
    )
    await asyncio.wait_for(finishing.wait(), 5)
    resp = await client.delete(location, headers={**alice, **TUS})
    await assert_problem(resp, 409, "upload_complete")
    go_on.set()
    assert (await last).status == 204
    got = await client.get(f"/files/{upload_id}/content", headers=alice)
    assert got.status == 200
    assert await got.read() == b"abc"


async def test_a_crashed_finisher_does_not_block_a_termination(client, alice):
    """A finisher whose instance died leaves ``finishing`` and a lease that runs out: then
    the upload can be terminated again."""
    from svc_files.parts import PARTS

    location = await create(client, alice, 3)
    upload_id = location.rsplit("/", 1)[-1]
    states = PARTS.of(client.app).uploads.uploads
    gone = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    lock = {"token": "dead", "until": gone + dt.timedelta(hours=1)}
    await states.update_one({"_id": upload_id}, {"$set": {"finishing": True, "lock": lock}})
    await assert_problem(
        await client.delete(location, headers={**alice, **TUS}), 409, "upload_complete"
    )
    await states.update_one({"_id": upload_id}, {"$set": {"lock.until": gone}})
    assert (await client.delete(location, headers={**alice, **TUS})).status == 204
    assert (await head(client, alice, location)).status == 404


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "x-unknown", "gzip, gzip"])
async def test_a_content_encoded_chunk_is_refused_never_5xx(client, alice, encoding):
    """Chunks are stored byte for byte: any Content-Encoding is refused with 415 (api.md
    "bodies"), and nothing of the chunk is kept."""
    import gzip

    import aiohttp

    location = await create(client, alice, 11)
    body = gzip.compress(b"hello world") if encoding == "gzip" else b"hello world"
    try:
        resp = await client.patch(
            location,
            data=body,
            headers={**alice, **CHUNK, "Upload-Offset": "0", "Content-Encoding": encoding},
        )
        status = resp.status
    except aiohttp.ServerDisconnectedError:
        status = 0
    try:
        progress = await head(client, alice, location)
    except aiohttp.ServerDisconnectedError:  # the pooled connection was the dropped one
        progress = await head(client, alice, location)
    offset = progress.headers.get("Upload-Offset")
    assert status == 415
    assert (await resp.json())["code"] == "unsupported_content_encoding"
    assert offset == "0"


async def test_the_chassis_own_answers_on_tus_routes_speak_tus(client, alice):
    """401 (no token) and 404 (no such upload) come from the chassis, before any handler: they
    carry Tus-Resumable too, and a request that does not speak tus is 412 before the 404."""
    resp = await client.patch("/files/uploads/nope", data=b"x", headers=CHUNK)
    assert resp.status == 401
    assert resp.headers["Tus-Resumable"] == "1.0.0"
    resp = await client.head("/files/uploads/nope", headers={**alice, **TUS})
    assert resp.status == 404
    assert resp.headers["Tus-Resumable"] == "1.0.0"
    resp = await client.head("/files/uploads/nope", headers=alice)
    assert resp.status == 412
    assert resp.headers["Tus-Version"] == "1.0.0"
    assert resp.headers["Tus-Resumable"] == "1.0.0"
