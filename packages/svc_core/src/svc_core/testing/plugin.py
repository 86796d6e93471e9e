"""The pytest plugin every service's tests use (registered through the ``pytest11`` entry point).

Redis: ``REDIS_URL`` (default ``redis://127.0.0.1:6379``), database ``SVC_TEST_REDIS_DB``
(default 15), flushed before and after each test that asks for it. With ``CI=true`` an
unreachable Redis fails the run. Elsewhere, with none reachable, a ``redis-server`` from the
PATH is started on a free port, else fakeredis is used; the header of the run says which.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import pytest

from svc_core.embedded import RedisServer, reachable
from svc_core.settings import Settings
from svc_core.testing import TEST_ISSUER, KeyPair, mint_token

S = TypeVar("S", bound=Settings)

_state: dict[str, Any] = {}


def _with_db(url: str, db: int) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", parts.query, parts.fragment))


def _resolve_redis() -> tuple[str, str]:
    """(base url or memory://, how it was chosen)."""
    configured = os.environ.get("REDIS_URL")
    url = configured or "redis://127.0.0.1:6379"
    if url.startswith("memory://"):
        return "memory://", "in-memory Redis (fakeredis), as REDIS_URL asks"
    parts = urlsplit(url)
    if reachable(parts.hostname or "127.0.0.1", parts.port or 6379):
        return url, f"Redis at {parts.hostname}:{parts.port or 6379}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.exit(f"CI=true and no Redis answers at {url}: tests need a real Redis", 3)
    if RedisServer.available():
        server = RedisServer().start()
        _state["server"] = server
        return server.url, f"redis-server started on port {server.port} (none was reachable)"
    return "memory://", "in-memory Redis (fakeredis): no Redis reachable, none on the PATH"


def pytest_configure(config: pytest.Config) -> None:
    url, how = _resolve_redis()
    _state["redis_base"] = url
    _state["redis_how"] = how


def pytest_unconfigure(config: pytest.Config) -> None:
    server = _state.pop("server", None)
    if server is not None:
        server.stop()


def pytest_report_header(config: pytest.Config) -> str:
    return f"svc_core: tests use {_state.get('redis_how', 'no Redis')}"


def pytest_terminal_summary(terminalreporter: Any) -> None:
    # The header is hidden by -q; the summary line is not.
    terminalreporter.write_line(f"svc_core: tests used {_state.get('redis_how', 'no Redis')}")


def _flush(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    finally:
        client.close()


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A Redis URL of this test's own: a flushed database, or a fresh in-memory server."""
    base = _state["redis_base"]
    if base == "memory://":
        yield f"memory://test-{uuid.uuid4().hex}"
        return
    url = _with_db(base, int(os.environ.get("SVC_TEST_REDIS_DB", "15")))
    _flush(url)
    yield url
    _flush(url)


@pytest.fixture(scope="session")
def test_keys() -> KeyPair:
    """The RSA key pair that signs test tokens (its public half is in ``make_settings``)."""
    return KeyPair.generate()


@pytest.fixture(scope="session")
def other_keys() -> KeyPair:
    """A second key pair that no service trusts: tokens signed with it must be refused."""
    return KeyPair.generate()


@pytest.fixture
def make_token(test_keys: KeyPair) -> Callable[..., str]:
    """``make_token(sub="c1", sid=..., ttl=..., claims={...}, headers={...})`` → a signed token."""

    def make(**kwargs: Any) -> str:
        return mint_token(test_keys, **kwargs)

    return make


@pytest.fixture
def auth_header(make_token: Callable[..., str]) -> Callable[..., dict[str, str]]:
    """``auth_header(sub="c1")`` → ``{"Authorization": "Bearer <token>"}``."""

    def header(**kwargs: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {make_token(**kwargs)}"}

    return header


@pytest.fixture
def alice(auth_header: Callable[..., dict[str, str]]) -> dict[str, str]:
    """Auth headers of one customer (``sub`` ``cust-alice``); ``bob`` is another, for the
    ownership tests every service needs. A conftest may override either."""
    return auth_header(sub="cust-alice", username="alice")


@pytest.fixture
def bob(auth_header: Callable[..., dict[str, str]]) -> dict[str, str]:
    """Auth headers of a second customer (``sub`` ``cust-bob``)."""
    return auth_header(sub="cust-bob", username="bob")


@pytest.fixture
def make_settings(redis_url: str, test_keys: KeyPair) -> Callable[..., Any]:
    """``make_settings(OrderSettings, mongo_url=...)``: test settings that trust ``test_keys``,
    use this test's Redis and a fresh in-memory MongoDB."""

    def make(cls: type[S], **overrides: Any) -> S:
        values: dict[str, Any] = {
            "environment": "test",
            "mongo_url": f"memory://test-{uuid.uuid4().hex}",
            "redis_url": redis_url,
            "jwt_issuer": TEST_ISSUER,
            "jwt_public_keys": test_keys.public_pem,
            "access_log": True,
            "uvloop": False,
        }
        values.update(overrides)
        return cls.from_env({}, **values)

    return make
