"""Resources a service declares in its manifest: ``uses=[Mongo(INDEXES), Redis(), Auth(), ...]``.

Each resource brings three things, so a service that does not use it carries none of them:

- its settings, as a mixin the service's settings class inherits (``MongoSettings``, ...);
- a cleanup context that opens it before the first request and closes it after the last;
- its readiness check, reported by ``/ready`` under the resource's name.

A resource that needs another one brings it along (``Auth`` and ``Events`` need ``Redis``), so
a manifest names only what the service itself uses.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import aiohttp
from aiohttp import web

from svc_core import audit, keys, mongo, tracing
from svc_core.audit import AuditSettings
from svc_core.auth import KeySet, RevocationList, TokenVerifier, load_public_keys
from svc_core.events import Consumer, Event, EventBus, default_consumer_name
from svc_core.metrics import Family, Metrics
from svc_core.redis import open_redis
from svc_core.settings import Settings, SettingsError, env

CleanupCtx = Callable[[web.Application], AsyncIterator[None]]

# --- settings mixins ------------------------------------------------------------------------


class MongoSettings(Settings):
    mongo_url: str = env("MONGO_URL", "", help="mongodb://... or memory:// (in-process stand-in)")
    mongo_db: str = env("MONGO_DB", "", help="database name; defaults to the service name")
    mongo_read_preference: str = env(
        "MONGO_READ_PREFERENCE",
        "primary",
        help="where list and history routes read: primary, primaryPreferred, "
        "secondaryPreferred, secondary or nearest (secondaries may lag: see docs/scaling.md)",
    )
    mongo_username: str = env(
        "MONGO_USERNAME", "", help="this service's MongoDB user (when MONGO_URL names none)"
    )
    mongo_password: str = env(
        "MONGO_PASSWORD",
        "",
        masked=True,
        help="MONGO_USERNAME's password (MONGO_PASSWORD_FILE in images)",
    )
    mongo_auth_source: str = env(
        "MONGO_AUTH_SOURCE",
        "",
        help="the database MONGO_USERNAME is defined in; defaults to the service's database",
    )

    def check(self) -> None:
        super().check()
        if self.mongo_read_preference not in mongo.READ_PREFERENCES:
            raise SettingsError(
                f"MONGO_READ_PREFERENCE: expected one of {', '.join(mongo.READ_PREFERENCES)}, "
                f"got {self.mongo_read_preference!r}"
            )
        if bool(self.mongo_username) != bool(self.mongo_password):
            raise SettingsError("MONGO_USERNAME and MONGO_PASSWORD: both or neither")
        if self.mongo_auth_source and not self.mongo_username:
            raise SettingsError("MONGO_AUTH_SOURCE: only with MONGO_USERNAME")
        if self.mongo_username and mongo.is_memory(self.mongo_url or "memory://"):
            raise SettingsError("MONGO_USERNAME: only with a mongodb:// MONGO_URL")

    def mongo_options(self, database: str) -> dict[str, Any]:
        """What ``mongo.open_client`` takes besides the URL: the service's own credentials,
        authenticated against ``MONGO_AUTH_SOURCE`` or the service's own ``database`` (where
        deploy/mongo/create-users.js creates each user). A URL's own credentials are kept."""
        if not self.mongo_username:
            return {}
        return {
            "username": self.mongo_username,
            "password": self.mongo_password,
            "authSource": self.mongo_auth_source or database,
        }

    def resolved_mongo_url(self) -> str:
        """MONGO_URL, or the in-memory stand-in in development; required in production."""
        if self.mongo_url:
            return self.mongo_url
        if self.is_development:
            return "memory://"
        raise SettingsError("MONGO_URL: required outside development")


