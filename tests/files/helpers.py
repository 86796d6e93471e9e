"""Helpers for the file service's tests."""

from __future__ import annotations

import hashlib
import io
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4
ELF = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 8 + b"\x02\x00\x3e\x00" + bytes(range(256)) * 4


def form(
    content: bytes | Any,
    *,
    filename: str | None = "a.txt",
    name: str = "file",
    content_type: str = "application/octet-stream",
) -> aiohttp.FormData:
    if isinstance(content, bytes) and len(content) > 256 * 1024:
        content = io.BytesIO(content)  # large raw bytes warn (and fail) in aiohttp's client
    data = aiohttp.FormData()
    data.add_field(name, content, filename=filename, content_type=content_type)
    return data


async def upload(
    client: TestClient,
    headers: dict[str, str],
    content: bytes,
    *,
    filename: str | None = "a.txt",
    content_type: str = "application/octet-stream",
) -> dict[str, Any]:
    resp = await client.post(
        "/files", data=form(content, filename=filename, content_type=content_type), headers=headers
    )
    assert resp.status == 201, await resp.text()
    file = await resp.json()
    assert file["sha256"] == hashlib.sha256(content).hexdigest()
    assert file["size"] == len(content)
    return file


def raw_multipart(
    parts: list[tuple[str, bytes]], boundary: str = "b0undary"
) -> tuple[bytes, dict[str, str]]:
    """A multipart body written byte by byte: ``parts`` are (header lines, body)."""
    out = b""
    for head, content in parts:
        out += f"--{boundary}\r\n".encode() + head.encode("utf-8") + b"\r\n\r\n" + content + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return out, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def file_part(filename: str | None, content: bytes, name: str = "file") -> tuple[str, bytes]:
    disposition = f'form-data; name="{name}"'
    if filename is not None:
        disposition += f'; filename="{filename}"'
    return f"Content-Disposition: {disposition}\r\nContent-Type: application/octet-stream", content


async def left_in_storage(storage: Any) -> tuple[list[str], int]:
    """(committed keys, unfinished writes) in a backend."""
    return await storage.keys(), await storage.temporaries()
