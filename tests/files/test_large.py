"""A file far larger than any buffer, generated on the fly, up and down with its sha256 checked
end to end. Its memory is measured in the benchmark, not asserted here."""

from __future__ import annotations

import hashlib
import os

import pytest

from tests.files.helpers import PNG, form

MIB = 1024 * 1024
SIZE = 200 * MIB


@pytest.mark.slow
async def test_a_200_mib_upload_streams_end_to_end(aiohttp_client, make_files_settings, alice):
    from svc_files import create_app

    client = await aiohttp_client(create_app(make_files_settings(max_size=256 * MIB)))
    sent = hashlib.sha256()
    block = os.urandom(MIB)

    async def body():
        sent.update(PNG)
        yield PNG
        left = SIZE - len(PNG)
        counter = 0
        while left > 0:
            counter += 1
            chunk = (counter.to_bytes(8, "big") + block)[: min(MIB, left)]
            sent.update(chunk)
            left -= len(chunk)
            yield chunk

    resp = await client.post("/files", data=form(body(), filename="huge.png"), headers=alice)
    assert resp.status == 201, await resp.text()
    file = await resp.json()
    assert file["size"] == SIZE
    assert file["sha256"] == sent.hexdigest()
    assert file["content_type"] == "image/png"

    download = await client.get(f"/files/{file['id']}/content", headers=alice)
    assert download.status == 200
    assert download.headers["Content-Length"] == str(SIZE)
    received = hashlib.sha256()
    size = 0
    async for chunk in download.content.iter_chunked(MIB):
        received.update(chunk)
        size += len(chunk)
    assert size == SIZE
    assert received.hexdigest() == file["sha256"]
