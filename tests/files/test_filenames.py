"""Display filenames cleaned exactly as api.md says, end to end and rule by rule."""

from __future__ import annotations

import pytest

from svc_files.filenames import clean_filename, content_disposition
from tests.files.helpers import file_part, raw_multipart


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("report.pdf", "report.pdf"),
        ("../../etc/passwd", "passwd"),
        ("..\\..\\windows\\win.ini", "win.ini"),
        ("C:\\Users\\me\\photo.png", "photo.png"),
        ("/abs/path/", "file"),  # the last segment is empty
        ("..", "file"),
        ("a%2F..%2F..%2Fsecret.txt", "secret.txt"),  # percent-decoded, then reduced
        ("na%C3%AFve%20file.txt", "naïve file.txt"),
        ("100%.txt", "100%.txt"),  # not an escape: kept
        ("bell\x07tab\tnl\nnul\x00.txt", "belltabnlnul.txt"),  # Cc removed
        ("evil\u202etxt.exe", "eviltxt.exe"),  # RIGHT-TO-LEFT OVERRIDE (Cf) removed
        ("zero\u200bwidth\ufeff.txt", "zerowidth.txt"),  # Cf removed
        ("%E2%80%AEcod.exe", "cod.exe"),  # a percent-encoded Cf is removed too
        ("", "file"),
        (None, "file"),
        ("\x01\x02", "file"),
    ],
)
def test_clean_filename(raw, clean):
    assert clean_filename(raw) == clean


def test_long_names_are_cut_to_255_bytes_keeping_the_extension():
    name = "é" * 200 + ".tar.gz"
    cleaned = clean_filename(name)
    assert len(cleaned.encode()) <= 255
    assert cleaned.endswith(".gz")
    assert cleaned == "é" * 126 + ".gz"  # 252 bytes of whole characters + 3
    assert clean_filename("a" * 300) == "a" * 255
    assert clean_filename("a" * 255 + ".txt") == "a" * 251 + ".txt"
    exactly = "b" * 251 + ".txt"
    assert clean_filename(exactly) == exactly


def test_content_disposition_is_rfc_5987():
    assert content_disposition("a b.txt") == "attachment; filename*=UTF-8''a%20b.txt"
    assert content_disposition("ü'\"\\.txt") == "attachment; filename*=UTF-8''%C3%BC%27%22%5C.txt"


@pytest.mark.parametrize(
    ("sent", "shown"),
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\boot.ini", "boot.ini"),
        ("a%07b%1Bc%0A.txt", "abc.txt"),  # percent-encoded controls, as browsers send them
        ("tab\there.txt", "tabhere.txt"),  # the one control a header may carry raw
        ("doc\u202etxt.exe", "doctxt.exe"),
        ("%2e%2e%2fup.txt", "up.txt"),
        ("", "file"),
    ],
)
async def test_filenames_on_upload(client, alice, storage, sent, shown):
    body, headers = raw_multipart([file_part(sent, b"hello")])
    resp = await client.post("/files", data=body, headers={**alice, **headers})
    assert resp.status == 201, await resp.text()
    file = await resp.json()
    assert file["filename"] == shown
    # the storage key is the generated id, whatever the name said
    assert await storage.keys() == [file["id"]]


async def test_no_filename_at_all_is_file(client, alice):
    body, headers = raw_multipart([file_part(None, b"hello")])
    resp = await client.post("/files", data=body, headers={**alice, **headers})
    assert (await resp.json())["filename"] == "file"


async def test_rfc5987_filename_star_is_used(client, alice):
    head = "Content-Disposition: form-data; name=\"file\"; filename*=UTF-8''%C3%A9t%C3%A9.txt"
    body, headers = raw_multipart([(head, b"summer")])
    resp = await client.post("/files", data=body, headers={**alice, **headers})
    assert (await resp.json())["filename"] == "été.txt"


async def test_raw_utf8_and_invalid_bytes_in_the_header(client, alice):
    boundary = "b0undary"
    body = (
        f"--{boundary}\r\n".encode()
        + b'Content-Disposition: form-data; name="file"; filename="caf\xc3\xa9\xff.txt"\r\n\r\n'
        + b"coffee\r\n"
        + f"--{boundary}--\r\n".encode()
    )
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    resp = await client.post("/files", data=body, headers={**alice, **headers})
    assert resp.status == 201, await resp.text()
    assert (await resp.json())["filename"] == "café\ufffd.txt"


async def test_a_raw_control_character_in_a_part_header_is_400(client, alice, storage):
    """Header values may not hold controls (but tab): the part is malformed, nothing stored."""
    body, headers = raw_multipart([file_part("a\x07b.txt", b"hello")])
    resp = await client.post("/files", data=body, headers={**alice, **headers})
    assert resp.status == 400
    assert (await resp.json())["code"] == "malformed_multipart"
    assert await storage.keys() == []
