"""Sessions: refresh rotation, reuse detection, logout, and what Redis holds."""

from __future__ import annotations

import asyncio
import uuid

import jwt

from svc_core.redis import open_redis
from svc_core.testing import eventually
from svc_customer.sessions import digest
from tests.customer.conftest import bearer, problem, register, services


def sid_of(pair: dict) -> str:
    return jwt.decode(pair["access_token"], options={"verify_signature": False})["sid"]


async def refresh(client, token: str):
    return await client.post("/auth/refresh", json={"refresh_token": token})


async def revoked(client, pair: dict) -> bool:
    resp = await client.get("/customers/me", headers=bearer(pair))
    if resp.status != 401:
        return False
    return (await resp.json(content_type=None))["code"] == "session_revoked"


async def test_refresh_rotates_the_token_in_the_same_session(client):
    account = await register(client)
    first = await account.login()
    resp = await refresh(client, first["refresh_token"])
    assert resp.status == 200
    assert resp.headers["Cache-Control"] == "no-store"
    second = await resp.json()
    assert set(second) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert second["token_type"] == "Bearer"
    assert second["refresh_token"] != first["refresh_token"]
    assert sid_of(second) == sid_of(first)
    me = await client.get("/customers/me", headers=bearer(second))
    assert (await me.json())["id"] == account.id
    third = await (await refresh(client, second["refresh_token"])).json()
    assert sid_of(third) == sid_of(first)


async def test_a_reused_refresh_token_revokes_the_whole_session(client):
    account = await register(client)
    first = await account.login()
    other = await account.login()  # another session of the same customer
    second = await (await refresh(client, first["refresh_token"])).json()

    await problem(await refresh(client, first["refresh_token"]), 401, "refresh_token_reused")
    # The thief's and the owner's newest tokens are dead: the session is revoked.
    await problem(await refresh(client, second["refresh_token"]), 401, "session_revoked")
    await problem(await refresh(client, first["refresh_token"]), 401, "session_revoked")
    assert await eventually(lambda: revoked(client, second), timeout=1.0)
    # Another session is untouched.
    assert (await client.get("/customers/me", headers=bearer(other))).status == 200
    assert (await refresh(client, other["refresh_token"])).status == 200


async def test_simultaneous_refreshes_of_one_token_let_only_one_through(client):
    pair = await (await register(client)).login()
    responses = await asyncio.gather(*(refresh(client, pair["refresh_token"]) for _ in range(5)))
    statuses = sorted(r.status for r in responses)
    assert statuses == [200, 401, 401, 401, 401]


async def test_unknown_or_expired_refresh_token_is_invalid(start):
    client = await start(refresh_token_ttl=1)
    await problem(await refresh(client, "no-such-token"), 401, "refresh_token_invalid")
    pair = await (await register(client)).login()
    redis = services(client).sessions.redis
    # Wait (bounded) for Redis to expire the 1 s token rather than sleeping a fixed time.
    assert await eventually(lambda: _gone(redis, pair["refresh_token"]), timeout=3.0)
    await problem(await refresh(client, pair["refresh_token"]), 401, "refresh_token_invalid")


async def _gone(redis, token: str) -> bool:
    return not await redis.exists(f"customer:refresh:{digest(token)}")


async def test_malformed_refresh_is_422(client):
    for payload in (
        {},
        {"refresh_token": None},
        {"refresh_token": {"$ne": None}},
        {"refresh_token": "x", "extra": 1},
        {"refresh_token": ""},
    ):
        await problem(await client.post("/auth/refresh", json=payload), 422, "validation_failed")


async def test_logout_revokes_the_access_and_refresh_tokens(client):
    account = await register(client)
    pair = await account.login()
    other = await account.login()
    resp = await client.post("/auth/logout", headers=bearer(pair))
    assert resp.status == 204
    assert await eventually(lambda: revoked(client, pair), timeout=1.0)  # api.md: within 1 s
    await problem(await refresh(client, pair["refresh_token"]), 401, "session_revoked")
    await problem(await client.post("/auth/logout", headers=bearer(pair)), 401, "session_revoked")
    # The customer's other session lives on.
    assert (await client.get("/customers/me", headers=bearer(other))).status == 200
    assert (await refresh(client, other["refresh_token"])).status == 200


