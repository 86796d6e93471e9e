"""Encryption at rest (FILES_ENCRYPTION_KEYS / FILES_ENCRYPTION_KEY_ID): what storage holds is
not the plaintext, on both backends; downloads and ranges across chunk boundaries round trip;
resumable uploads (an interrupted PATCH included) still work; a rotated master key still opens
older files; a missing key and tampered bytes are refused, never served."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import itertools
import logging
import os
import uuid
from pathlib import Path

import pytest

from svc_core import SettingsError, keys
from svc_core.testing import assert_problem, eventually
from svc_files import FilesSettings, create_app
from svc_files.encryption import CHUNK, SALT, TAG, Keyring, Sealer, Tampered, sealed_size
from svc_files.vault import SealingWriter
from tests.files.helpers import PNG, upload

MIB = 1024 * 1024
TUS = {"Tus-Resumable": "1.0.0"}
PATCH = {**TUS, "Content-Type": "application/offset+octet-stream"}


def key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


K1, K2 = f"k1:{key()}", f"k2:{key()}"
# a PNG of a little more than three chunks: a full middle chunk and a partial last one
DATA = PNG + os.urandom(3 * CHUNK + 1000 - len(PNG))


@pytest.fixture(params=["local", "s3"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def mongo_url() -> str:
    """One metadata database for every app a test starts (a restart with other keys)."""
    return f"memory://files-encryption-{uuid.uuid4().hex}"


@pytest.fixture
def start(aiohttp_client, make_files_settings, mongo_url):
    async def start_app(keys_: str, active: str):
        settings = make_files_settings(
            mongo_url=mongo_url, encryption_keys=keys_, encryption_key_id=active
        )
        return await aiohttp_client(create_app(settings))

    return start_app


async def stored(storage, file_id: str) -> bytes:
    return b"".join([chunk async for chunk in storage.read(file_id)])


async def metadata(client, file_id: str) -> dict:
    return await client.app[keys.MONGO_DB]["files"].find_one({"_id": file_id})


async def content(client, headers, file_id: str, **extra) -> tuple[int, bytes]:
    resp = await client.get(f"/files/{file_id}/content", headers={**headers, **extra})
    return resp.status, await resp.read()


# --- settings -----------------------------------------------------------------------------------


def test_keys_parse_from_the_variable_and_a_file(make_settings, tmp_path: Path):
    path = tmp_path / "keys"
    path.write_text(f"# rotated 2026-11\n{K2}\n")
    settings = make_settings(
        FilesSettings, encryption_keys=K1, encryption_keys_file=path, encryption_key_id="k2"
    )
    ring = settings.keyring()
    assert sorted(ring.keys) == ["k1", "k2"]
    assert ring.active == "k2"
    assert not make_settings(FilesSettings).keyring().encrypts  # off unless configured


@pytest.mark.parametrize(
    ("value", "active", "message"),
    [
        ("k1", "", "FILES_ENCRYPTION_KEYS: entry 1: expected key-id:base64"),
        (f"k 1:{key()}", "", "FILES_ENCRYPTION_KEYS: entry 1: expected key-id:base64"),
        ("k1:not*base64", "", "FILES_ENCRYPTION_KEYS: key 'k1': not base64"),
        (f"k1:{base64.b64encode(b'short').decode()}", "", "key 'k1': 5 bytes, expected 32"),
        (f"{K1},{K1}", "k1", "FILES_ENCRYPTION_KEYS: key 'k1': listed twice"),
        (K1, "k2", "FILES_ENCRYPTION_KEY_ID: 'k2' is not a key id of FILES_ENCRYPTION_KEYS"),
        ("", "k1", "FILES_ENCRYPTION_KEY_ID: 'k1' is not a key id"),
    ],
)
def test_a_malformed_key_refuses_to_start_without_showing_it(make_settings, value, active, message):
    with pytest.raises(SettingsError, match=r"^FILES_ENCRYPTION_KEY") as refused:
        make_settings(FilesSettings, encryption_keys=value, encryption_key_id=active)
    assert message in str(refused.value)
    assert K1.split(":")[1] not in str(refused.value)


def test_a_missing_keys_file_refuses_to_start(make_settings, tmp_path: Path):
    with pytest.raises(SettingsError, match=r"^FILES_ENCRYPTION_KEYS_FILE: cannot read"):
        make_settings(FilesSettings, encryption_keys_file=tmp_path / "nope")


# --- the format ---------------------------------------------------------------------------------


async def test_chunks_cannot_be_swapped_moved_or_cut():
    data_key = os.urandom(32)
    sealer = Sealer(data_key, "file/a")
    first = sealer.seal(0, b"x" * 10, last=False)
    second = sealer.seal(1, b"y" * 10, last=True)
    assert sealer.open(1, second, last=True) == b"y" * 10
    for index, piece, last in [(0, second, False), (1, first, True), (0, first, True)]:
        with pytest.raises(Tampered):  # swapped, or the end cut off (not sealed as the last)
            sealer.open(index, piece, last=last)
    with pytest.raises(Tampered):  # another file's chunk, even under the same key
        Sealer(data_key, "file/b").open(0, first, last=False)


async def test_a_wrapped_data_key_belongs_to_its_file():
    ring = Keyring({"k1": os.urandom(32)}, "k1")
    data_key, record = ring.new_data_key("file/a")
    assert ring.data_key("file/a", record) == data_key
    with pytest.raises(Tampered):
        ring.data_key("file/b", record)


@pytest.mark.parametrize(
    "wrapped",
    ["not base64!", "", base64.b64encode(b"short").decode(), None],
    ids=["not-base64", "empty", "too-short", "missing"],
)
async def test_a_damaged_wrapped_key_is_refused_as_tampered(wrapped):
    ring = Keyring({"k1": os.urandom(32)}, "k1")
    _, record = ring.new_data_key("file/a")
    damaged = {k: v for k, v in record.items() if k != "wrapped"}
    if wrapped is not None:
        damaged["wrapped"] = wrapped
    with pytest.raises(Tampered):
        ring.data_key("file/a", damaged)


# --- at rest, round trip, ranges ----------------------------------------------------------------


async def test_stored_bytes_are_not_the_plaintext_and_round_trip(start, alice, storage):
    client = await start(K1, "k1")
    file = await upload(client, alice, DATA, filename="p.png")
    assert file["content_type"] == "image/png"  # sniffed from the plaintext
    raw = await stored(storage, file["id"])
    assert len(raw) == sealed_size(len(DATA)) == len(DATA) + 4 * TAG
    assert raw != DATA
    for at in (0, 100, CHUNK, 2 * CHUNK + 7, len(DATA) - 64):  # no stretch of plaintext shows
        assert DATA[at : at + 32] not in raw
    record = (await metadata(client, file["id"]))["encryption"]
    assert record["key_id"] == "k1"
    assert set(record) == {"alg", "key_id", "wrapped", "chunk"}
    listed = await (await client.get(f"/files/{file['id']}", headers=alice)).json()
    assert "encryption" not in listed  # never in the public shape
    status, body = await content(client, alice, file["id"])
    assert (status, body) == (200, DATA)


@pytest.mark.parametrize(
    ("first", "last"),
    [
        (0, 0),
        (CHUNK - 10, CHUNK + 9),  # across the first boundary
        (CHUNK - 1, CHUNK),
        (CHUNK, 2 * CHUNK - 1),  # exactly one chunk
        (10, 3 * CHUNK + 5),  # four chunks, cut at both ends
        (3 * CHUNK + 999, 3 * CHUNK + 999),  # the last byte
        (2 * CHUNK + 1, 10 * CHUNK),  # past the end: clipped
    ],
)
async def test_ranges_across_chunk_boundaries(start, alice, first, last):
    client = await start(K1, "k1")
    file = await upload(client, alice, DATA, filename="p.png")
    resp = await client.get(
        f"/files/{file['id']}/content", headers={**alice, "Range": f"bytes={first}-{last}"}
    )
    assert resp.status == 206
    assert await resp.read() == DATA[first : last + 1]
    end = min(last, len(DATA) - 1)
    assert resp.headers["Content-Range"] == f"bytes {first}-{end}/{len(DATA)}"
    tail = await client.get(
        f"/files/{file['id']}/content", headers={**alice, "Range": "bytes=-70000"}
    )
    assert await tail.read() == DATA[-70000:]


async def test_a_file_of_exactly_whole_chunks_round_trips(start, alice, storage):
    data = PNG + b"\x00" * (2 * CHUNK - len(PNG))
    client = await start(K1, "k1")
    file = await upload(client, alice, data, filename="p.png")
    assert len(await stored(storage, file["id"])) == len(data) + 2 * TAG
    assert await content(client, alice, file["id"]) == (200, data)


# --- resumable uploads --------------------------------------------------------------------------


async def test_a_tus_upload_in_several_patches(start, alice, storage):
    client = await start(K1, "k1")
    data = PNG + os.urandom(200_000)
    resp = await client.post(
        "/files/uploads", headers={**alice, **TUS, "Upload-Length": str(len(data))}
    )
    location = resp.headers["Location"]
    upload_id = location.rsplit("/", 1)[-1]
    cuts = [0, 1000, CHUNK + 3, CHUNK + 4, 150_000, len(data)]  # of all sizes, none aligned
    for start_at, end in itertools.pairwise(cuts):
        resp = await client.patch(
            location,
            data=data[start_at:end],
            headers={**alice, **PATCH, "Upload-Offset": str(start_at)},
        )
        assert resp.status == 204, await resp.text()
        if end < len(data):  # the pieces are sealed too
            pieces = await storage.segments(upload_id)
            assert [offset for offset, _ in pieces] == cuts[: cuts.index(end)]
            for offset, size in pieces:
                piece_end = cuts[cuts.index(offset) + 1]
                assert size == SALT + sealed_size(piece_end - offset)
                raw = b"".join([c async for c in storage.read_segment(upload_id, offset)])
                assert data[offset : offset + 16] not in raw
    raw = await stored(storage, upload_id)
    assert len(raw) == sealed_size(len(data))
    assert data[:64] not in raw
    file = await (await client.get(f"/files/{upload_id}", headers=alice)).json()
    assert file["sha256"] == hashlib.sha256(data).hexdigest()
    assert file["content_type"] == "image/png"
    assert await content(client, alice, upload_id) == (200, data)


async def test_an_interrupted_patch_keeps_every_byte_that_arrived(
    start, alice, storage, monkeypatch
):
    client = await start(K1, "k1")
    length = 2 * MIB
    location = (
        await client.post("/files/uploads", headers={**alice, **TUS, "Upload-Length": str(length)})
    ).headers["Location"]
    sent = PNG + os.urandom(3 * CHUNK + 12_345)  # ends in a partial chunk
    received = 0
    real_write = SealingWriter.write

    async def counting(self, chunk):  # how much the server has taken in, plaintext
        nonlocal received
        received += len(chunk)
        await real_write(self, chunk)

    monkeypatch.setattr(SealingWriter, "write", counting)
    _reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(
        (
            f"PATCH {location} HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: {alice['Authorization']}\r\nTus-Resumable: 1.0.0\r\n"
            "Content-Type: application/offset+octet-stream\r\nUpload-Offset: 0\r\n"
            f"Content-Length: {length}\r\n\r\n"
        ).encode()
        + sent
    )
    await writer.drain()
    await eventually(lambda: received == len(sent), timeout=10)
    writer.transport.abort()  # the connection breaks mid-body

    async def kept():
        resp = await client.head(location, headers={**alice, **TUS})
        return resp.headers.get("Upload-Offset") == str(len(sent))

    await eventually(kept, timeout=10)
    upload_id = location.rsplit("/", 1)[-1]
    [(offset, size)] = await storage.segments(upload_id)
    assert (offset, size) == (0, SALT + sealed_size(len(sent)))  # the partial tail sealed too
    rest = os.urandom(length - len(sent))
    resp = await client.patch(
        location, data=io.BytesIO(rest), headers={**alice, **PATCH, "Upload-Offset": str(len(sent))}
    )
    assert resp.status == 204, await resp.text()
    assert await content(client, alice, upload_id) == (200, sent + rest)


# --- rotation, a missing key, tampering ---------------------------------------------------------


async def test_a_rotated_master_key_still_opens_older_files(start, alice, storage):
    before = await start(K1, "k1")
    old = await upload(before, alice, DATA, filename="old.png")
    unfinished = (
        await before.post("/files/uploads", headers={**alice, **TUS, "Upload-Length": "20"})
    ).headers["Location"]
    resp = await before.patch(
        unfinished, data=b"first half", headers={**alice, **PATCH, "Upload-Offset": "0"}
    )
    assert resp.status == 204

    after = await start(f"{K1},{K2}", "k2")  # k2 active, k1 still listed
    assert await content(after, alice, old["id"]) == (200, DATA)
    new = await upload(after, alice, DATA, filename="new.png")
    assert (await metadata(after, new["id"]))["encryption"]["key_id"] == "k2"
    assert (await metadata(after, old["id"]))["encryption"]["key_id"] == "k1"
    assert await stored(storage, new["id"]) != await stored(storage, old["id"])  # own data keys
    resp = await after.patch(  # an upload begun under k1 finishes under k2
        unfinished, data=b"second hal", headers={**alice, **PATCH, "Upload-Offset": "10"}
    )
    assert resp.status == 204, await resp.text()
    finished = unfinished.rsplit("/", 1)[-1]
    assert await content(after, alice, finished) == (200, b"first halfsecond hal")
    assert (await metadata(after, finished))["encryption"]["key_id"] == "k2"


async def test_a_missing_master_key_is_a_clear_server_error(start, alice, caplog):
    before = await start(K1, "k1")
    file = await upload(before, alice, DATA, filename="old.png")
    after = await start(K2, "k2")  # k1 dropped too early
    with caplog.at_level(logging.ERROR, logger="svc_files.vault"):
        resp = await after.get(f"/files/{file['id']}/content", headers=alice)
        problem = await assert_problem(resp, 500, "internal_error")
    assert "k1" not in str(problem)
    logged = [r.getMessage() for r in caplog.records if r.name == "svc_files.vault"]
    assert any(
        "its master key 'k1' is not in FILES_ENCRYPTION_KEYS" in m and file["id"] in m
        for m in logged
    ), logged
    assert K1.split(":")[1] not in caplog.text
    # the metadata is still served; only the bytes cannot be
    assert (await after.get(f"/files/{file['id']}", headers=alice)).status == 200


def _flip(raw: bytes, at: int) -> bytes:
    return raw[:at] + bytes([raw[at] ^ 1]) + raw[at + 1 :]


@pytest.mark.parametrize("backend", ["local"])
@pytest.mark.parametrize(
    "tamper",
    [
        lambda raw: _flip(raw, 5),  # the first chunk
        lambda raw: raw[CHUNK + TAG :],  # the first chunk cut away
        lambda raw: (
            raw[CHUNK + TAG : 2 * (CHUNK + TAG)] + raw[: CHUNK + TAG] + raw[2 * (CHUNK + TAG) :]
        ),
    ],
    ids=["flipped", "cut", "swapped"],
)
async def test_tampered_bytes_in_the_first_chunk_are_a_500(start, alice, storage, tamper, backend):
    client = await start(K1, "k1")
    file = await upload(client, alice, DATA, filename="p.png")
    path = storage.path(file["id"])
    path.write_bytes(tamper(path.read_bytes()))
    resp = await client.get(f"/files/{file['id']}/content", headers=alice)
    await assert_problem(resp, 500, "internal_error")


@pytest.mark.parametrize("backend", ["local"])
@pytest.mark.parametrize(
    "tamper",
    [lambda raw: _flip(raw, len(raw) - 1), lambda raw: raw[: -(1000 + TAG)]],
    ids=["flipped", "end-cut-off"],
)
async def test_tampered_bytes_later_cut_the_download_short(start, alice, storage, tamper, backend):
    import aiohttp

    client = await start(K1, "k1")
    file = await upload(client, alice, DATA, filename="p.png")
    path = storage.path(file["id"])
    path.write_bytes(tamper(path.read_bytes()))
    resp = await client.get(f"/files/{file['id']}/content", headers=alice)
    assert resp.status == 200  # the first chunk was good: the answer had begun
    with pytest.raises(aiohttp.ClientPayloadError):
        await resp.read()  # fewer bytes than Content-Length: the client knows it is broken
    # the chunks that are intact still serve a range
    status, body = await content(client, alice, file["id"], Range=f"bytes=0-{CHUNK}")
    assert (status, body) == (206, DATA[: CHUNK + 1])


async def test_the_rekey_command_reports_in_one_line_and_exits_with_its_status(
    start, alice, mongo_url, capsys
):
    from svc_files.rekey import _main

    client = await start(K1, "k1")
    file = await upload(client, alice, DATA, filename="old.png")
    env = {"ENVIRONMENT": "development", "MONGO_URL": mongo_url}

    async def run(keys_: str, active: str) -> tuple[int, str, str]:
        code = await _main(
            env | {"FILES_ENCRYPTION_KEYS": keys_, "FILES_ENCRYPTION_KEY_ID": active}
        )
        out, err = capsys.readouterr()
        return code, out, err

    code, out, err = await run(K2, "k2")  # k1, which the file's key is wrapped by, is gone
    assert (code, out) == (1, "")
    assert err == "rekey: master key 'k1' is needed and not listed\n"
    code, out, err = await run(f"{K1},{K2}", "k9")  # bad settings: no traceback, no key
    assert (code, out) == (2, "")
    assert err.startswith("rekey: FILES_ENCRYPTION_KEY_ID")
    assert err.count("\n") == 1
    assert K1.split(":")[1] not in err
    assert "Traceback" not in err
    code, out, err = await run(f"{K1},{K2}", "k2")
    assert (code, err) == (0, "")
    assert out == "rekey: re-wrapped 1 files and 0 uploads under 'k2'\n"
    assert (await metadata(client, file["id"]))["encryption"]["key_id"] == "k2"


async def test_the_rekey_command_logs_in_as_the_file_services_own_user(monkeypatch, capsys):
    from svc_core import mongo
    from svc_files import rekey

    seen: dict[str, object] = {}
    real_open_client = mongo.open_client

    def open_client(url: str, **options: object) -> object:
        seen.update(options, url=url)
        return real_open_client(f"memory://rekey-{uuid.uuid4().hex}")

    monkeypatch.setattr(rekey.mongo, "open_client", open_client)
    monkeypatch.setattr(rekey.mongo, "close_client", lambda client, url: asyncio.sleep(0))
    env = {
        "ENVIRONMENT": "development",
        "MONGO_URL": "mongodb://mongo:27017/?replicaSet=rs0",
        "MONGO_USERNAME": "files",
        "MONGO_PASSWORD": "its-own-password",
        "FILES_ENCRYPTION_KEYS": K1,
        "FILES_ENCRYPTION_KEY_ID": "k1",
    }
    assert await rekey._main(env) == 0
    assert seen == {
        "url": "mongodb://mongo:27017/?replicaSet=rs0",
        "username": "files",
        "password": "its-own-password",
        "authSource": "files",
    }
    assert "its-own-password" not in "".join(capsys.readouterr())


async def test_rekey_rewraps_so_the_old_key_can_go(start, alice, storage):
    from svc_files.encryption import parse_keys
    from svc_files.rekey import rewrap_all

    before = await start(K1, "k1")
    file = await upload(before, alice, DATA, filename="old.png")
    raw = await stored(storage, file["id"])
    unfinished = (
        await before.post("/files/uploads", headers={**alice, **TUS, "Upload-Length": "20"})
    ).headers["Location"]
    resp = await before.patch(
        unfinished, data=b"first half", headers={**alice, **PATCH, "Upload-Offset": "0"}
    )
    assert resp.status == 204
    db = before.app[keys.MONGO_DB]
    both = Keyring(parse_keys(f"{K1},{K2}"), "k2")
    assert await rewrap_all(db, both) == {"files": 1, "uploads": 1}
    assert await rewrap_all(db, both) == {"files": 0, "uploads": 0}  # nothing left to do
    assert await stored(storage, file["id"]) == raw  # the bytes were not touched

    after = await start(K2, "k2")  # k1 is gone
    assert await content(after, alice, file["id"]) == (200, DATA)
    resp = await after.patch(
        unfinished, data=b"second hal", headers={**alice, **PATCH, "Upload-Offset": "10"}
    )
    assert resp.status == 204, await resp.text()
    assert await content(after, alice, unfinished.rsplit("/", 1)[-1]) == (
        200,
        b"first halfsecond hal",
    )
