"""The ``local`` backend: files under a root directory (a shared volume for several instances).

::

    <root>/objects/<k[-2:]>/<k[-4:-2]>/<key>    committed files, sharded by the id's random end
    <root>/tmp/<key>.<random>.part               writes in progress
    <root>/uploads/<id>/<offset>.seg             a resumable upload's pieces, one per PATCH

A write goes to ``tmp/`` and is renamed into ``objects/`` (same filesystem: atomic) only once
complete, flushed and accepted. Disk I/O runs in the loop's executor (aiofiles for the
filesystem calls); downloads use ``loop.sendfile`` (what ``web.FileResponse`` uses), falling
back to chunked reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO, Any

import aiofiles.os
from aiohttp import web

from svc_files.storage import CHUNK, Missing, check_key


async def _open(path: Path, mode: str, *, remove_if_cancelled: bool = False) -> IO[bytes]:
    """``open`` in the executor. If the request is cancelled meanwhile (its client went away),
    the file still gets closed (and a new temporary removed) once the open completes."""
    loop = asyncio.get_running_loop()
    opening = loop.run_in_executor(None, open, path, mode)
    try:
        return await asyncio.shield(opening)
    except asyncio.CancelledError:

        def close(done: asyncio.Future[IO[bytes]]) -> None:
            if done.cancelled() or done.exception() is not None:
                return
            done.result().close()
            if remove_if_cancelled:
                with contextlib.suppress(FileNotFoundError):
                    os.remove(path)

        opening.add_done_callback(close)
        raise


class LocalWriter:
    def __init__(self, storage: LocalStorage, key: str, final: Path) -> None:
        self._storage = storage
        self._final = final
        self.temp = storage.tmp / f"{key}.{secrets.token_hex(4)}.part"
        self._file: IO[bytes] | None = None
        self._done = False

    async def open(self) -> None:
        self._file = await _open(self.temp, "xb", remove_if_cancelled=True)

    async def _run(self, call: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(None, call, *args)

    async def write(self, chunk: bytes) -> None:
        assert self._file is not None
        await self._run(self._file.write, chunk)

    async def commit(self) -> None:
        assert self._file is not None
        await self._run(self._file.flush)
        await self._run(os.fsync, self._file.fileno())
        self._file.close()
        final = self._final
        await aiofiles.os.makedirs(final.parent, exist_ok=True)
        await aiofiles.os.replace(self.temp, final)
        self._done = True

    async def abort(self) -> None:
        if self._done:
            return
        self._done = True
        if self._file is not None:
            self._file.close()  # a file being written; close() only releases the descriptor
        with contextlib.suppress(FileNotFoundError):
            await aiofiles.os.remove(self.temp)


class LocalBody:
    """An opened byte range, sent with ``loop.sendfile`` (what ``web.FileResponse`` uses)."""

    def __init__(self, file: IO[bytes], start: int, length: int) -> None:
        self._file = file
        self._start = start
        self._length = length

    async def send(self, request: web.Request, response: web.StreamResponse) -> None:
        loop = asyncio.get_running_loop()
        transport = request.transport
        if transport is None:
            raise ConnectionResetError("Connection lost")
        sendfile = getattr(loop, "sendfile", None)  # uvloop has none
        try:
            if sendfile is None:
                raise NotImplementedError
            await sendfile(transport, self._file, self._start, self._length)
        except NotImplementedError:  # read and write in chunks instead
            await loop.run_in_executor(None, self._file.seek, self._start)
            left = self._length
            while left > 0:
                chunk = await loop.run_in_executor(None, self._file.read, min(CHUNK, left))
                if not chunk:
                    break
                left -= len(chunk)
                await response.write(chunk)

    async def close(self) -> None:
        self._file.close()


class LocalStorage:
    name = "local"

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.objects = self.root / "objects"
        self.tmp = self.root / "tmp"
        self.uploads = self.root / "uploads"

    def path(self, key: str) -> Path:
        check_key(key)
        return self.objects / key[-2:] / key[-4:-2] / key

    async def start(self) -> None:
        await aiofiles.os.makedirs(self.objects, exist_ok=True)
        await aiofiles.os.makedirs(self.tmp, exist_ok=True)
        await aiofiles.os.makedirs(self.uploads, exist_ok=True)

    async def close(self) -> None:
        return None

    async def ping(self) -> None:
        if not await aiofiles.os.path.isdir(self.objects):
            raise OSError(f"storage root missing: {self.objects}")

    async def create(self, key: str) -> LocalWriter:
        check_key(key)
        writer = LocalWriter(self, key, self.path(key))
        await writer.open()
        return writer

    async def read(
        self, key: str, start: int = 0, length: int | None = None
    ) -> AsyncIterator[bytes]:
        try:
            file = await _open(self.path(key), "rb")
        except FileNotFoundError:
            raise Missing(key) from None
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(None, file.seek, start)
            left = length
            while left is None or left > 0:
                size = CHUNK if left is None else min(CHUNK, left)
                chunk = await loop.run_in_executor(None, file.read, size)
                if not chunk:
                    break
                if left is not None:
                    left -= len(chunk)
                yield chunk
        finally:
            file.close()

    async def open(self, key: str, start: int, length: int) -> LocalBody:
        try:
            return LocalBody(await _open(self.path(key), "rb"), start, length)
        except FileNotFoundError:
            raise Missing(key) from None

    async def exists(self, key: str) -> bool:
        return bool(await aiofiles.os.path.isfile(self.path(key)))

    async def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            await aiofiles.os.remove(self.path(key))

    async def sweep(self, older_than: float) -> int:
        cutoff = time.time() - older_than

        def remove_stale() -> int:
            removed = 0
            for entry in os.scandir(self.tmp):
                try:
                    if entry.name.endswith(".part") and entry.stat().st_mtime <= cutoff:
                        os.remove(entry.path)
                        removed += 1
                except FileNotFoundError:
                    continue  # finished or removed meanwhile
            return removed

        return await asyncio.get_running_loop().run_in_executor(None, remove_stale)

    async def keys(self) -> list[str]:
        def walk() -> list[str]:
            return sorted(p.name for p in self.objects.glob("*/*/*") if p.is_file())

        return await asyncio.get_running_loop().run_in_executor(None, walk)

    async def temporaries(self) -> int:
        return len(await aiofiles.os.listdir(self.tmp))

    # --- the pieces of resumable uploads --------------------------------------------------

    def _segment_path(self, upload_id: str, offset: int) -> Path:
        return self.uploads / check_key(upload_id) / f"{offset:016d}.seg"

    async def segment(self, upload_id: str, offset: int) -> LocalWriter:
        final = self._segment_path(upload_id, offset)
        await aiofiles.os.makedirs(final.parent, exist_ok=True)
        writer = LocalWriter(self, upload_id, final)
        await writer.open()
        return writer

    async def segments(self, upload_id: str) -> list[tuple[int, int]]:
        folder = self.uploads / check_key(upload_id)

        def listing() -> list[tuple[int, int]]:
            # The sweep, a termination or a finished upload may remove pieces (or the whole
            # folder) while this lists them: a piece gone before its size is read is gone.
            try:
                names = os.listdir(folder)
            except (FileNotFoundError, NotADirectoryError):
                return []
            found = []
            for name in names:
                stem, dot, suffix = name.partition(".")
                if dot and suffix == "seg":
                    try:
                        found.append((int(stem), os.stat(folder / name).st_size))
                    except FileNotFoundError:
                        continue
            return sorted(found)

        return await asyncio.get_running_loop().run_in_executor(None, listing)

    async def read_segment(self, upload_id: str, offset: int) -> AsyncIterator[bytes]:
        path = self._segment_path(upload_id, offset)
        file = await _open(path, "rb")
        loop = asyncio.get_running_loop()
        try:
            while chunk := await loop.run_in_executor(None, file.read, CHUNK):
                yield chunk
        finally:
            file.close()

    async def drop_segments(self, upload_id: str, *, from_offset: int = 0) -> None:
        for offset, _size in await self.segments(upload_id):
            if offset >= from_offset:
                with contextlib.suppress(FileNotFoundError):
                    await aiofiles.os.remove(self._segment_path(upload_id, offset))
        if from_offset == 0:
            with contextlib.suppress(OSError):
                await aiofiles.os.rmdir(self.uploads / upload_id)
