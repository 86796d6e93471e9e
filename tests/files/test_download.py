"""GET/HEAD /files/{id}/content, GET /files, GET /files/{id}, DELETE /files/{id}: every row of
api.md's File table, and ownership on every route."""

from __future__ import annotations

import hashlib

import pytest

from svc_core.testing import assert_problem
from tests.files.helpers import PNG, left_in_storage, upload

CONTENT = bytes(range(256)) * 40 + b"tail"  # 10244 bytes, binary after a PNG signature
BODY = PNG[:16] + CONTENT
SIZE = len(BODY)


@pytest.fixture
async def png(client, alice):
    return await upload(client, alice, BODY, filename="pic.png")


def url(file) -> str:
    return f"/files/{file['id']}/content"


async def test_whole_file_with_every_header(client, alice, png):
    resp = await client.get(url(png), headers=alice)
    assert resp.status == 200
    assert await resp.read() == BODY
    h = resp.headers
    assert h["Content-Type"] == "image/png"
    assert h["Content-Length"] == str(SIZE)
    assert h["ETag"] == f'"{hashlib.sha256(BODY).hexdigest()}"'
    assert h["Content-Disposition"] == "attachment; filename*=UTF-8''pic.png"
    assert h["X-Content-Type-Options"] == "nosniff"
    assert h["Cache-Control"] == "private, no-cache"
    assert "Content-Range" not in h
    assert h["X-Request-ID"]


@pytest.mark.parametrize(
    ("content", "filename", "header"),
    [
        (b"plain\n", "a.txt", "text/plain; charset=utf-8"),
        (b"a,b\n", "a.csv", "text/csv; charset=utf-8"),
        (b'{"a": 1}', "a.json", "application/json; charset=utf-8"),
    ],
)
async def test_text_types_say_utf8(client, alice, content, filename, header):
    file = await upload(client, alice, content, filename=filename)
    resp = await client.get(url(file), headers=alice)
    assert resp.headers["Content-Type"] == header
    assert await resp.read() == content


async def test_unicode_filename_in_content_disposition(client, alice):
    file = await upload(client, alice, b"x", filename='résumé 2026;"q".txt')
    resp = await client.get(url(file), headers=alice)
    assert resp.headers["Content-Disposition"] == (
        "attachment; filename*=UTF-8''r%C3%A9sum%C3%A9%202026%3B%22q%22.txt"
    )


async def test_head_has_the_headers_and_no_body(client, alice, png):
    get = await client.get(url(png), headers=alice)
    head = await client.head(url(png), headers=alice)
    assert head.status == 200
    assert await head.read() == b""
    for name in (
        "Content-Type",
        "Content-Length",
        "ETag",
        "Content-Disposition",
        "X-Content-Type-Options",
        "Cache-Control",
    ):
        assert head.headers[name] == get.headers[name], name


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-0", 0, 0),  # first byte
        ("bytes=0-99", 0, 99),
        (f"bytes={SIZE - 1}-{SIZE - 1}", SIZE - 1, SIZE - 1),  # last byte
        (f"bytes={SIZE - 1}-", SIZE - 1, SIZE - 1),
        ("bytes=-1", SIZE - 1, SIZE - 1),  # suffix: the last byte
        ("bytes=-10", SIZE - 10, SIZE - 1),
        (f"bytes=-{SIZE + 50}", 0, SIZE - 1),  # a suffix longer than the file: all of it
        ("bytes=100-", 100, SIZE - 1),
        (f"bytes=10-{SIZE + 1000}", 10, SIZE - 1),  # past the end: cut at the end
        ("bytes= 5-9", 5, 9),  # whitespace around the list element (RFC 9110 #rule)
        ("bytes=10-" + "9" * 5000, 10, SIZE - 1),  # an end longer than Python parses: the end
        ("bytes=-" + "9" * 5000, 0, SIZE - 1),  # such a suffix: all of it
        ("bytes=" + "0" * 5000 + "7-00009", 7, 9),  # leading zeros are still the number
    ],
)
async def test_one_range_is_206(client, alice, png, header, start, end):
    resp = await client.get(url(png), headers={**alice, "Range": header})
    assert resp.status == 206
    assert await resp.read() == BODY[start : end + 1]
    assert resp.headers["Content-Range"] == f"bytes {start}-{end}/{SIZE}"
    assert resp.headers["Content-Length"] == str(end - start + 1)
    assert resp.headers["ETag"] == f'"{png["sha256"]}"'


