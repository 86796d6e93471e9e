"""Failure throttling per account (login, password change), atomic in Redis.

Rule (api.md): after ``limit`` failures within ``window`` seconds every attempt, right password
or not, is refused until ``window`` seconds after the failure that reached the limit; a success
before that resets the count.

Each attempt is recorded *before* its password is checked and only turned into a failure or
erased afterwards, so attempts sent in parallel cannot slip past the limit while bcrypt runs:
an attempt that would exceed the limit counting those still in flight waits for them to settle
(it is refused only if they fail, as the rule says; legitimate parallel logins just queue).

Keys (both with a TTL): ``customer:throttle:<kind>:<subject>`` (sorted set of attempts, scored by
time in ms) and ``...:lock`` (present while locked; its PTTL is the time left).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

from redis.asyncio import Redis

PREFIX = "customer:throttle"

# KEYS: attempts, lock. ARGV: now_ms, window_ms, limit, attempt id.
# Returns 0 when the attempt may go ahead, the milliseconds left when locked, or -1 when the
# limit is reached only by counting attempts still in flight (try again when they settle).
_BEGIN = """
local left = redis.call('PTTL', KEYS[2])
if left > 0 then return left end
local now, window, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) >= limit then
  return -1
end
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('PEXPIRE', KEYS[1], window)
return 0
"""

# Same KEYS/ARGV. The attempt becomes a failure at ``now``; reaching the limit locks.
_FAIL = """
local now, window, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
redis.call('PEXPIRE', KEYS[1], window)
if redis.call('ZCARD', KEYS[1]) >= limit then
  redis.call('SET', KEYS[2], now + window, 'PX', window, 'NX')
end
return 0
"""


class Throttled(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__(retry_after)
        self.retry_after = retry_after


@dataclasses.dataclass
class Attempt:
    """Outcome of one guarded attempt: call :meth:`succeeded` or :meth:`failed`."""

    outcome: str | None = None

    def succeeded(self) -> None:
        self.outcome = "success"

    def failed(self) -> None:
        self.outcome = "failure"


class Throttle:
    #: how often, and how long at most, an attempt waits for those in flight to settle
    SETTLE_POLL = 0.05
    SETTLE_TIMEOUT = 10.0

    def __init__(self, redis: Redis, kind: str, *, limit: int, window: int) -> None:
        self.redis = redis
        self.kind = kind
        self.limit = limit
        self.window_ms = window * 1000
        self._begin: Any = redis.register_script(_BEGIN)
        self._fail: Any = redis.register_script(_FAIL)

    def keys(self, subject: str) -> list[str]:
        base = f"{PREFIX}:{self.kind}:{subject}"
        return [base, f"{base}:lock"]

    def _args(self, attempt_id: str) -> list[Any]:
        return [int(time.time() * 1000), self.window_ms, self.limit, attempt_id]

    @contextlib.asynccontextmanager
    async def attempt(self, subject: str) -> AsyncIterator[Attempt]:
        """Guard one attempt: raises :class:`Throttled` when locked. A success resets the count;
        a failure counts; an attempt that ends otherwise (an error) is forgotten."""
        keys = self.keys(subject)
        attempt_id = secrets.token_hex(8)
        deadline = time.monotonic() + self.SETTLE_TIMEOUT
        while True:
            wait_ms = int(await self._begin(keys=keys, args=self._args(attempt_id)))
            if wait_ms == 0:
                break
            if wait_ms > 0:
                raise Throttled(max(1, math.ceil(wait_ms / 1000)))
            if time.monotonic() > deadline:  # flooded with parallel attempts: shed this one
                raise Throttled(1)
            await asyncio.sleep(self.SETTLE_POLL)
        attempt = Attempt()
        try:
            yield attempt
        finally:
            if attempt.outcome == "failure":
                await self._fail(keys=keys, args=self._args(attempt_id))
            elif attempt.outcome == "success":
                await self.redis.delete(keys[0])
            else:
                await self.redis.zrem(keys[0], attempt_id)
