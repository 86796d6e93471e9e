"""The service as a whole: Redis only, chassis endpoints, contract surface."""

from __future__ import annotations

import pytest

from svc_cache import CacheSettings, create_app, service
from svc_cache.domain import remaining_seconds
from svc_cache.repository import redis_key


async def test_runs_without_mongodb(aiohttp_client, redis_url, test_keys):
    from svc_core.testing import TEST_ISSUER

    settings = CacheSettings.from_env(
        {},
        environment="production",
        redis_url=redis_url,
        jwt_issuer=TEST_ISSUER,
        jwt_public_keys=test_keys.public_pem,
    )
    assert "MONGO_URL" not in CacheSettings.variables()  # no MongoDB setting at all
    client = await aiohttp_client(create_app(settings))
    resp = await client.get("/ready")
    assert resp.status == 200
    assert await resp.json() == {"status": "ready", "checks": {"redis": "ok"}}


def test_default_port():
    assert service.port == 3001
    assert service.name == "cache"


async def test_openapi_lists_the_routes(client):
    spec = await (await client.get("/openapi.json")).json()
    assert set(spec["paths"]["/cache/{key}"]) == {"get", "put", "delete"}
    assert set(spec["paths"]["/cache/{key}/incr"]) == {"post"}
    assert "413" in spec["paths"]["/cache/{key}"]["put"]["responses"]
    assert "409" in spec["paths"]["/cache/{key}/incr"]["post"]["responses"]


@pytest.mark.parametrize(
    ("pttl", "seconds"),
    [(-1, None), (0, 1), (1, 1), (999, 1), (1000, 1), (1001, 2), (2_592_000_000, 2_592_000)],
)
def test_remaining_seconds_rounds_up(pttl, seconds):
    assert remaining_seconds(pttl) == seconds


def test_namespace_is_fixed_length_and_unambiguous():
    assert redis_key("a", "b:c") != redis_key("a:b", "c")
    assert redis_key("a}", "k") != redis_key("a", "}k")
    assert redis_key("a", "k") == redis_key("a", "k")
    assert len(redis_key("x" * 500, "k")) == len(redis_key("", "k"))