@pytest.mark.parametrize(
    "header",
    [f"bytes={SIZE}-", f"bytes={SIZE}-{SIZE + 5}", "bytes=-0", "bytes=" + "9" * 5000 + "-"],
)
async def test_a_range_past_the_end_is_416(client, alice, png, header):
    resp = await client.get(url(png), headers={**alice, "Range": header})
    await assert_problem(resp, 416, "range_not_satisfiable")
    assert resp.headers["Content-Range"] == f"bytes */{SIZE}"


@pytest.mark.parametrize(
    "header",
    [
        "bytes=0-1,5-6",  # several ranges: the whole file
        f"bytes=0-1,{SIZE}-",
        "items=0-1",  # another unit
        "bytes=5-1",  # invalid
        "bytes=abc",
        "bytes=-",
        "bytes=0-\u0663",  # a digit of another script (RFC 9110: DIGIT is ASCII)
        "bytes=\u0661-2",
    ],
)
async def test_other_ranges_get_the_whole_file(client, alice, png, header):
    resp = await client.get(url(png), headers={**alice, "Range": header})
    assert resp.status == 200
    assert await resp.read() == BODY
    assert "Content-Range" not in resp.headers


async def test_if_range_with_another_etag_gets_the_whole_file(client, alice, png):
    stale = {**alice, "Range": "bytes=0-0", "If-Range": '"0000"'}
    resp = await client.get(url(png), headers=stale)
    assert resp.status == 200
    current = {**alice, "Range": "bytes=0-0", "If-Range": f'"{png["sha256"]}"'}
    assert (await client.get(url(png), headers=current)).status == 206


@pytest.mark.parametrize(
    "value",
    ["{etag}", "W/{etag}", '"other", {etag}', "*"],
)
async def test_if_none_match_is_304_decided_before_range(client, alice, png, value):
    etag = f'"{png["sha256"]}"'
    headers = {**alice, "If-None-Match": value.format(etag=etag), "Range": "bytes=0-0"}
    for method in (client.get, client.head):
        resp = await method(url(png), headers=headers)
        assert resp.status == 304
        assert await resp.read() == b""
        assert resp.headers["ETag"] == etag
        assert resp.headers["Cache-Control"] == "private, no-cache"
    # even a range that could not be satisfied: the 304 comes first
    unsatisfiable = {**headers, "Range": f"bytes={SIZE}-"}
    assert (await client.get(url(png), headers=unsatisfiable)).status == 304


async def test_if_none_match_not_matching_sends_the_file(client, alice, png):
    resp = await client.get(url(png), headers={**alice, "If-None-Match": '"abc"'})
    assert resp.status == 200
    assert await resp.read() == BODY


async def test_head_with_a_range(client, alice, png):
    resp = await client.head(url(png), headers={**alice, "Range": "bytes=1-2"})
    assert resp.status == 206
    assert resp.headers["Content-Range"] == f"bytes 1-2/{SIZE}"
    assert resp.headers["Content-Length"] == "2"


async def test_unknown_file_is_404(client, alice):
    for path in ("/files/0123456789abcdef01234567", "/files/0123456789abcdef01234567/content"):
        await assert_problem(await client.get(path, headers=alice), 404, "not_found")
    await assert_problem(
        await client.delete("/files/0123456789abcdef01234567", headers=alice), 404, "not_found"
    )
    await assert_problem(
        await client.get("/files/../../etc/passwd", headers=alice), 404, "not_found"
    )


async def test_another_customers_file_is_404_on_every_route(client, alice, bob, png):
    assert (await client.get(f"/files/{png['id']}", headers=bob)).status == 404
    assert (await client.get(url(png), headers=bob)).status == 404
    assert (await client.head(url(png), headers=bob)).status == 404
    range_and_etag = {**bob, "Range": "bytes=0-0", "If-None-Match": f'"{png["sha256"]}"'}
    assert (await client.get(url(png), headers=range_and_etag)).status == 404
    await assert_problem(await client.delete(f"/files/{png['id']}", headers=bob), 404, "not_found")
    listed = await (await client.get("/files", headers=bob)).json()
    assert listed == {"items": [], "next_cursor": None}
    # still alice's, untouched
    resp = await client.get(url(png), headers=alice)
    assert await resp.read() == BODY


