"""Sessions and their refresh tokens, in Redis.

A login opens a session (``sid``) with an opaque refresh token. Each refresh rotates the token
within the same session; presenting a token that was already rotated away means it leaked, so
the whole session is revoked (theft detection). Only SHA-256 digests of refresh tokens are
stored: a copy of Redis yields no usable token.

Keys (every one with a TTL of at most REFRESH_TOKEN_TTL):

- ``customer:session:<sid>``: hash ``customer_id``, ``refresh`` (digest of the current token),
  ``created_at``; TTL renewed on each refresh.
- ``customer:refresh:<digest>``: the ``sid`` a token belongs to; kept after rotation until the
  token itself would have expired, so reuse is recognised for the token's whole life.
- ``customer:revoked:<sid>``: tombstone, so a revoked session's tokens get ``session_revoked``.
- ``customer:customer-sessions:<customer_id>``: sorted set of the customer's sids scored by
  expiry (ms), to revoke every other session on a password change.

Revoking also calls ``svc_core.auth.revoke_session`` so every service refuses the session's
access tokens (401 ``session_revoked``) within a second.
"""

from __future__ import annotations

import dataclasses
import hashlib
import secrets
import time
from typing import Any

from redis.asyncio import Redis

from svc_core.auth import RevocationList, revoke_session

PREFIX = "customer:"

# KEYS[1]: customer:refresh:<old digest>. ARGV: prefix, old digest, new digest, ttl ms, now ms.
# Safe to run twice with the same arguments (the Redis client retries after a connection error):
# the new digest is random per rotation, so finding it current means this rotation already ran.
_ROTATE = """
local prefix, old, new = ARGV[1], ARGV[2], ARGV[3]
local ttl, now = tonumber(ARGV[4]), tonumber(ARGV[5])
local sid = redis.call('GET', KEYS[1])
if not sid then return {'invalid'} end
if redis.call('EXISTS', prefix .. 'revoked:' .. sid) == 1 then return {'revoked', sid} end
local session = prefix .. 'session:' .. sid
local fields = redis.call('HMGET', session, 'refresh', 'customer_id')
local current, customer = fields[1], fields[2]
if not current or not customer then return {'invalid'} end
local owned = prefix .. 'customer-sessions:' .. customer
if current == new then return {'ok', sid, customer} end -- this very rotation, run again
if current ~= old then
  redis.call('DEL', session)
  redis.call('SET', prefix .. 'revoked:' .. sid, '1', 'PX', ttl)
  redis.call('ZREM', owned, sid)
  return {'reused', sid, customer}
end
redis.call('HSET', session, 'refresh', new)
redis.call('PEXPIRE', session, ttl)
redis.call('SET', prefix .. 'refresh:' .. new, sid, 'PX', ttl)
redis.call('ZADD', owned, now + ttl, sid)
redis.call('PEXPIRE', owned, ttl)
return {'ok', sid, customer}
"""


def digest(refresh_token: str) -> str:
    return hashlib.sha256(refresh_token.encode("utf-8")).hexdigest()


@dataclasses.dataclass(frozen=True)
class NewSession:
    sid: str
    refresh_token: str


@dataclasses.dataclass(frozen=True)
class Rotation:
    """``status``: ``ok``, ``invalid``, ``revoked`` or ``reused``."""

    status: str
    sid: str = ""
    customer_id: str = ""
    refresh_token: str = ""


class SessionStore:
    def __init__(
        self,
        redis: Redis,
        *,
        refresh_ttl: int,
        access_ttl: int,
        revocations: RevocationList | None = None,
    ) -> None:
        self.redis = redis
        self.revocations = revocations  # this process's mirror: applied at once, no echo wait
        self.refresh_ttl_ms = refresh_ttl * 1000
        self.access_ttl = access_ttl
        self._rotate: Any = redis.register_script(_ROTATE)

    async def open(self, customer_id: str) -> NewSession:
        sid = secrets.token_urlsafe(16)
        token = secrets.token_urlsafe(32)
        now_ms = int(time.time() * 1000)
        ttl = self.refresh_ttl_ms
        session = f"{PREFIX}session:{sid}"
        owned = f"{PREFIX}customer-sessions:{customer_id}"
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(
                session,
                mapping={
                    "customer_id": customer_id,
                    "refresh": digest(token),
                    "created_at": now_ms,
                },
            )
            pipe.pexpire(session, ttl)
            pipe.set(f"{PREFIX}refresh:{digest(token)}", sid, px=ttl)
            pipe.zremrangebyscore(owned, "-inf", now_ms)
            pipe.zadd(owned, {sid: now_ms + ttl})
            pipe.pexpire(owned, ttl)
            await pipe.execute()
        return NewSession(sid=sid, refresh_token=token)

    async def rotate(self, refresh_token: str) -> Rotation:
        """Swap a refresh token for a new one in the same session (atomically)."""
        old = digest(refresh_token)
        new_token = secrets.token_urlsafe(32)
        now_ms = int(time.time() * 1000)
        result = await self._rotate(
            keys=[f"{PREFIX}refresh:{old}"],
            args=[PREFIX, old, digest(new_token), self.refresh_ttl_ms, now_ms],
        )
        status, *rest = [str(part) for part in result]
        sid = rest[0] if rest else ""
        if status == "reused":
            await self._announce(sid)
        if status == "reused":
            return Rotation(status=status, sid=sid, customer_id=rest[1] if len(rest) > 1 else "")
        if status != "ok":
            return Rotation(status=status, sid=sid)
        return Rotation(status="ok", sid=sid, customer_id=rest[1], refresh_token=new_token)

    async def revoke(self, customer_id: str, *sids: str) -> None:
        """Delete the sessions' refresh state, leave a tombstone, and revoke their access
        tokens in every service."""
        if not sids:
            return
        owned = f"{PREFIX}customer-sessions:{customer_id}"
        async with self.redis.pipeline(transaction=True) as pipe:
            for sid in sids:
                pipe.delete(f"{PREFIX}session:{sid}")
                pipe.set(f"{PREFIX}revoked:{sid}", "1", px=self.refresh_ttl_ms)
                pipe.zrem(owned, sid)
            await pipe.execute()
        for sid in sids:
            await self._announce(sid)

    async def revoke_others(self, customer_id: str, *, keep: str) -> list[str]:
        """Revoke every live session of the customer except ``keep``; the revoked sids."""
        owned = f"{PREFIX}customer-sessions:{customer_id}"
        live = await self.redis.zrangebyscore(owned, int(time.time() * 1000), "+inf")
        others = [str(sid) for sid in live if sid != keep]
        await self.revoke(customer_id, *others)
        return others

    async def _announce(self, sid: str) -> None:
        # Access tokens of the session live at most access_ttl more seconds; 5 s for clock skew.
        await revoke_session(
            self.redis, sid, until=time.time() + self.access_ttl + 5, local=self.revocations
        )