class RedisSettings(Settings):
    redis_url: str = env(
        "REDIS_URL",
        "",
        help="redis://[user[:password]@]host:port/db, rediss://... (TLS) or memory:// (fakeredis)",
    )
    redis_password: str = env(
        "REDIS_PASSWORD",
        "",
        masked=True,
        help="the ACL user's password when REDIS_URL has none (REDIS_PASSWORD_FILE in images)",
    )
    redis_tls_ca_file: Path | None = env(
        "REDIS_TLS_CA_FILE", None, help="rediss://: the CA bundle that signed the server's cert"
    )
    redis_tls_cert_file: Path | None = env(
        "REDIS_TLS_CERT_FILE", None, help="rediss://: this client's certificate (mutual TLS)"
    )
    redis_tls_key_file: Path | None = env(
        "REDIS_TLS_KEY_FILE", None, help="rediss://: the private key of REDIS_TLS_CERT_FILE"
    )

    def check(self) -> None:
        super().check()
        tls_files = (self.redis_tls_ca_file, self.redis_tls_cert_file, self.redis_tls_key_file)
        if any(tls_files) and not self.redis_url.startswith("rediss://"):
            raise SettingsError("REDIS_TLS_*_FILE: only with a rediss:// REDIS_URL")
        if (self.redis_tls_cert_file is None) != (self.redis_tls_key_file is None):
            raise SettingsError("REDIS_TLS_CERT_FILE and REDIS_TLS_KEY_FILE: both or neither")
        for path in tls_files:
            if path is not None and not path.is_file():
                raise SettingsError(f"{path}: no such file (REDIS_* settings)")

    def resolved_redis_url(self) -> str:
        if self.redis_url:
            return self.redis_url
        if self.is_development:
            return "memory://"
        raise SettingsError("REDIS_URL: required outside development")

    def redis_options(self) -> dict[str, Any]:
        """What ``open_redis`` takes besides the URL: the password (a URL's own wins), and for
        ``rediss://`` the CA and client certificate (the server's certificate is verified)."""
        options: dict[str, Any] = {}
        if self.redis_password:
            options["password"] = self.redis_password
        if self.redis_url.startswith("rediss://"):
            options["ssl_cert_reqs"] = "required"
            if self.redis_tls_ca_file is not None:
                options["ssl_ca_certs"] = str(self.redis_tls_ca_file)
            if self.redis_tls_cert_file is not None:
                options["ssl_certfile"] = str(self.redis_tls_cert_file)
                options["ssl_keyfile"] = str(self.redis_tls_key_file)
        return options


class AuthSettings(RedisSettings):
    jwt_issuer: str = env("JWT_ISSUER", "svc-customer", help="the iss claim tokens must carry")
    jwt_public_keys: str = env(
        "JWT_PUBLIC_KEYS", "", masked=True, help="PEM public key(s) that verify tokens"
    )
    jwt_public_keys_file: Path | None = env(
        "JWT_PUBLIC_KEYS_FILE", None, help="a file of PEM public keys (added to JWT_PUBLIC_KEYS)"
    )
    jwks_url: str = env("JWKS_URL", "", help="URL of the customer service's JWKS")


class EventsSettings(RedisSettings):
    events_consumer: str = env(
        "EVENTS_CONSUMER",
        "",
        help="this instance's consumer name in its groups (stable across restarts); "
        "default <service>-<hostname>",
    )
    events_retry_after: float = env(
        "EVENTS_RETRY_AFTER", 1.0, help="seconds a failed event waits before it is retried"
    )
    events_max_attempts: int = env(
        "EVENTS_MAX_ATTEMPTS",
        5,
        help="deliveries of a failing event before it is parked in <stream>:dead",
    )

    def check(self) -> None:
        super().check()
        if self.events_retry_after <= 0 or self.events_max_attempts < 1:
            raise SettingsError("EVENTS_RETRY_AFTER / EVENTS_MAX_ATTEMPTS: must be positive")


# --- resources ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Resource:
    """Something a service uses. ``open`` is a cleanup context run before the service's parts
    are built; ``start`` one run after them (background work that needs the parts)."""

    settings_type: ClassVar[type[Settings]] = Settings
    #: resources this one cannot work without (added to the manifest when missing)
    requires: ClassVar[tuple[type[Resource], ...]] = ()

    def open(self, service: str) -> CleanupCtx | None:
        return None

    def start(self, service: str) -> CleanupCtx | None:
        return None


@dataclasses.dataclass(frozen=True)
class Http(Resource):
    """One pooled ``aiohttp.ClientSession`` at ``app[keys.HTTP]`` (timeouts 10 s, connect 2 s)."""

    def open(self, service: str) -> CleanupCtx:
        async def ctx(app: web.Application) -> AsyncIterator[None]:
            connector = aiohttp.TCPConnector(limit=100, ttl_dns_cache=60)
            session = aiohttp.ClientSession(
                connector=connector, timeout=aiohttp.ClientTimeout(total=10, connect=2)
            )
            app[keys.HTTP] = session
            yield
            await session.close()

        return ctx


