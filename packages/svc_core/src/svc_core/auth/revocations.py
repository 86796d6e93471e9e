"""Revoked sessions: recorded in Redis, mirrored by every process, never forgotten by a Redis loss.

Recording: :func:`revoke_session` adds ``sid -> until`` to the sorted set ``auth:revoked`` and
publishes it on ``auth:revocations``. Every process mirrors the set locally
(:class:`RevocationList`), so the request path needs no Redis round trip.

Durability (api.md, logout: "a restart, a failover or lost data never brings a revoked session
back"), in three parts; packages/svc_core/README.md says it in prose:

- The mirror merges, it never replaces: a resync after a lost connection adds what Redis has to
  what the process already knew, and writes back what Redis lacks. A record survives as long as
  one process that knew it is alive.
- Loss detection: ``auth:epoch`` holds a random id, written once (the first process to find it
  missing writes a new one). A process that saw one epoch and then finds none, or another one,
  knows Redis lost data. It checks on every resync, every ``check_interval`` seconds while in
  sync, and on every per-request check while out of sync.
- Fail closed: whoever finds the epoch missing sets the cut-off ``auth:not-before`` (ms) to that
  moment by Redis's clock; every process adopts the highest cut-off it sees and refuses tokens
  whose ``iat`` is before it (``session_revoked``). Each process keeps its cut-off and writes
  it back whenever Redis has a lower one, so a second loss cannot lower it. A process that
  never saw an epoch (first start, or a start after a loss) and finds none cannot tell a new
  Redis from an emptied one: it sets the cut-off to the start of the current second, so it
  refuses every token issued in earlier seconds; one that saw the epoch vanish sets it to the
  exact moment.

Tokens live at most 15 minutes, so a cut-off stops mattering 15 minutes after it was set.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import secrets
import time
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from svc_core.errors import DependencyUnavailable

log = logging.getLogger("svc_core.auth")

REVOKED_KEY = "auth:revoked"
REVOKED_CHANNEL = "auth:revocations"
EPOCH_KEY = "auth:epoch"
NOT_BEFORE_KEY = "auth:not-before"

# KEYS: epoch, not-before, revoked. ARGV: a new epoch id, how to cut off if the epoch is missing
# ('exact': this millisecond, rounded up; 'second': the start of this second), this process's
# cut-off (ms), a sid to look up ('' for none). The cut-off is read from Redis's clock, so every
# process that notices the loss sets the same kind of value whatever its own clock says.
# Returns {epoch, the stored cut-off (ms), the sid's score or nil}. Safe to run twice.
_CHECK = """
local epoch = redis.call('GET', KEYS[1])
local stored = tonumber(redis.call('GET', KEYS[2]) or '0') or 0
local cutoff = tonumber(ARGV[3])
if not epoch then
  epoch = ARGV[1]
  redis.call('SET', KEYS[1], epoch)
  local now = redis.call('TIME')
  local lost = tonumber(now[1]) * 1000
  if ARGV[2] == 'exact' then lost = lost + math.ceil(tonumber(now[2]) / 1000) end
  cutoff = math.max(cutoff, lost)
end
if cutoff > stored then
  stored = cutoff
  redis.call('SET', KEYS[2], string.format('%d', stored))
