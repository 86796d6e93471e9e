"""The file service end to end: two instances behind the local gateway on the s3 backend
(moto's S3 server standing in for MinIO): a file uploaded through one downloads through the
other, byte for byte; a resumable upload's chunks go to both, and a broken PATCH resumes."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest

from svc_core.testing import eventually
from svc_devstack.stack import Stack
from tests.e2e.conftest import running_stack
from tests.e2e.test_journey import sign_up
from tests.files.moto import moto_server, new_bucket

MIB = 1024 * 1024


@pytest.fixture
def s3() -> Iterator[tuple[str, str]]:
    with moto_server() as url:
        yield url, new_bucket(url)


@pytest.fixture
async def two_files(redis_url: str, tmp_path: Path, s3: tuple[str, str]) -> AsyncIterator[Stack]:
    url, bucket = s3
    environ = {
        "FILES_STORAGE": "s3",
        "FILES_S3_ENDPOINT_URL": url,
        "FILES_S3_BUCKET": bucket,
        "FILES_S3_ACCESS_KEY_ID": "testing",
        "FILES_S3_SECRET_ACCESS_KEY": "testing",
    }
    async with running_stack(redis_url, tmp_path, twice=["files"], environ=environ) as stack:
        yield stack


def served(metrics: str, method: str, route: str, status: str) -> bool:
    return any(
        f'method="{method}"' in line
        and f'route="{route}"' in line
        and f'status="{status}"' in line
        and "_total" in line
        for line in metrics.splitlines()
    )


async def test_uploaded_through_one_instance_downloaded_through_the_other(
    two_files: Stack, http: aiohttp.ClientSession
) -> None:
    gw = two_files.gateway_url
    assert len(two_files.urls["files"]) == 2
    _, token = await sign_up(http, gw)
    auth = {"Authorization": f"Bearer {token}"}
    data = b"%PDF-1.7\n" + os.urandom(3 * MIB)  # past the gateway's 1 MiB JSON limit
    form = aiohttp.FormData()
    form.add_field("file", io.BytesIO(data), filename="report.pdf", content_type="application/pdf")
    async with http.post(f"{gw}/files", data=form, headers=auth) as response:
        assert response.status == 201, await response.text()
        file = await response.json()
    assert file["content_type"] == "application/pdf"
    assert file["sha256"] == hashlib.sha256(data).hexdigest()

    # round robin: two downloads through the gateway reach both instances
    for _ in range(2):
        async with http.get(f"{gw}/files/{file['id']}/content", headers=auth) as response:
            assert response.status == 200
            assert hashlib.sha256(await response.read()).hexdigest() == file["sha256"]
    async with http.get(
        f"{gw}/files/{file['id']}/content", headers={**auth, "Range": "bytes=0-8"}
    ) as response:
        assert response.status == 206
        assert await response.read() == b"%PDF-1.7\n"

    uploads, downloads = [], []
    for url in two_files.urls["files"]:
        async with http.get(f"{url}/metrics") as response:
            text = await response.text()
        uploads.append(served(text, "POST", "/files", "201"))
        downloads.append(served(text, "GET", "/files/{file_id}/content", "200"))
    assert sorted(uploads) == [False, True]  # one instance took the upload
    assert downloads == [True, True]  # and each served the file, so the other one did too


TUS = {"Tus-Resumable": "1.0.0"}
CHUNK = {**TUS, "Content-Type": "application/offset+octet-stream"}


async def test_resumable_upload_alternates_instances_and_survives_a_break(
    two_files: Stack, http: aiohttp.ClientSession
) -> None:
    """Through the gateway: a PATCH broken halfway keeps what arrived (the route streams bodies),
    HEAD says how much, the rest follows in chunks that round robin sends to both instances."""
    gw = two_files.gateway_url
    _, token = await sign_up(http, gw)
    auth = {"Authorization": f"Bearer {token}"}
    data = b"%PDF-1.7\n" + os.urandom(6 * MIB)
    async with http.post(
        f"{gw}/files/uploads", headers={**auth, **TUS, "Upload-Length": str(len(data))}
    ) as response:
        assert response.status == 201, await response.text()
        location = response.headers["Location"]

    # a PATCH that breaks after 2 MiB of its declared 6 MiB
    host, port = gw.removeprefix("http://").split(":")
    _reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        (
            f"PATCH {location} HTTP/1.1\r\nHost: {host}\r\n"
            f"Authorization: Bearer {token}\r\nTus-Resumable: 1.0.0\r\n"
            "Content-Type: application/offset+octet-stream\r\nUpload-Offset: 0\r\n"
            f"Content-Length: {len(data)}\r\n\r\n"
        ).encode()
        + data[: 2 * MIB]
    )
    await writer.drain()
    await asyncio.sleep(0.5)  # let the bytes cross the gateway, then break the connection
    writer.transport.abort()

    async def kept() -> int:
        async with http.head(f"{gw}{location}", headers={**auth, **TUS}) as response:
            return int(response.headers.get("Upload-Offset", "0"))

    offset = await eventually(kept, timeout=10)
    assert 0 < offset <= 2 * MIB
    while offset < len(data):
        piece = data[offset : offset + MIB]
        async with http.patch(
            f"{gw}{location}",
            data=io.BytesIO(piece),
            headers={**auth, **CHUNK, "Upload-Offset": str(offset)},
        ) as response:
            assert response.status == 204, await response.text()
            offset = int(response.headers["Upload-Offset"])
    upload_id = location.rsplit("/", 1)[-1]
    async with http.get(f"{gw}/files/{upload_id}", headers=auth) as response:
        file = await response.json()
    assert file["sha256"] == hashlib.sha256(data).hexdigest()
    patched = []
    for url in two_files.urls["files"]:
        async with http.get(f"{url}/metrics") as response:
            text = await response.text()
        patched.append(served(text, "PATCH", "/files/uploads/{upload_id}", "204"))
    assert patched == [True, True]  # the chunks reached both instances


async def test_tuspy_through_the_gateway_pauses_and_a_fresh_client_resumes(
    two_files: Stack, http: aiohttp.ClientSession
) -> None:
    """The real tus client, unchanged, through the gateway: several chunks, a pause, and a
    fresh client that takes the offset from HEAD and finishes the upload."""
    from tusclient import client as tus_client

    gw = two_files.gateway_url
    _, token = await sign_up(http, gw)
    auth = {"Authorization": f"Bearer {token}"}
    data = b"GIF89a" + os.urandom(5 * MIB)
    tus = tus_client.TusClient(f"{gw}/files/uploads", headers=auth)
    first = tus.uploader(
        file_stream=io.BytesIO(data), chunk_size=MIB, metadata={"filename": "anim.gif"}
    )
    await asyncio.to_thread(first.upload, 2 * MIB)  # paused after two chunks
    assert first.offset == 2 * MIB
    fresh = await asyncio.to_thread(
        tus.uploader, file_stream=io.BytesIO(data), chunk_size=MIB, url=first.url
    )
    assert fresh.offset == 2 * MIB  # from HEAD, through the gateway
    await asyncio.to_thread(fresh.upload)
    upload_id = first.url.rsplit("/", 1)[-1]
    async with http.get(f"{gw}/files/{upload_id}", headers=auth) as response:
        file = await response.json()
    assert file["content_type"] == "image/gif"
    assert file["filename"] == "anim.gif"
    assert file["sha256"] == hashlib.sha256(data).hexdigest()
