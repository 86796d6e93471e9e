"""Resumable uploads across instances and backends: two instances sharing MongoDB and storage
take alternate chunks of one upload; the s3 backend keeps the pieces in the bucket; the
periodic expiry removes what is past its time."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import io
import os
import uuid

import pytest
from tusclient import client as tus_client

from svc_core.testing import eventually
from svc_files import create_app, uploads
from tests.files.helpers import PNG

MIB = 1024 * 1024
TUS = {"Tus-Resumable": "1.0.0"}
CHUNK = {**TUS, "Content-Type": "application/offset+octet-stream"}


@pytest.fixture(params=["local", "s3"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def test_chunks_alternate_between_two_instances(aiohttp_client, make_files_settings, alice):
    settings = make_files_settings(mongo_url=f"memory://shared-{uuid.uuid4().hex}")
    one = await aiohttp_client(create_app(settings))
    two = await aiohttp_client(create_app(settings))
    data = PNG + os.urandom(6 * MIB)
    created = await one.post(
        "/files/uploads", headers={**alice, **TUS, "Upload-Length": str(len(data))}
    )
    location = created.headers["Location"]
    offset, step, turn = 0, MIB + 7, 0
    while offset < len(data):
        instance = (one, two)[turn % 2]
        head = await instance.head(location, headers={**alice, **TUS})
        assert int(head.headers["Upload-Offset"]) == offset
        piece = data[offset : offset + step]
        resp = await instance.patch(
            location,
            data=io.BytesIO(piece),
            headers={**alice, **CHUNK, "Upload-Offset": str(offset)},
        )
        assert resp.status == 204, await resp.text()
        offset += len(piece)
        turn += 1
    upload_id = location.rsplit("/", 1)[-1]
    for instance in (one, two):
        file = await (await instance.get(f"/files/{upload_id}", headers=alice)).json()
        assert file["sha256"] == hashlib.sha256(data).hexdigest()
        content = await instance.get(f"/files/{upload_id}/content", headers=alice)
        assert hashlib.sha256(await content.read()).hexdigest() == file["sha256"]


async def test_tuspy_on_this_backend(client, alice, storage):
    data = b"%PDF-1.7\n" + os.urandom(7 * MIB)
    uploader = tus_client.TusClient(
        str(client.make_url("/files/uploads")), headers=dict(alice)
    ).uploader(file_stream=io.BytesIO(data), chunk_size=3 * MIB, metadata={"filename": "r.pdf"})
    await asyncio.to_thread(uploader.upload)
    upload_id = uploader.url.rsplit("/", 1)[-1]
    file = await (await client.get(f"/files/{upload_id}", headers=alice)).json()
    assert file["content_type"] == "application/pdf"
    assert file["sha256"] == hashlib.sha256(data).hexdigest()
    assert await storage.keys() == [upload_id]
    assert await storage.segments(upload_id) == []  # the pieces are gone once it is a file
    assert await storage.temporaries() == 0


async def test_the_periodic_expiry_removes_stale_uploads(
    aiohttp_client, make_files_settings, alice, storage, monkeypatch
):
    client = await aiohttp_client(create_app(make_files_settings(expiry_interval=0.05)))
    created = await client.post("/files/uploads", headers={**alice, **TUS, "Upload-Length": "9"})
    location = created.headers["Location"]
    upload_id = location.rsplit("/", 1)[-1]
    resp = await client.patch(
        location, data=b"abc", headers={**alice, **CHUNK, "Upload-Offset": "0"}
    )
    assert resp.status == 204
    assert [size for _, size in await storage.segments(upload_id)] == [3]
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=24, minutes=1)
    monkeypatch.setattr(uploads, "now", lambda: later)

    async def gone() -> bool:
        return await storage.segments(upload_id) == []

    await eventually(gone, timeout=5)
    assert (await client.head(location, headers={**alice, **TUS})).status == 404
