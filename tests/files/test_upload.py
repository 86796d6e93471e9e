"""POST /files: every success and failure row of api.md's File table for uploads."""

from __future__ import annotations

import gzip
import io
import json
import re
import zipfile

import pytest

from svc_core.testing import assert_problem
from tests.files.helpers import (
    ELF,
    PNG,
    file_part,
    form,
    left_in_storage,
    raw_multipart,
    upload,
)

RFC3339_MS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\Z")


def _zip(name: str = "a.txt") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(name, "hello")
    return buffer.getvalue()


JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + b"\x00" * 64
GIF = b"GIF89a\x01\x00\x01\x00\x80\x00\x00" + b"\x00" * 64
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 \x18\x00\x00\x00" + b"\x00" * 64
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n"


async def test_upload_returns_the_file_and_get_finds_it(client, alice):
    resp = await client.post("/files", data=form(b"hello\n", filename="hi.txt"), headers=alice)
    assert resp.status == 201
    file = await resp.json()
    assert set(file) == {"id", "filename", "content_type", "size", "sha256", "created_at"}
    assert file["filename"] == "hi.txt"
    assert file["content_type"] == "text/plain"
    assert file["size"] == 6
    assert file["sha256"] == "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"
    assert RFC3339_MS.match(file["created_at"])
    got = await client.get(f"/files/{file['id']}", headers=alice)
    assert got.status == 200
    assert await got.json() == file


@pytest.mark.parametrize(
    ("content", "declared", "expected"),
    [
        (PNG, "text/plain", "image/png"),
        (JPEG, "image/png", "image/jpeg"),
        (GIF, "application/octet-stream", "image/gif"),
        (WEBP, "image/gif", "image/webp"),
        (PDF, "text/plain", "application/pdf"),
        (_zip(), "application/octet-stream", "application/zip"),
        (_zip("word/document.xml"), "application/vnd.ms-word", "application/zip"),  # docx-like
    ],
    ids=["png", "jpeg", "gif", "webp", "pdf", "zip", "docx"],
)
async def test_binary_types_come_from_the_signature_not_the_client(
    client, alice, content, declared, expected
):
    file = await upload(client, alice, content, filename="x.bin", content_type=declared)
    assert file["content_type"] == expected


@pytest.mark.parametrize(
    ("content", "filename", "expected"),
    [
        (b"just words\n", "notes.txt", "text/plain"),
        ("ünïcödé ✓\n".encode(), "u.txt", "text/plain"),
        (b"a,b\n1,2\n", "table.csv", "text/csv"),
        (b"a,b\n1,2\n", "TABLE.CSV", "text/csv"),
        (b'{"a": [1, 2]}', "data.csv", "text/csv"),  # .csv wins over JSON
        (b'{"a": [1, 2, {"b": null}]}', "data.txt", "application/json"),
        (b"  [1, 2.5, true]\n", "noext", "application/json"),
        (b"42", "n", "application/json"),
        (b'{"a": 1} trailing', "data.json", "text/plain"),  # the name never makes it JSON
        (b"NaN", "x.json", "text/plain"),  # not RFC 8259 JSON
        (b"{'a': 1}", "x.json", "text/plain"),
        (b"a,b\n1,2\n", "table.txt", "text/plain"),
    ],
)
async def test_text_rules(client, alice, content, filename, expected):
    file = await upload(client, alice, content, filename=filename, content_type="image/png")
    assert file["content_type"] == expected


async def test_large_json_is_recognised_while_streaming(client, alice):
    content = json.dumps([{"i": i, "s": "x" * 50} for i in range(20000)]).encode()
    assert len(content) > 1024 * 1024
    file = await upload(client, alice, content, filename="big.txt")
    assert file["content_type"] == "application/json"


@pytest.mark.parametrize(
    ("content", "filename", "declared"),
    [
        (ELF, "photo.png", "image/png"),  # a disguised executable
        (b"MZ\x90\x00\x03\x00\x00\x00" + b"\x00" * 64, "setup.pdf", "application/pdf"),
        (b"text with a \x00 NUL byte", "a.txt", "text/plain"),
        (b"latin-1 \xe9t\xe9", "a.txt", "text/plain"),
        (b"cut off \xe2\x82", "a.txt", "text/plain"),  # an unfinished UTF-8 character
        (gzip.compress(b"hello"), "a.gz", "application/gzip"),
    ],
    ids=["elf-as-png", "exe-as-pdf", "nul", "not-utf8", "truncated-utf8", "gzip"],
)
async def test_types_not_allowed_are_415_and_leave_nothing(
    client, alice, storage, content, filename, declared
):
    resp = await client.post(
        "/files", data=form(content, filename=filename, content_type=declared), headers=alice
    )
    await assert_problem(resp, 415, "unsupported_media_type")
    assert await left_in_storage(storage) == ([], 0)
    listed = await (await client.get("/files", headers=alice)).json()
    assert listed["items"] == []


