"""The chat service's settings: the chassis' for MongoDB and auth (Redis), plus its own."""

from __future__ import annotations

from svc_core import AuditSettings, AuthSettings, MongoSettings, env


class ChatSettings(MongoSettings, AuthSettings, AuditSettings):
    heartbeat: float = env(
        "CHAT_HEARTBEAT",
        20.0,
        help="seconds between WebSocket pings (well under the gateway's 60 s read timeout)",
    )
    socket_queue: int = env(
        "CHAT_SOCKET_QUEUE",
        256,
        help="frames queued for one socket before it is closed with 1013 (too slow)",
    )
    presence_ttl: float = env(
        "CHAT_PRESENCE_TTL",
        15.0,
        help="seconds a presence entry lives unless its instance refreshes it",
    )
    presence_refresh: float = env(
        "CHAT_PRESENCE_REFRESH",
        5.0,
        help="seconds between refreshes of this instance's presence entries",
    )
    session_check: float = env(
        "CHAT_SESSION_CHECK",
        0.25,
        help="seconds between checks of every socket's token expiry and revocation",
    )
    instance_id: str = env(
        "CHAT_INSTANCE_ID",
        "",
        help="this instance's name in presence entries; default a random id per start",
    )
