"""The service's parts, built once at startup into one typed bag reached through ``PARTS``."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import secrets
import time
from collections.abc import AsyncIterator

from aiohttp import web
from redis.exceptions import RedisError

from svc_chat.connection import SESSION_ENDED, Connection
from svc_chat.fanout import Fanout, without_retries
from svc_chat.hub import Hub
from svc_chat.presence import Presence
from svc_chat.repository import MessageRepository, RoomRepository
from svc_chat.settings import ChatSettings
from svc_core import DependencyUnavailable, Parts, add_readiness_check, keys
from svc_core.auth import RevocationList

log = logging.getLogger("svc_chat")

REVOCATION_LOOKUP_TIMEOUT = 0.5


@dataclasses.dataclass
class Chat:
    settings: ChatSettings
    rooms: RoomRepository
    messages: MessageRepository
    hub: Hub
    presence: Presence


async def build(app: web.Application, settings: ChatSettings) -> AsyncIterator[Chat]:
    db = app[keys.MONGO_DB]
    redis = without_retries(app[keys.REDIS])
    messages = MessageRepository(db, reads=app[keys.MONGO_READS])
    hub = Hub(
        messages,
        lambda hub: Fanout(redis, on_event=hub.on_event, on_subscribed=hub.on_subscribed),
    )
    instance = settings.instance_id or secrets.token_hex(6)
    presence = Presence(
        redis,
        hub,
        hub.fanout,
        instance=instance,
        ttl=settings.presence_ttl,
        refresh=settings.presence_refresh,
    )
    chat = Chat(settings, RoomRepository(db, reads=app[keys.MONGO_READS]), messages, hub, presence)

    async def fanout_check() -> None:
        if not hub.fanout.up:
            raise DependencyUnavailable("not subscribed to Redis pub/sub")

    add_readiness_check(app, "fanout", fanout_check)
    metrics = app[keys.METRICS]
    metrics.add_sampler("websockets", lambda: hub.sample(metrics, settings.socket_queue))
    hub.fanout.start()
    presence.start()
    watchdog = asyncio.create_task(_end_sessions(app, chat), name="svc-chat-sessions")
    yield chat
    watchdog.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await watchdog
    await presence.stop()
    await hub.stop()
    await hub.fanout.stop()
    await redis.aclose()
    await redis.connection_pool.disconnect()


PARTS = Parts(build)


async def _end_sessions(app: web.Application, chat: Chat) -> None:
    """Close (4001) every socket whose token has expired or whose session was revoked.

    Expiry is checked first and needs no I/O, so a slow revocation lookup (the mirror is
    resyncing and Redis is slow to answer) never delays it."""
    revocations = app[keys.REVOCATIONS]
    while True:
        await asyncio.sleep(chat.settings.session_check)
        now = time.time()
        unknown: dict[str, list[Connection]] = {}
        for connection in list(chat.hub.connections):
            if connection.closing:
                continue
            claims = connection.claims
            if claims.exp <= now:
                connection.close_now(SESSION_ENDED, "token expired")
                continue
            revoked = revocations.known(claims.sid, claims.iat)
            if revoked:
                connection.close_now(SESSION_ENDED, "session revoked")
            elif revoked is None:
                unknown.setdefault(claims.sid, []).append(connection)
        iats = {sid: min(c.claims.iat for c in connections) for sid, connections in unknown.items()}
        if unknown:  # the mirror is resyncing: ask Redis; keep the sockets if it cannot say
            answers = await asyncio.gather(
                *(_ask(revocations, sid, iats[sid]) for sid in unknown), return_exceptions=False
            )
            for (sid, connections), revoked in zip(unknown.items(), answers, strict=True):
                if revoked:
                    for connection in connections:
                        if connection.claims.sid == sid:
                            connection.close_now(SESSION_ENDED, "session revoked")


async def _ask(revocations: RevocationList, sid: str, iat: int) -> bool:
    try:
        return await asyncio.wait_for(revocations.is_revoked(sid, iat), REVOCATION_LOOKUP_TIMEOUT)
    except (TimeoutError, DependencyUnavailable, RedisError, OSError):
        return False


async def close_sockets(app: web.Application) -> None:
    """Shutdown: refuse new sockets, flush what is queued, close every socket with 1001."""
    if PARTS.key not in app:
        return  # shut down before its parts were built
    chat = PARTS.of(app)
    chat.hub.accepting = False
    await asyncio.gather(
        *(connection.close_after_flush() for connection in list(chat.hub.connections))
    )
