"""Every registered service started in-process, on free ports, with test settings: what the
fuzzers (tests/fuzz) and the OWASP module (tests/security) run against.

The services are the ones :func:`svc_core.discover` finds (the ``svc.services`` entry points),
so a service that registers its manifest is covered without editing these tests. They run in one
background thread with its own event loop, so synchronous tests (schemathesis, hypothesis) and
asynchronous ones (aiohttp clients in the test's own loop) reach them alike, over real sockets.

Test settings, each applied where the service's settings class has the field: environment
``test``, this run's Redis database (``SVC_TEST_REDIS_DB``), a fresh in-memory MongoDB per
service, tokens signed by the test key pair (the customer service signs with it too, so its
tokens verify everywhere), cheap bcrypt, and every service a service calls (``calls``) pointed
at the running instance of it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import threading
import uuid
from collections.abc import Iterator, Mapping
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from aiohttp import web

from svc_core import Service, discover
from svc_core.runner import serve
from svc_core.testing import TEST_ISSUER, KeyPair, free_port, mint_token

ALICE = "cust-alice"
BOB = "cust-bob"


def token(keys: KeyPair, sub: str = ALICE, **kwargs: Any) -> str:
    """An access token of ``sub`` (alice, bob) signed by ``keys``, as the customer service's."""
    kwargs.setdefault("username", sub.removeprefix("cust-"))
    return mint_token(keys, sub=sub, **kwargs)


def test_redis_url() -> str:
    """The Redis this run's tests use: the pytest plugin's choice (a reachable ``REDIS_URL``, a
    started ``redis-server``, or fakeredis), database ``SVC_TEST_REDIS_DB``."""
    from svc_core.testing import plugin

    base = plugin._state.get("redis_base") or os.environ.get("REDIS_URL", "redis://127.0.0.1:6379")
    if base.startswith("memory://"):
        return f"memory://harness-{uuid.uuid4().hex}"
    parts = urlsplit(base)
    db = int(os.environ.get("SVC_TEST_REDIS_DB", "15"))
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", parts.query, parts.fragment))


def flush(url: str) -> None:
    if url.startswith("memory://"):
        return
    import redis

    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    except redis.ConnectionError:
        pass  # a server a fault test stopped: nothing left to flush
    finally:
        client.close()


def test_settings(
    service: Service[Any], keys: KeyPair, redis_url: str, urls: Mapping[str, str], **extra: Any
) -> Any:
    """``service``'s settings for these tests (each value where its class has the field)."""
    defaults: dict[str, Any] = {
        "environment": "test",
        "mongo_url": f"memory://security-{service.name}-{uuid.uuid4().hex}",
        "redis_url": redis_url,
        "jwt_issuer": TEST_ISSUER,
        "jwt_public_keys": keys.public_pem,
        "jwt_private_key": keys.private_pem,
        "password_pepper": "test-pepper",
        "bcrypt_rounds": 4,
        "access_log": False,
        "uvloop": False,
        "events_retry_after": 0.1,
        "log_level": "CRITICAL",
    }
    fields = {f.name for f in dataclasses.fields(service.settings)}
    for called, field in service.calls.items():
        if called in urls:
            defaults[field] = urls[called]
    defaults.update(extra)
    return service.load_settings({}, **{k: v for k, v in defaults.items() if k in fields})


@dataclasses.dataclass
class Running:
    """The started services: base URLs by name, the manifests, the key pair, the loop."""

    services: dict[str, Service[Any]]
    urls: dict[str, str]
    apps: dict[str, web.Application]
    keys: KeyPair
    redis_url: str
    loop: asyncio.AbstractEventLoop

    def token(self, sub: str = ALICE, **kwargs: Any) -> str:
        return token(self.keys, sub, **kwargs)

    def headers(self, sub: str = ALICE, **kwargs: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(sub, **kwargs)}"}

    def run(self, coro: Any, timeout: float = 30) -> Any:
        """Run ``coro`` in the services' loop (to reach their apps' state)."""
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(timeout)


@contextmanager
def running_services(
    services: Mapping[str, Service[Any]] | None = None,
    *,
    keys: KeyPair | None = None,
    redis_url: str | None = None,
    extra: Mapping[str, Mapping[str, Any]] | None = None,
) -> Iterator[Running]:
    """Start ``services`` (default: every registered one) in a background loop; stop them after."""
    services = dict(discover() if services is None else services)
    keys = keys or KeyPair.generate()
    redis_url = redis_url or test_redis_url()
    flush(redis_url)
    ports = {name: free_port() for name in services}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="services", daemon=True)
    thread.start()
    runners: list[web.AppRunner] = []
    apps: dict[str, web.Application] = {}

    async def start() -> None:
        for name, service in services.items():
            settings = test_settings(service, keys, redis_url, urls, **(extra or {}).get(name, {}))
            app = service.create_app(settings)
            apps[name] = app
            runners.append(await serve(app, "127.0.0.1", ports[name], shutdown_timeout=1))

    async def stop() -> None:
        for runner in reversed(runners):
            await runner.cleanup()
        # connections a client kept alive past the shutdown: end their handlers too
        pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    try:
        asyncio.run_coroutine_threadsafe(start(), loop).result(60)
        yield Running(services, urls, apps, keys, redis_url, loop)
    finally:
        asyncio.run_coroutine_threadsafe(stop(), loop).result(60)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
        flush(redis_url)