async def test_an_executable_is_refused_before_the_whole_body_arrives(client, alice, storage):
    """Past the first 4 KiB an ELF can be no allowed type: 415 without reading 40 MiB more."""

    async def body():
        yield ELF + b"\x00" * 8192
        for _ in range(40):
            yield b"\x00" * (1024 * 1024)

    resp = await client.post("/files", data=form(body(), filename="a.png"), headers=alice)
    await assert_problem(resp, 415, "unsupported_media_type")
    assert await left_in_storage(storage) == ([], 0)


@pytest.mark.parametrize(
    "headers",
    [
        {"Content-Type": "application/json"},
        {"Content-Type": "text/plain"},
        {"Content-Type": "multipart/mixed; boundary=b0undary"},
        {"Content-Type": "multipart/form-data"},  # no boundary
        {},
    ],
)
async def test_not_multipart_is_400(client, alice, headers):
    body, _ = raw_multipart([file_part("a.txt", b"hello")])
    resp = await client.post("/files", data=body, headers={**alice, **headers})
    await assert_problem(resp, 400, "not_multipart")


async def test_json_body_is_400(client, alice):
    resp = await client.post("/files", json={"file": "hello"}, headers=alice)
    await assert_problem(resp, 400, "not_multipart")


async def test_no_parts_is_422(client, alice):
    body, headers = raw_multipart([])
    resp = await client.post("/files", data=body, headers={**alice, **headers})
    problem = await assert_problem(resp, 422, "validation_failed")
    assert "file" in problem["errors"]


async def test_no_file_part_is_422(client, alice, storage):
    body, headers = raw_multipart([file_part("a.txt", b"hello", name="document")])
    resp = await client.post("/files", data=body, headers={**alice, **headers})
    await assert_problem(resp, 422, "validation_failed")
    assert await left_in_storage(storage) == ([], 0)


@pytest.mark.parametrize("second", ["note", "file"])
async def test_a_second_part_is_422_and_nothing_is_kept(client, alice, storage, second):
    body, headers = raw_multipart(
        [file_part("a.txt", b"hello"), file_part(None, b"more", name=second)]
    )
    resp = await client.post("/files", data=body, headers={**alice, **headers})
    await assert_problem(resp, 422, "validation_failed")
    assert await left_in_storage(storage) == ([], 0)
    assert (await (await client.get("/files", headers=alice)).json())["items"] == []


async def test_an_empty_file_is_422(client, alice, storage):
    body, headers = raw_multipart([file_part("empty.txt", b"")])
    resp = await client.post("/files", data=body, headers={**alice, **headers})
    problem = await assert_problem(resp, 422, "validation_failed")
    assert "file" in problem["errors"]
    assert await left_in_storage(storage) == ([], 0)


async def test_unknown_query_parameter_is_422(client, alice):
    resp = await client.post("/files?x=1", data=form(b"hello"), headers=alice)
    await assert_problem(resp, 422, "validation_failed")


async def test_upload_needs_a_token(client):
    resp = await client.post("/files", data=form(b"hello"))
    await assert_problem(resp, 401, "unauthorized")


# --- the size limit --------------------------------------------------------------------------


@pytest.fixture
async def small_client(aiohttp_client, make_files_settings):
    from svc_files import create_app

    return await aiohttp_client(create_app(make_files_settings(max_size=10_000)))


async def test_exactly_the_limit_is_accepted(small_client, alice):
    file = await upload(small_client, alice, b"x" * 10_000)
    assert file["size"] == 10_000


async def test_one_byte_over_the_limit_is_413_and_nothing_is_left(small_client, alice, storage):
    resp = await small_client.post("/files", data=form(b"x" * 10_001), headers=alice)
    problem = await assert_problem(resp, 413, "payload_too_large")
    assert "10000" in problem["detail"]
    assert await left_in_storage(storage) == ([], 0)


async def test_a_streamed_body_far_over_the_limit_is_413_without_reading_it_all(
    small_client, alice, storage
):
    async def body():
        for _ in range(64):
            yield b"y" * (1024 * 1024)

    resp = await small_client.post("/files", data=form(body()), headers=alice)
    await assert_problem(resp, 413, "payload_too_large")
    assert await left_in_storage(storage) == ([], 0)


async def test_the_limit_is_the_files_not_the_chassis_json_limit(client, alice):
    """CLIENT_MAX_SIZE (1 MiB) bounds JSON bodies; a 3 MiB file streams past it."""
    content = b"z" * (3 * 1024 * 1024)
    file = await upload(client, alice, content)
    assert file["size"] == len(content)


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br", "zstd", "x-unknown", "gzip, br"])
async def test_a_content_encoded_body_is_refused_never_5xx(client, alice, encoding):
    body, headers = raw_multipart([file_part("a.txt", b"hello encoded world")])
    if encoding == "gzip":
        body = gzip.compress(body)
    resp = await client.post(
        "/files", data=body, headers={**alice, **headers, "Content-Encoding": encoding}
    )
    # uploads are stored byte for byte: any coding is refused with 415 (api.md "bodies")
    await assert_problem(resp, 415, "unsupported_content_encoding")