async def test_routes_need_a_token(client, png):
    for path in ("/files", f"/files/{png['id']}", url(png)):
        await assert_problem(await client.get(path), 401, "unauthorized")
    await assert_problem(await client.delete(f"/files/{png['id']}"), 401, "unauthorized")


async def test_delete_removes_the_bytes_then_the_file(client, alice, png, storage):
    assert await storage.keys() == [png["id"]]
    resp = await client.delete(f"/files/{png['id']}", headers=alice)
    assert resp.status == 204
    assert await resp.read() == b""
    assert await left_in_storage(storage) == ([], 0)
    assert (await client.get(f"/files/{png['id']}", headers=alice)).status == 404
    assert (await client.get(url(png), headers=alice)).status == 404
    assert (await client.delete(f"/files/{png['id']}", headers=alice)).status == 404


async def test_bytes_gone_without_metadata_answer_404(client, alice, png, storage):
    """A crash between the two steps of a delete leaves metadata pointing at nothing: 404."""
    await storage.delete(png["id"])
    await assert_problem(await client.get(url(png), headers=alice), 404, "not_found")


async def test_list_newest_first_with_cursor(client, alice, bob):
    ids = [(await upload(client, alice, f"n{i}".encode()))["id"] for i in range(5)]
    await upload(client, bob, b"bob's")
    first = await (await client.get("/files?limit=2", headers=alice)).json()
    assert [f["id"] for f in first["items"]] == ids[::-1][:2]
    second = await (
        await client.get(f"/files?limit=2&cursor={first['next_cursor']}", headers=alice)
    ).json()
    assert [f["id"] for f in second["items"]] == ids[::-1][2:4]
    everything = await (await client.get("/files", headers=alice)).json()
    assert [f["id"] for f in everything["items"]] == ids[::-1]
    assert everything["next_cursor"] is None
    assert set(everything["items"][0]) == {
        "id", "filename", "content_type", "size", "sha256", "created_at"
    }  # fmt: skip


@pytest.mark.parametrize("params", ["limit=0", "limit=101", "limit=x", "cursor=nope", "other=1"])
async def test_list_validation_is_422(client, alice, params):
    await assert_problem(
        await client.get(f"/files?{params}", headers=alice), 422, "validation_failed"
    )


async def test_get_with_unknown_query_is_422(client, alice, png):
    resp = await client.get(f"/files/{png['id']}?x=1", headers=alice)
    await assert_problem(resp, 422, "validation_failed")


async def test_downloads_without_sendfile_read_in_chunks(client, alice, png, monkeypatch):
    """A loop without sendfile (uvloop): the same bytes, read in chunks."""
    import asyncio

    async def no_sendfile(*args, **kwargs):
        raise NotImplementedError

    monkeypatch.setattr(asyncio.get_running_loop(), "sendfile", no_sendfile)
    resp = await client.get(url(png), headers=alice)
    assert await resp.read() == BODY
    ranged = await client.get(url(png), headers={**alice, "Range": "bytes=5-20"})
    assert await ranged.read() == BODY[5:21]


@pytest.mark.parametrize("mode", ["primary", "secondaryPreferred"])
async def test_the_list_reads_with_the_configured_read_preference(
    aiohttp_client, make_files_settings, alice, monkeypatch, mode
):
    from svc_core.testing import record_list_reads
    from svc_files import create_app, repository

    seen = record_list_reads(monkeypatch, repository)
    client = await aiohttp_client(create_app(make_files_settings(mongo_read_preference=mode)))
    file = await upload(client, alice, b"hello")
    assert (await client.get(f"/files/{file['id']}", headers=alice)).status == 200
    assert seen == []  # by id: the primary, so a file just uploaded is always found
    listed = await (await client.get("/files", headers=alice)).json()
    assert [f["id"] for f in listed["items"]] == [file["id"]]
    assert seen == [mode]
