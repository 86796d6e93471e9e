"""The routes on the s3 backend (moto's S3 server): a file of several parts up and down,
ranges streamed from ranged GETs, delete, and the limit leaving nothing."""

from __future__ import annotations

import hashlib
import os

import pytest

from svc_core.testing import assert_problem
from tests.files.helpers import PNG, form, left_in_storage, upload

MIB = 1024 * 1024


@pytest.fixture(params=["s3"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def test_multipart_sized_file_round_trips(client, alice, storage):
    data = PNG + os.urandom(12 * MIB)
    file = await upload(client, alice, data, filename="big.png")
    assert file["content_type"] == "image/png"
    assert await storage.keys() == [file["id"]]
    resp = await client.get(f"/files/{file['id']}/content", headers=alice)
    assert resp.status == 200
    assert hashlib.sha256(await resp.read()).hexdigest() == file["sha256"]
    start = 5 * MIB - 3
    ranged = await client.get(
        f"/files/{file['id']}/content", headers={**alice, "Range": f"bytes={start}-{start + 9}"}
    )
    assert ranged.status == 206
    assert await ranged.read() == data[start : start + 10]
    tail = await client.get(f"/files/{file['id']}/content", headers={**alice, "Range": "bytes=-5"})
    assert await tail.read() == data[-5:]
    assert (await client.delete(f"/files/{file['id']}", headers=alice)).status == 204
    assert await left_in_storage(storage) == ([], 0)


async def test_over_the_limit_after_a_part_leaves_nothing(
    aiohttp_client, make_files_settings, alice, storage
):
    from svc_files import create_app

    client = await aiohttp_client(create_app(make_files_settings(max_size=7 * MIB)))
    resp = await client.post("/files", data=form(PNG + b"\x00" * (8 * MIB)), headers=alice)
    await assert_problem(resp, 413, "payload_too_large")
    assert await left_in_storage(storage) == ([], 0)


async def test_a_disguised_executable_leaves_nothing(client, alice, storage):
    elf = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * (6 * MIB)
    resp = await client.post(
        "/files", data=form(elf, filename="a.png", content_type="image/png"), headers=alice
    )
    await assert_problem(resp, 415, "unsupported_media_type")
    assert await left_in_storage(storage) == ([], 0)
