"""The order service's settings: the chassis' for MongoDB, auth and events (see svc_core's
README); the order service adds none of its own."""

from __future__ import annotations

from svc_core import AuthSettings, EventsSettings, MongoSettings


class OrderSettings(MongoSettings, AuthSettings, EventsSettings):
    pass
