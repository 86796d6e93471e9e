"""The ``s3`` backend: any S3-compatible object store (AWS S3, MinIO, Ceph) via aiobotocore.

A write buffers at most one part (``part_size``, at least S3's 5 MiB minimum): a file smaller
than that is one ``PutObject`` at commit; a larger one becomes a multipart upload, each full
part uploaded as it fills, completed at commit. Until then nothing is visible under the key,
and ``abort`` aborts the multipart upload (its parts are dropped by the store). Downloads are
ranged ``GetObject`` calls streamed chunk by chunk. ``sweep`` aborts multipart uploads that a
crash left behind, by their initiation time.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from aiohttp import web
from botocore.exceptions import ClientError

from svc_files.storage import CHUNK, Missing, check_key

MIN_PART = 5 * 1024 * 1024
_MISSING_CODES = frozenset({"NoSuchKey", "404", "NotFound"})


def _missing(exc: ClientError) -> bool:
    return str(exc.response.get("Error", {}).get("Code")) in _MISSING_CODES


class S3Writer:
    def __init__(self, storage: S3Storage, object_key: str) -> None:
        self._s3 = storage
        self._key = object_key
        self._buffer = bytearray()
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []
        self._done = False

    async def write(self, chunk: bytes) -> None:
        self._buffer += chunk
        if len(self._buffer) >= self._s3.part_size:
            await self._upload_part()

    async def _upload_part(self) -> None:
        client, bucket = self._s3.client, self._s3.bucket
        if self._upload_id is None:
            created = await client.create_multipart_upload(Bucket=bucket, Key=self._key)
            self._upload_id = created["UploadId"]
        number = len(self._parts) + 1
        body, self._buffer = bytes(self._buffer), bytearray()
        part = await client.upload_part(
            Bucket=bucket, Key=self._key, UploadId=self._upload_id, PartNumber=number, Body=body
        )
        self._parts.append({"ETag": part["ETag"], "PartNumber": number})

    async def commit(self) -> None:
        client, bucket = self._s3.client, self._s3.bucket
        if self._upload_id is None:
            await client.put_object(Bucket=bucket, Key=self._key, Body=bytes(self._buffer))
        else:
            if self._buffer:
                await self._upload_part()
            await client.complete_multipart_upload(
                Bucket=bucket,
                Key=self._key,
                UploadId=self._upload_id,
                MultipartUpload={"Parts": self._parts},
            )
        self._buffer = bytearray()
        self._done = True

    async def abort(self) -> None:
        if self._done:
            return
        self._done = True
        self._buffer = bytearray()
        if self._upload_id is not None:
            with contextlib.suppress(ClientError):
                await self._s3.client.abort_multipart_upload(
                    Bucket=self._s3.bucket, Key=self._key, UploadId=self._upload_id
                )


class S3Body:
    def __init__(self, response: dict[str, Any]) -> None:
        self._body = response["Body"]

    async def send(self, request: web.Request, response: web.StreamResponse) -> None:
        while chunk := await self._body.read(CHUNK):
            await response.write(chunk)

    async def close(self) -> None:
        self._body.close()


class S3Storage:
    name = "s3"

    def __init__(
        self,
        *,
        bucket: str,
        prefix: str = "files/",
        endpoint_url: str | None = None,
        region: str = "us-east-1",
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        part_size: int = 8 * 1024 * 1024,
    ) -> None:
        if not bucket:
            raise ValueError("FILES_S3_BUCKET: required with FILES_STORAGE=s3")
        self.bucket = bucket
        self.prefix = prefix
        self.part_size = max(part_size, MIN_PART)
        self._client_args: dict[str, Any] = {
            "region_name": region,
            "endpoint_url": endpoint_url,
            "aws_access_key_id": access_key_id,
            "aws_secret_access_key": secret_access_key,
            "config": AioConfig(
                s3={"addressing_style": "path"},
                retries={"max_attempts": 3, "mode": "standard"},
                connect_timeout=5,
                read_timeout=60,
            ),
        }
        self._stack = contextlib.AsyncExitStack()
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            raise RuntimeError("S3Storage.start() was not called")
        return self._client

    def object_key(self, key: str) -> str:
        return f"{self.prefix}{check_key(key)}"

    async def start(self) -> None:
        session = get_session()
        self._client = await self._stack.enter_async_context(
            session.create_client("s3", **self._client_args)
        )

    async def close(self) -> None:
        await self._stack.aclose()
        self._client = None

    async def ping(self) -> None:
        await self.client.head_bucket(Bucket=self.bucket)

    async def create(self, key: str) -> S3Writer:
        return S3Writer(self, self.object_key(key))

    async def read(
        self, key: str, start: int = 0, length: int | None = None
    ) -> AsyncIterator[bytes]:
        args: dict[str, Any] = {"Bucket": self.bucket, "Key": self.object_key(key)}
        if start or length is not None:
            end = "" if length is None else str(start + length - 1)
            args["Range"] = f"bytes={start}-{end}"
        try:
            response = await self.client.get_object(**args)
        except ClientError as exc:
            if _missing(exc):
                raise Missing(key) from None
            raise
        async with response["Body"] as body:
            while chunk := await body.read(CHUNK):
                yield chunk

    async def open(self, key: str, start: int, length: int) -> S3Body:
        """A ranged ``GetObject``, issued now (so a missing object is known before anything is
        sent), streamed by ``send``."""
        args = {
            "Bucket": self.bucket,
            "Key": self.object_key(key),
            "Range": f"bytes={start}-{start + length - 1}",
        }
        try:
            return S3Body(await self.client.get_object(**args))
        except ClientError as exc:
            if _missing(exc):
                raise Missing(key) from None
            raise

    async def exists(self, key: str) -> bool:
        try:
            await self.client.head_object(Bucket=self.bucket, Key=self.object_key(key))
        except ClientError as exc:
            if _missing(exc):
                return False
            raise
        return True

    async def delete(self, key: str) -> None:
        await self.client.delete_object(Bucket=self.bucket, Key=self.object_key(key))

    async def _uploads(self) -> list[dict[str, Any]]:
        uploads: list[dict[str, Any]] = []
        paginator = self.client.get_paginator("list_multipart_uploads")
        async for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
            uploads.extend(page.get("Uploads", []))
        return uploads

    async def sweep(self, older_than: float) -> int:
        cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=older_than)
        removed = 0
        for upload in await self._uploads():
            if upload["Initiated"] <= cutoff:
                with contextlib.suppress(ClientError):
                    await self.client.abort_multipart_upload(
                        Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                    )
                    removed += 1
        return removed

    async def keys(self) -> list[str]:
        found: list[str] = []
        paginator = self.client.get_paginator("list_objects_v2")
        async for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
            found.extend(
                obj["Key"][len(self.prefix) :]
                for obj in page.get("Contents", [])
                if "/" not in obj["Key"][len(self.prefix) :]  # not a resumable upload's piece
            )
        return sorted(found)

    async def temporaries(self) -> int:
        return len(await self._uploads())

    # --- the pieces of resumable uploads --------------------------------------------------

    def _segments_prefix(self, upload_id: str) -> str:
        return f"{self.prefix}uploads/{check_key(upload_id)}/"

    async def segment(self, upload_id: str, offset: int) -> S3Writer:
        return S3Writer(self, f"{self._segments_prefix(upload_id)}{offset:016d}")

    async def segments(self, upload_id: str) -> list[tuple[int, int]]:
        prefix = self._segments_prefix(upload_id)
        found: list[tuple[int, int]] = []
        paginator = self.client.get_paginator("list_objects_v2")
        async for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                found.append((int(obj["Key"][len(prefix) :]), int(obj["Size"])))
        return sorted(found)

    async def read_segment(self, upload_id: str, offset: int) -> AsyncIterator[bytes]:
        key = f"{self._segments_prefix(upload_id)}{offset:016d}"
        response = await self.client.get_object(Bucket=self.bucket, Key=key)
        async with response["Body"] as body:
            while chunk := await body.read(CHUNK):
                yield chunk

    async def drop_segments(self, upload_id: str, *, from_offset: int = 0) -> None:
        prefix = self._segments_prefix(upload_id)
        for offset, _size in await self.segments(upload_id):
            if offset >= from_offset:
                await self.client.delete_object(Bucket=self.bucket, Key=f"{prefix}{offset:016d}")
