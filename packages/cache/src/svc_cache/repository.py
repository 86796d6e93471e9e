"""The only module that knows how entries live in Redis.

Layout: one Redis string per entry, ``cache:{<owner hash>}:<key>``, holding the value as compact
JSON text (so a stored integer is its decimal form and Redis' own INCRBY can do exact 64-bit
arithmetic on it) with the entry's TTL as the Redis key's TTL. ``<owner hash>`` is the first 32
hex digits of SHA-256 of the token's ``sub``: fixed length and free of ``:``, so no key a client
can send reaches another owner's namespace, and customer ids never appear in key names. The
braces make it a cluster hash tag, so one owner's entries share a slot.
"""

from __future__ import annotations

import dataclasses
import hashlib

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from svc_cache.domain import NotAnInteger

PREFIX = "cache"

# Read-check-write in one atomic step. INCRBY refuses a value that is not a canonical 64-bit
# decimal integer and a result outside int64, leaving the value and TTL as they were; the new
# value is read back with GET because Lua numbers are doubles and would round large integers.
INCR_LUA = """
local result = redis.pcall('INCRBY', KEYS[1], ARGV[1])
if type(result) == 'table' and result.err then
  return {0, result.err}
end
return {1, redis.call('GET', KEYS[1]), redis.call('PTTL', KEYS[1])}
"""

OVERFLOW_MARKER = "overflow"


@dataclasses.dataclass(frozen=True, slots=True)
class Stored:
    value_json: str
    pttl_ms: int


def redis_key(owner: str, key: str) -> str:
    digest = hashlib.sha256(owner.encode("utf-8")).hexdigest()[:32]
    return f"{PREFIX}:{{{digest}}}:{key}"


class CacheStore:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._incr: AsyncScript = redis.register_script(INCR_LUA)

    async def get(self, owner: str, key: str) -> Stored | None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.get(redis_key(owner, key))
            pipe.pttl(redis_key(owner, key))
            value, pttl = await pipe.execute()
        if value is None:
            return None
        return Stored(value, int(pttl))

    async def put(self, owner: str, key: str, value_json: str, ttl_seconds: int | None) -> None:
        # SET without EX drops any earlier TTL, as the contract asks.
        await self.redis.set(redis_key(owner, key), value_json, ex=ttl_seconds)

    async def exists(self, owner: str, key: str) -> bool:
        return bool(await self.redis.exists(redis_key(owner, key)))

    async def delete(self, owner: str, key: str) -> bool:
        return bool(await self.redis.delete(redis_key(owner, key)))

    async def incr(self, owner: str, key: str, by: int) -> Stored:
        """Add ``by`` atomically; a missing entry starts at 0. :class:`NotAnInteger` otherwise."""
        ok, *rest = await self._incr(keys=[redis_key(owner, key)], args=[str(by)])
        if not ok:
            if OVERFLOW_MARKER in str(rest[0]):
                raise NotAnInteger("The result would leave the signed 64-bit range.")
            raise NotAnInteger("The stored value is not an integer.")
        value, pttl = rest
        return Stored(str(value), int(pttl))