end
local score = false
if ARGV[4] ~= '' then score = redis.call('ZSCORE', KEYS[3], ARGV[4]) end
return {epoch, string.format('%d', stored), score}
"""


async def revoke_session(
    redis: Redis, sid: str, *, until: float, local: RevocationList | None = None
) -> None:
    """Record that session ``sid`` is revoked until ``until`` (epoch seconds) and tell everyone.

    ``until`` should be the latest ``exp`` an access token of the session can carry: past it
    the tokens are dead anyway and the record may go. ``local`` (the calling app's list,
    ``app[svc_core.keys.REVOCATIONS]``) takes effect at once instead of via its own pub/sub echo.
    Safe to retry: applying it twice changes nothing.
    """
    if local is not None:
        local.add(sid, until)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.zadd(REVOKED_KEY, {sid: until}, gt=True)  # GT adds new members too
        pipe.zremrangebyscore(REVOKED_KEY, "-inf", time.time())
        pipe.publish(REVOKED_CHANNEL, json.dumps({"sid": sid, "until": until}))
        await pipe.execute()


class _Feed(PubSub):
    """A subscription that never reconnects behind the mirror's back.

    redis-py reconnects and resubscribes a pub/sub connection silently when the client retries
    on connection errors; messages published meanwhile would be missed and the mirror would not
    know. Here a lost connection raises, and the mirror resyncs from the sorted set.
    """

    async def _execute(self, conn: Any, command: Any, *args: Any, **kwargs: Any) -> Any:
        return await command(*args, **kwargs)


class RevocationList:
    """Revoked session ids and the loss cut-off, mirrored locally while a subscription is live.

    ``known(sid, iat)`` answers from memory (no await) while the mirror is in sync;
    ``is_revoked(sid, iat)`` asks Redis when it is not, and fails closed (503) when Redis cannot
    answer.
    """

    POLL = 0.05  # how long one wait for a message lasts; bounds how long stop() takes

    def __init__(
        self, redis: Redis, *, retry_delay: float = 0.5, check_interval: float = 1.0
    ) -> None:
        self.redis = redis
        self._stopping = False
        self.retry_delay = retry_delay
        self.check_interval = check_interval
        self._revoked: dict[str, float] = {}
        self.synced = False
        self.epoch: str | None = None  # the Redis generation this process has seen
        self.not_before = 0.0  # tokens with iat before this (epoch seconds) are refused
        self._check: Any = redis.register_script(_CHECK)
        self._task: asyncio.Task[None] | None = None
        self._last_prune = time.monotonic()

    def add(self, sid: str, until: float) -> None:
        """Apply a revocation this process made itself, without waiting for its echo."""
        if until > self._revoked.get(sid, 0.0):
            self._revoked[sid] = until

    def known(self, sid: str, iat: int | None = None) -> bool | None:
        """Whether a token of session ``sid`` issued at ``iat`` is refused, from the local
        mirror; ``None`` when only Redis can tell."""
        if not self.synced:
            return None
        if iat is not None and iat < self.not_before:
            return True
        until = self._revoked.get(sid)
        return until is not None and until > time.time()

    async def is_revoked(self, sid: str, iat: int | None = None) -> bool:
        known = self.known(sid, iat)
        if known is not None:
            return known
        return await self.ask(sid, iat)

    async def ask(self, sid: str, iat: int | None = None) -> bool:
        """:meth:`is_revoked` while the mirror is out of sync: ask Redis (checking its epoch)."""
        if self._revoked.get(sid, 0.0) > time.time():  # known here, whatever Redis says
            return True
        try:
            score = await self._observe(sid)
        except (RedisError, OSError):
            raise DependencyUnavailable("The session store is unavailable.") from None
        if iat is not None and iat < self.not_before:
            return True
        return score is not None and float(score) > time.time()

    async def _observe(self, sid: str = "") -> Any:
        """Run the check script: learn the epoch and the cut-off, persist ours, and return the
        score of ``sid`` in the revoked set (None when absent or not asked)."""
        # Having seen an epoch, its loss is known to be a loss: cut off at this very moment.
        # Never having seen one, refuse what was issued before the current second.
        cut = "exact" if self.epoch is not None else "second"
        epoch, stored, score = await self._check(
            keys=[EPOCH_KEY, NOT_BEFORE_KEY, REVOKED_KEY],
            args=[secrets.token_hex(8), cut, math.ceil(self.not_before * 1000), sid],
        )
        epoch = str(epoch)
        if self.epoch is not None and epoch != self.epoch:
            log.warning(
                "Redis lost data: refusing access tokens issued before the loss",
                extra={"epoch": epoch, "not_before": int(stored) / 1000},
            )
        self.epoch = epoch
        self.not_before = max(self.not_before, int(stored) / 1000)
        return score

    async def _resync(self) -> None:
        """Merge Redis's records into the mirror and write back what Redis lacks."""
        await self._observe()
        now = time.time()
        current: Any = await self.redis.zrangebyscore(REVOKED_KEY, now, "+inf", withscores=True)
        stored = {str(sid): float(until) for sid, until in current}
        for sid, until in stored.items():
            self.add(sid, until)
        missing = {
            sid: until
            for sid, until in self._revoked.items()
            if until > now and stored.get(sid, 0.0) < until
        }
        if missing:
            await self.redis.zadd(REVOKED_KEY, missing, gt=True)  # GT adds new members too
            log.warning("restored revocations Redis had lost", extra={"count": len(missing)})

    def start(self) -> None:
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self._follow(), name="svc-core-revocations")

    async def stop(self) -> None:
        # redis-py's get_message does not honour cancellation while it waits, so ask the loop
        # to finish (it checks between short polls) and cancel only as a last resort.
        self._stopping = True
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._task), self.POLL * 4)
            if not self._task.done():
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
            self._task = None
        self.synced = False

    async def _follow(self) -> None:
        while not self._stopping:
            pubsub = _Feed(self.redis.connection_pool, ignore_subscribe_messages=True)
            try:
                # Subscribe first, then load the set: nothing revoked in between is missed.
                await pubsub.subscribe(REVOKED_CHANNEL)
                await self._resync()
                self.synced = True
                next_check = time.monotonic() + self.check_interval
                while not self._stopping:
                    message = await pubsub.get_message(timeout=self.POLL)
                    if message is not None and message.get("type") == "message":
                        self._apply(message["data"])
                    if time.monotonic() >= next_check:
                        # Data lost without a disconnect (FLUSHALL, eviction): look again.
                        epoch = self.epoch
                        await self._observe()
                        if self.epoch != epoch:
                            await self._resync()
                        next_check = time.monotonic() + self.check_interval
                    self._prune()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # connection lost: fall back to asking Redis, then resync
                if self.synced:
                    log.warning(
                        "revocation feed lost; checking Redis per request",
                        extra={"error": repr(exc)},
                    )
                self.synced = False
                if not self._stopping:
                    await asyncio.sleep(self.retry_delay)
            finally:
                self.synced = False
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]

    def _apply(self, data: Any) -> None:
        try:
            event = json.loads(data)
            self.add(str(event["sid"]), float(event["until"]))
        except (ValueError, KeyError, TypeError):
            log.warning("ignored a malformed revocation message")

    def _prune(self) -> None:
        if time.monotonic() - self._last_prune < 60:
            return
        self._last_prune = time.monotonic()
        now = time.time()
        self._revoked = {sid: until for sid, until in self._revoked.items() if until > now}
