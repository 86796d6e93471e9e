"""Nothing is left behind: a client that goes away mid-upload, a failed write of the metadata,
and what a crash left (swept at startup). On both backends."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from svc_core import keys, new_id, utcnow
from svc_core.mongo import open_client
from svc_core.testing import eventually
from svc_files import create_app
from svc_files.repository import FileRepository
from tests.files.helpers import PNG, form, left_in_storage

MIB = 1024 * 1024


@pytest.fixture(params=["local", "s3"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def journal_size(client) -> int:
    return await client.app[keys.MONGO_DB].upload_journal.count_documents({})


async def test_a_client_that_disconnects_mid_upload_leaves_nothing(client, alice, storage):
    boundary = "cut0ff"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.png"\r\n\r\n'
    ).encode()
    declared = 20 * MIB
    request = (
        "POST /files HTTP/1.1\r\n"
        f"Host: {client.host}\r\n"
        f"Authorization: {alice['Authorization']}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {declared}\r\n\r\n"
    ).encode()
    _reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(request + head + PNG)
    chunk = b"\x00" * MIB
    for _ in range(7):  # past one S3 part: a multipart upload is under way
        writer.write(chunk)
        await writer.drain()

    async def writing() -> bool:
        return await journal_size(client) == 1 and await storage.temporaries() == 1

    await eventually(writing, timeout=10)
    writer.transport.abort()  # the connection drops; the body never completes

    async def clean() -> bool:
        return await left_in_storage(storage) == ([], 0) and await journal_size(client) == 0

    await eventually(clean, timeout=10)
    listed = await (await client.get("/files", headers=alice)).json()
    assert listed["items"] == []


async def test_a_failed_metadata_write_removes_the_bytes(client, alice, storage, monkeypatch):
    async def broken_insert(self, file):
        raise RuntimeError("database went away")

    monkeypatch.setattr(FileRepository, "insert", broken_insert)
    resp = await client.post("/files", data=form(b"hello"), headers=alice)
    assert resp.status == 500
    assert await left_in_storage(storage) == ([], 0)
    assert await journal_size(client) == 0


async def test_startup_sweeps_what_a_crash_left(aiohttp_client, make_files_settings, storage):
    mongo_url = f"memory://sweep-{uuid.uuid4().hex}"
    settings = make_files_settings(mongo_url=mongo_url, sweep_grace=0.0)
    db = open_client(mongo_url)["files"]
    repo = FileRepository(db)
    # 1. crashed between committing the bytes and writing the metadata: an orphan
    orphan = new_id()
    writer = await storage.create(orphan)
    await writer.write(b"orphan bytes")
    await writer.commit()
    await repo.journal_begin(orphan, now=utcnow())
    # 2. crashed after writing the metadata, before forgetting the journal entry: kept
    kept = new_id()
    writer = await storage.create(kept)
    await writer.write(b"kept bytes")
    await writer.commit()
    await repo.journal_begin(kept, now=utcnow())
    await repo.insert(
        {
            "_id": kept,
            "owner": "cust-alice",
            "filename": "k.txt",
            "content_type": "text/plain",
            "size": 10,
            "sha256": "0" * 64,
            "created_at": utcnow(),
        }
    )
    # 3. crashed mid-write: a temporary
    unfinished = await storage.create(new_id())
    await unfinished.write(b"\x00" * (6 * MIB))
    assert await storage.temporaries() == 1

    await asyncio.sleep(0.01)  # older than the (zero) grace period
    client = await aiohttp_client(create_app(settings))
    assert (await client.get("/ready")).status == 200
    assert await left_in_storage(storage) == ([kept], 0)
    assert await db.upload_journal.count_documents({}) == 0
    assert await db.files.count_documents({}) == 1
    await unfinished.abort()


async def test_a_running_instance_sweeps_what_a_crash_left_later(
    aiohttp_client, make_files_settings, storage
):
    """A crash after this instance started (another instance's, or a restart sooner than the
    grace): the periodic sweep removes it, not only the next startup."""
    mongo_url = f"memory://sweep-{uuid.uuid4().hex}"
    settings = make_files_settings(mongo_url=mongo_url, sweep_grace=0.0, expiry_interval=0.05)
    client = await aiohttp_client(create_app(settings))
    assert (await client.get("/ready")).status == 200
    repo = FileRepository(client.app[keys.MONGO_DB])
    orphan = new_id()
    writer = await storage.create(orphan)
    await writer.write(b"orphan bytes")
    await writer.commit()
    await repo.journal_begin(orphan, now=utcnow())

    async def swept() -> bool:
        journal = await client.app[keys.MONGO_DB].upload_journal.count_documents({})
        return await left_in_storage(storage) == ([], 0) and journal == 0

    await eventually(swept, timeout=10)


async def test_ready_names_the_storage(client):
    resp = await client.get("/ready")
    assert resp.status == 200
    assert (await resp.json())["checks"] == {"mongodb": "ok", "redis": "ok", "storage": "ok"}
