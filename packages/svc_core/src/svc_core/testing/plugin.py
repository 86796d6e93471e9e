"""The pytest plugin every service's tests use (registered through the ``pytest11`` entry point).

Redis: ``REDIS_URL`` (default ``redis://127.0.0.1:6379``), database ``SVC_TEST_REDIS_DB``
(default 15), flushed before and after each test that asks for it.

With ``SVC_TEST_REDIS_USER=<service>`` the tests connect as a fresh ACL user with that
service's rights (``svc_core.redis_acl``, the table compose's ACL file is made from), created
at the start of the run and deleted at its end (``nox -s redis-acl``). The fixture still
flushes and seeds the database over the ``REDIS_URL`` connection (an administrator's), which
the service's user may not do; ``redis_admin_url`` is that connection, for tests that SCAN.

With ``CI=true`` an unreachable Redis fails the run. Elsewhere, with none reachable, a
``redis-server`` from the PATH is started on a free port, else fakeredis is used; the header
of the run says which.
"""

from __future__ import annotations

import dataclasses
import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import pytest

from svc_core.auth.revocations import EPOCH_KEY
from svc_core.embedded import RedisServer, reachable
from svc_core.settings import Settings
from svc_core.testing import TEST_ISSUER, KeyPair, mint_token, seed_revocation_epoch

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


def _create_acl_user(admin_url: str, service: str) -> tuple[str, str]:
    """An ACL user with ``service``'s rights, the way deploy/redis/users.acl defines it:
    (its name, the admin URL with its credentials instead)."""
    import redis

    from svc_core import redis_acl

    if service not in redis_acl.USERS:
        raise pytest.UsageError(f"SVC_TEST_REDIS_USER={service}: not in svc_core.redis_acl.USERS")
    name = f"svctest-{service}-{uuid.uuid4().hex[:8]}"
    password = uuid.uuid4().hex
    client: Any = redis.Redis.from_url(admin_url)  # execute_command is untyped
    try:
        client.execute_command("ACL", "SETUSER", name, "reset", "on", f">{password}",
                               *redis_acl.rules(service).split())  # fmt: skip
    finally:
        client.close()
    parts = urlsplit(admin_url)
    host = parts.hostname or "127.0.0.1"
    netloc = f"{name}:{password}@{host}:{parts.port or 6379}"
    return name, urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def pytest_configure(config: pytest.Config) -> None:
    url, how = _resolve_redis()
    _state["redis_base"] = url
    _state["redis_how"] = how
    service = os.environ.get("SVC_TEST_REDIS_USER", "")
    if service and not url.startswith("memory://"):
        name, user_url = _create_acl_user(url, service)
        _state["acl_user"] = name
        _state["redis_user_url"] = user_url
        _state["redis_how"] = f"{how}, as ACL user {name} ({service}'s rights)"


def pytest_unconfigure(config: pytest.Config) -> None:
    name = _state.pop("acl_user", None)
    if name is not None:
        import redis

        client = redis.Redis.from_url(_state["redis_base"])
        try:
            client.acl_deluser(name)
        finally:
            client.close()
    server = _state.pop("server", None)
    if server is not None:
        server.stop()


def pytest_report_header(config: pytest.Config) -> str:
    return f"svc_core: tests use {_state.get('redis_how', 'no Redis')}"


def pytest_terminal_summary(terminalreporter: Any) -> None:
    # The header is hidden by -q; the summary line is not.
    terminalreporter.write_line(f"svc_core: tests used {_state.get('redis_how', 'no Redis')}")


def _flush(url: str, *, seed: bool = False) -> None:
    """Empty the test's database; ``seed`` then writes the revocation epoch, as a Redis that
    has been in use has it. Without one, the first service to start sets a cut-off at that
    second and refuses tokens minted earlier (svc_core.auth.revocations), which would make a
    test that mints a token before starting its app depend on the clock."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    finally:
        client.close()
    if seed:
        seed_revocation_epoch(url)


def _seed_memory(url: str) -> None:
    import fakeredis

    from svc_core.redis import memory_server

    fakeredis.FakeRedis(server=memory_server(url)).set(EPOCH_KEY, "svc-test")


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A Redis URL of this test's own: a flushed database, or a fresh in-memory server."""
    base = _state["redis_base"]
    if base == "memory://":
        url = f"memory://test-{uuid.uuid4().hex}"
        _seed_memory(url)
        yield url
        return
    db = int(os.environ.get("SVC_TEST_REDIS_DB", "15"))
    admin = _with_db(base, db)
    _flush(admin, seed=True)
    yield _with_db(_state.get("redis_user_url", base), db)
    _flush(admin)


@pytest.fixture
def redis_admin_url(redis_url: str) -> str:
    """The test's database over the administrator's connection: for a test that inspects every
    key (SCAN), which a service's ACL user may not do (``SVC_TEST_REDIS_USER``)."""
    if redis_url.startswith("memory://"):
        return redis_url
    return _with_db(_state["redis_base"], int(os.environ.get("SVC_TEST_REDIS_DB", "15")))


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A ``redis-server`` of this test's own on a free port, for a test that stops or restarts
    Redis (never the shared one); skipped where no ``redis-server`` is on the PATH."""
    if not RedisServer.available():
        pytest.skip("needs redis-server on the PATH")
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.stop()


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
    use this test's Redis and a fresh in-memory MongoDB (each where the class has the setting;
    an override the class does not have is an error)."""

    def make(cls: type[S], **overrides: Any) -> S:
        defaults: dict[str, Any] = {
            "environment": "test",
            "mongo_url": f"memory://test-{uuid.uuid4().hex}",
            "redis_url": redis_url,
            "jwt_issuer": TEST_ISSUER,
            "jwt_public_keys": test_keys.public_pem,
            "access_log": True,
            "uvloop": False,
        }
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in defaults.items() if k in names}
        values.update(overrides)
        return cls.from_env({}, **values)

    return make