async def test_logout_is_announced_to_every_service(client):
    pair = await (await register(client)).login()
    redis = services(client).sessions.redis
    assert await redis.zscore("auth:revoked", sid_of(pair)) is None
    assert (await client.post("/auth/logout", headers=bearer(pair))).status == 204
    until = await redis.zscore("auth:revoked", sid_of(pair))
    claims = jwt.decode(pair["access_token"], options={"verify_signature": False})
    assert until >= claims["exp"]  # outlives every access token of the session


async def test_logout_takes_no_body(client):
    pair = await (await register(client)).login()
    resp = await client.post("/auth/logout", json={"everywhere": True}, headers=bearer(pair))
    await problem(resp, 422, "validation_failed")
    assert (await client.get("/customers/me", headers=bearer(pair))).status == 200


async def test_redis_holds_only_prefixed_expiring_keys_and_no_raw_token(client, redis_admin_url):
    account = await register(client)
    pair = await account.login()
    pair = await (await refresh(client, pair["refresh_token"])).json()
    other = await account.login()
    await client.post("/auth/logout", headers=bearer(other))
    await client.post("/auth/login", json={"username": account.username, "password": "wrong-pw"})
    ttl_limit = 30 * 86400 * 1000  # REFRESH_TOKEN_TTL, the longest life of any key
    seen = []
    # Over the administrator's connection: the service's ACL user may not list keys (SCAN).
    redis = open_redis(redis_admin_url)
    try:
        async for key in redis.scan_iter("*"):
            if key.startswith("auth:"):  # the chassis' revocation set and channel
                continue
            assert key.startswith("customer:"), key
            assert 0 < await redis.pttl(key) <= ttl_limit, key
            assert pair["refresh_token"] not in key
            kind = await redis.type(key)
            if kind == "string":
                assert pair["refresh_token"] not in await redis.get(key)
            elif kind == "hash":
                assert pair["refresh_token"] not in str(await redis.hgetall(key))
            seen.append(key.split(":")[1])
    finally:
        await redis.aclose()
    assert {"session", "refresh", "revoked", "customer-sessions", "throttle"} <= set(seen)


async def test_logout_on_one_instance_is_enforced_by_another(start):
    shared = f"memory://customer-{uuid.uuid4().hex}"  # one database, two service instances
    first, second = await start(mongo_url=shared), await start(mongo_url=shared)
    pair = await (await register(first)).login()
    assert (await second.get("/customers/me", headers=bearer(pair))).status == 200
    assert (await first.post("/auth/logout", headers=bearer(pair))).status == 204
    assert await eventually(lambda: revoked(second, pair), timeout=1.0)  # api.md: within 1 s
    await problem(await refresh(second, pair["refresh_token"]), 401, "session_revoked")


async def test_a_rotation_applied_twice_is_not_taken_for_reuse(client):
    """The Redis client retries a command after a connection error; if the server had run the
    rotation before the connection broke, running it again must not look like token theft."""
    from svc_customer.sessions import PREFIX

    pair = await (await register(client)).login()
    store = services(client).sessions
    old, new = digest(pair["refresh_token"]), digest("the-new-token")
    args = {
        "keys": [f"{PREFIX}refresh:{old}"],
        "args": [PREFIX, old, new, store.refresh_ttl_ms, 1_000],
    }
    first = [str(part) for part in await store._rotate(**args)]
    again = [str(part) for part in await store._rotate(**args)]
    assert first[0] == "ok"
    assert again == first
    assert not await revoked(client, pair)
    # A real second use (another new token) is still reuse.
    args["args"][2] = digest("a-thief's-new-token")
    assert str((await store._rotate(**args))[0]) == "reused"