@dataclasses.dataclass(frozen=True)
class Mongo(Resource):
    """The service's MongoDB database at ``app[keys.MONGO_DB]`` (named after the service unless
    ``MONGO_DB`` says otherwise), with ``indexes`` applied at startup; the same database with
    ``MONGO_READ_PREFERENCE`` at ``app[keys.MONGO_READS]``, for the reads that opt in (list and
    history routes: they may be served by a secondary that lags behind the primary)."""

    indexes: Sequence[mongo.Index] = ()
    settings_type: ClassVar[type[Settings]] = MongoSettings

    def open(self, service: str) -> CleanupCtx:
        indexes = self.indexes

        async def ctx(app: web.Application) -> AsyncIterator[None]:
            settings = app[keys.SETTINGS]
            assert isinstance(settings, MongoSettings)  # checked when the manifest was made
            url = settings.resolved_mongo_url()
            name = settings.mongo_db or service
            client = mongo.open_client(url, **settings.mongo_options(name))
            db = client[name]
            app[keys.MONGO_DB] = tracing.trace_database(db, service)  # spans when tracing is on
            reads = mongo.with_read_preference(db, settings.mongo_read_preference)
            app[keys.MONGO_READS] = tracing.trace_database(reads, service)
            app[keys.CHECKS]["mongodb"] = lambda: mongo.ping(db)
            await mongo.apply_indexes(db, indexes)
            yield
            await mongo.close_client(client, url)

        return ctx


@dataclasses.dataclass(frozen=True)
class Redis(Resource):
    """A redis-py asyncio client at ``app[keys.REDIS]``."""

    settings_type: ClassVar[type[Settings]] = RedisSettings

    def open(self, service: str) -> CleanupCtx:
        async def ctx(app: web.Application) -> AsyncIterator[None]:
            settings = app[keys.SETTINGS]
            assert isinstance(settings, RedisSettings)
            client = open_redis(settings.resolved_redis_url(), **settings.redis_options())
            app[keys.REDIS] = client

            async def ping() -> None:
                await client.ping()

            app[keys.CHECKS]["redis"] = ping
            yield
            await client.aclose()

        return ctx


@dataclasses.dataclass(frozen=True)
class Auth(Resource):
    """Every route needs a valid access token unless declared ``public=True``: RS256 keys from
    ``JWT_PUBLIC_KEYS`` / ``JWT_PUBLIC_KEYS_FILE`` / ``JWKS_URL``, sessions checked against the
    revocation list (kept in Redis, mirrored locally)."""

    settings_type: ClassVar[type[Settings]] = AuthSettings
    requires: ClassVar[tuple[type[Resource], ...]] = (Redis,)

    def open(self, service: str) -> CleanupCtx:
        async def ctx(app: web.Application) -> AsyncIterator[None]:
            settings = app[keys.SETTINGS]
            assert isinstance(settings, AuthSettings)
            pem = settings.jwt_public_keys
            if settings.jwt_public_keys_file is not None:
                pem += "\n" + settings.jwt_public_keys_file.read_text()
            session = app.get(keys.HTTP)
            own_session = None
            if settings.jwks_url and session is None:
                own_session = session = aiohttp.ClientSession(
                    timeout=aiohttp.ClientTimeout(total=10, connect=2)
                )
            keyset = KeySet(load_public_keys(pem), jwks_url=settings.jwks_url, session=session)
            app[keys.VERIFIER] = TokenVerifier(keyset, issuer=settings.jwt_issuer)
            revocations = RevocationList(app[keys.REDIS])
            app[keys.REVOCATIONS] = revocations
            revocations.start()
            yield
            await revocations.stop()
            if own_session is not None:
                await own_session.close()

        return ctx


@dataclasses.dataclass(frozen=True)
class Audit(Resource):
    """The audit log at ``app[keys.AUDIT]`` (:mod:`svc_core.audit`): records in the collection
    ``audit`` of the service's database, kept ``AUDIT_RETENTION_DAYS`` (a TTL index), with
    ``svc_audit_records_total`` and ``svc_audit_failures_total`` on ``/metrics``."""

    settings_type: ClassVar[type[Settings]] = AuditSettings
    requires: ClassVar[tuple[type[Resource], ...]] = (Mongo,)

    def open(self, service: str) -> CleanupCtx:
        async def ctx(app: web.Application) -> AsyncIterator[None]:
            settings = app[keys.SETTINGS]
            assert isinstance(settings, AuditSettings)
            db = app[keys.MONGO_DB]
            await audit.apply_indexes(db, settings.audit_retention_days)
            log = audit.AuditLog(
                db[audit.COLLECTION],
                service,
                timeout=settings.audit_write_timeout,
                trusted=settings.trusted_networks(),
            )
            app[keys.AUDIT] = log
            app[keys.METRICS].registry.register(log.collector())
            yield
            await log.drain(settings.audit_write_timeout)

        return ctx


