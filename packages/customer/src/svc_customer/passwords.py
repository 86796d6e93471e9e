"""Password hashing: HMAC-SHA256 pre-hash with a server-side pepper, then bcrypt, off the loop.

Why the pre-hash: api.md makes all 8..128 characters significant, but bcrypt reads at most 72
bytes (bcrypt 5 refuses longer input), and 128 code points can be 512 bytes of UTF-8. HMAC-SHA256
maps any password to 32 bytes; base64 makes them 44 printable bytes (no NUL, which some bcrypt
implementations stop at). The pepper lives only in the service's configuration, so a stolen
database alone is not enough to start guessing.

bcrypt is CPU-bound by design (~250 ms at cost 12), so every hash and check runs in a thread
pool of its own: the event loop keeps serving, and a burst of logins cannot starve the default
executor (which aiohttp uses for DNS).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import bcrypt

T = TypeVar("T")


class PasswordHasher:
    def __init__(self, *, pepper: str, rounds: int, threads: int = 0) -> None:
        self._pepper = pepper.encode("utf-8")
        self.rounds = rounds
        self._executor = ThreadPoolExecutor(
            max_workers=threads or os.cpu_count() or 1, thread_name_prefix="bcrypt"
        )
        self._dummy_hash: str | None = None
        #: hashes and checks currently running or queued (observability and tests)
        self.in_flight = 0

    def _prehash(self, password: str) -> bytes:
        digest = hmac.new(self._pepper, password.encode("utf-8"), hashlib.sha256).digest()
        return base64.b64encode(digest)

    def _hash_sync(self, password: str) -> str:
        return bcrypt.hashpw(self._prehash(password), bcrypt.gensalt(self.rounds)).decode("ascii")

    def _check_sync(self, password: str, hashed: str) -> bool:
        try:
            # checkpw compares in constant time
            return bcrypt.checkpw(self._prehash(password), hashed.encode("ascii"))
        except ValueError:  # a malformed stored hash never matches
            return False

    async def _run(self, func: Callable[..., T], *args: str) -> T:
        loop = asyncio.get_running_loop()
        self.in_flight += 1
        try:
            return await loop.run_in_executor(self._executor, func, *args)
        finally:
            self.in_flight -= 1

    async def hash(self, password: str) -> str:
        return await self._run(self._hash_sync, password)

    async def verify(self, password: str, hashed: str | None) -> bool:
        """True when ``password`` matches ``hashed``. With no hash (unknown account), a check
        against a dummy hash of the same cost still runs, so timing does not tell them apart."""
        if hashed is None:
            await self._run(self._check_sync, password, await self.dummy_hash())
            return False
        return await self._run(self._check_sync, password, hashed)

    async def dummy_hash(self) -> str:
        if self._dummy_hash is None:
            self._dummy_hash = await self.hash(os.urandom(16).hex())
        return self._dummy_hash

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
