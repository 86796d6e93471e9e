"""Test helpers shared by every service's tests (fixtures live in :mod:`svc_core.testing.plugin`).

token = mint_token(test_keys, sub="cust-1")          # a valid access token
headers = {"Authorization": f"Bearer {token}"}
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import secrets
import time
import uuid
from collections.abc import Callable
from functools import cached_property
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from svc_core.auth import key_id, public_pem
from svc_core.embedded import free_port

__all__ = [
    "TEST_ISSUER",
    "KeyPair",
    "assert_problem",
    "eventually",
    "free_port",
    "metric_value",
    "metrics_of",
    "mint_token",
    "random_email",
    "random_username",
    "record_list_reads",
    "seed_revocation_epoch",
]

TEST_ISSUER = "svc-test-issuer"


@dataclasses.dataclass
class KeyPair:
    """An RSA key pair for signing test tokens; ``kid`` is derived as everywhere else."""

    private_key: rsa.RSAPrivateKey

    @classmethod
    def generate(cls) -> KeyPair:
        return cls(rsa.generate_private_key(public_exponent=65537, key_size=2048))

    @cached_property
    def kid(self) -> str:
        return key_id(self.private_key.public_key())

    @cached_property
    def public_pem(self) -> str:
        return public_pem(self.private_key)

    @cached_property
    def private_pem(self) -> str:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode("ascii")


def mint_token(
    keys: KeyPair,
    *,
    sub: str | None = None,
    sid: str | None = None,
    username: str = "tester",
    issuer: str = TEST_ISSUER,
    ttl: int = 900,
    claims: dict[str, Any] | None = None,
    headers: dict[str, Any] | None = None,
    drop: tuple[str, ...] = (),
) -> str:
    """An RS256 access token shaped like the customer service's; override anything to break it."""
    now = int(time.time())
    payload: dict[str, Any] = {
        "iss": issuer,
        "sub": sub or f"cust-{uuid.uuid4().hex[:12]}",
        "username": username,
        "sid": sid or uuid.uuid4().hex,
        "jti": uuid.uuid4().hex,
        "iat": now,
        "exp": now + ttl,
    }
    payload.update(claims or {})
    for name in drop:
        payload.pop(name, None)
    header = {"kid": keys.kid}
    header.update(headers or {})
    return jwt.encode(payload, keys.private_key, algorithm="RS256", headers=header)


async def eventually(
    check: Callable[[], Any],
    *,
    timeout: float = 5.0,  # noqa: ASYNC109 - bounds the polling; must not cancel a check
    interval: float = 0.02,
) -> Any:
    """Poll ``check()`` (sync or async) until it returns something truthy, and return that;
    fail with AssertionError once ``timeout`` seconds have passed. A bound on polling for
    something asynchronous to happen, never a timing assertion."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(interval)


async def assert_problem(resp: Any, status: int, code: str) -> dict[str, Any]:
    """Assert an aiohttp client response is api.md's error: ``status``, problem+json with that
    ``status`` and ``code``, and the ``request_id`` of its ``X-Request-ID``; return the body."""
    assert resp.status == status, await resp.text()
    assert resp.content_type == "application/problem+json"
    problem: dict[str, Any] = await resp.json()
    assert problem["status"] == status
    assert problem["code"] == code
    assert problem["request_id"] == resp.headers["X-Request-ID"]
    return problem


def seed_revocation_epoch(redis_url: str) -> None:
    """Write the revocation epoch into the (real) Redis at ``redis_url``, as a Redis that has
    been in use has it. Without one, the first service to start cuts off tokens minted in
    earlier seconds (:mod:`svc_core.auth.revocations` fails closed on a Redis it never saw), so
    a test that mints a token just before a second ends would get 401. The ``redis_url``
    fixture's databases are seeded already; a test that starts its own ``redis-server`` calls
    this."""
    import redis

    from svc_core.auth.revocations import EPOCH_KEY

    client = redis.Redis.from_url(redis_url)
    try:
        client.set(EPOCH_KEY, "svc-test")
    finally:
        client.close()


#: a scrape parsed: (sample name, its labels) -> value
MetricSamples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def metrics_of(text: str) -> MetricSamples:
    """A ``/metrics`` body (Prometheus text format) parsed with prometheus-client's parser."""
    from prometheus_client.parser import text_string_to_metric_families

    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def metric_value(samples: MetricSamples, name: str, **labels: str) -> float | None:
    """The value of the sample ``name`` with exactly ``labels``, or None when there is none."""
    return samples.get((name, frozenset(labels.items())))


def random_email() -> str:
    return f"user-{secrets.token_hex(6)}@example.com"


def random_username() -> str:
    return f"user_{secrets.token_hex(5)}"


def record_list_reads(monkeypatch: Any, module: Any) -> list[str]:
    """Spy on ``module.find_page`` (a repository module's import): the read preference
    (``primary``, ``secondaryPreferred``, ...) of each collection a list route reads through."""
    seen: list[str] = []
    real = module.find_page

    async def spy(collection: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(collection.read_preference.mongos_mode)
        return await real(collection, *args, **kwargs)

    monkeypatch.setattr(module, "find_page", spy)
    return seen