EventHandler = Callable[[web.Application, Event], Awaitable[None]]


@dataclasses.dataclass(frozen=True)
class Consume:
    """One consumer group reading one stream: ``handler(app, event)`` per event, at least once."""

    stream: str
    group: str
    handler: EventHandler


@dataclasses.dataclass(frozen=True)
class Events(Resource):
    """Redis Streams: an :class:`EventBus` at ``app[keys.EVENTS]`` to publish, and a consumer per
    ``Consume`` started once the service's parts are built (so handlers can use them)."""

    consume: Sequence[Consume] = ()
    settings_type: ClassVar[type[Settings]] = EventsSettings
    requires: ClassVar[tuple[type[Resource], ...]] = (Redis,)

    def open(self, service: str) -> CleanupCtx:
        async def ctx(app: web.Application) -> AsyncIterator[None]:
            app[keys.EVENTS] = EventBus(app[keys.REDIS])
            yield

        return ctx

    def start(self, service: str) -> CleanupCtx | None:
        if not self.consume:
            return None
        subscriptions = tuple(self.consume)

        async def ctx(app: web.Application) -> AsyncIterator[None]:
            settings = app[keys.SETTINGS]
            assert isinstance(settings, EventsSettings)
            name = settings.events_consumer or default_consumer_name(service)
            consumers = []
            for sub in subscriptions:

                async def deliver(event: Event, handler: EventHandler = sub.handler) -> None:
                    await handler(app, event)

                consumer = Consumer(
                    app[keys.REDIS],
                    sub.stream,
                    sub.group,
                    deliver,
                    consumer=name,
                    retry_after=settings.events_retry_after,
                    max_attempts=settings.events_max_attempts,
                )
                consumer.start()
                consumers.append(consumer)
            metrics = app[keys.METRICS]
            metrics.add_sampler("events", lambda: sample_consumers(metrics, consumers))
            yield
            for consumer in consumers:
                await consumer.stop()

        return ctx


async def sample_consumers(metrics: Metrics, consumers: Sequence[Consumer]) -> list[Family]:
    """The event-lag families of ``consumers``, one series per stream and group. Every instance
    of a service reports its groups' backlog (the same numbers: dashboards take the ``max``);
    the dead-lettered counter is this instance's own."""
    labels = ("stream", "group")
    pending = metrics.gauge(
        "svc_events_pending", "Events delivered to the group, not acknowledged yet.", labels
    )
    lag = metrics.gauge("svc_events_lag", "Events not delivered to the group yet.", labels)
    age = metrics.gauge(
        "svc_events_oldest_age_seconds",
        "Age of the oldest event the group has not finished (pending or undelivered); 0: none.",
        labels,
    )
    dead = metrics.gauge(
        "svc_events_dead_letter_entries", "Entries in the stream's dead-letter stream.", ["stream"]
    )
    parked = metrics.counter(
        "svc_events_dead_lettered",
        "Events this instance parked in the dead-letter stream (failed max attempts, malformed).",
        labels,
    )
    backlogs = await asyncio.gather(*(c.backlog() for c in consumers))
    streams: dict[str, int] = {}
    for consumer, backlog in zip(consumers, backlogs, strict=True):
        where = (consumer.stream, consumer.group)
        pending.add(backlog.pending, *where)
        if backlog.lag is not None:
            lag.add(backlog.lag, *where)
        age.add(backlog.oldest_age, *where)
        parked.add(consumer.dead_lettered, *where)
        streams[consumer.stream] = backlog.dead_letters
    for stream, entries in streams.items():
        dead.add(entries, stream)
    return [pending, lag, age, dead, parked]


def with_requirements(uses: Sequence[Resource]) -> tuple[Resource, ...]:
    """``uses`` plus what its resources require, each type once, in the order they open."""
    present = {type(r) for r in uses}
    added: list[Resource] = []
    for resource in uses:
        for needed in resource.requires:
            if needed not in present:
                present.add(needed)
                added.append(needed())
    everything = [*added, *uses]
    order = {Http: 0, Mongo: 1, Audit: 2, Redis: 3, Auth: 4, Events: 5}
    return tuple(sorted(everything, key=lambda r: order.get(type(r), 6)))


def uses_of(resources: Sequence[Any], kind: type[Resource]) -> bool:
    return any(isinstance(r, kind) for r in resources)
