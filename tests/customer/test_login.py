"""POST /auth/login: the token pair, identical refusals, and per-account throttling."""

from __future__ import annotations

import asyncio

import jwt
import pytest

from svc_core.redis import open_redis
from svc_core.testing import eventually, random_username
from tests.customer.conftest import PASSWORD, problem, register, services


async def test_login_returns_a_bearer_pair(client):
    account = await register(client)
    resp = await client.post(
        "/auth/login", json={"username": account.username, "password": PASSWORD}
    )
    assert resp.status == 200
    assert resp.headers["Cache-Control"] == "no-store"
    data = await resp.json()
    assert set(data) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert data["token_type"] == "Bearer"
    assert data["expires_in"] == 900
    assert data["refresh_token"] != data["access_token"]
    claims = jwt.decode(data["access_token"], options={"verify_signature": False})
    assert claims["sub"] == account.id
    assert claims["username"] == account.username


@pytest.mark.parametrize(
    "identifier",
    [
        lambda a: a.username,
        lambda a: a.username.upper(),
        lambda a: a.email,
        lambda a: a.email.upper(),
    ],
)
async def test_login_by_username_or_email_in_any_case(client, identifier):
    account = await register(client, username="Dora_Explorer", email="dora@example.com")
    await account.login(identifier(account))


async def test_unknown_user_and_wrong_password_get_identical_refusals(client):
    account = await register(client)
    wrong = await client.post(
        "/auth/login", json={"username": account.username, "password": "not the password"}
    )
    unknown = await client.post(
        "/auth/login", json={"username": random_username(), "password": "not the password"}
    )
    bodies = [await problem(r, 401, "invalid_credentials") for r in (wrong, unknown)]
    for body in bodies:
        del body["request_id"]
    assert bodies[0] == bodies[1]
    assert wrong.headers.get("WWW-Authenticate") == unknown.headers.get("WWW-Authenticate")


async def test_unknown_user_still_spends_a_bcrypt_check(client):
    hasher = services(client).hasher
    checks: list[str] = []
    original = hasher._check_sync

    def spy(password: str, hashed: str) -> bool:
        checks.append(hashed)
        return original(password, hashed)

    hasher._check_sync = spy  # type: ignore[method-assign]
    resp = await client.post(
        "/auth/login", json={"username": random_username(), "password": PASSWORD}
    )
    await problem(resp, 401, "invalid_credentials")
    assert checks == [await hasher.dummy_hash()]
    assert checks[0].startswith("$2b$04$")  # the configured cost, like a real hash


@pytest.mark.parametrize(
    "payload",
    [
        {"username": {"$ne": None}, "password": PASSWORD},
        {"username": {"$gt": ""}, "password": {"$ne": None}},
        {"username": "alice", "password": {"$ne": None}},
        {"username": ["alice"], "password": PASSWORD},
        {"username": 42, "password": PASSWORD},
        {"username": "alice", "password": None},
        {"username": "alice"},
        {"password": PASSWORD},
        {"username": "alice", "password": PASSWORD, "role": "admin"},
        {"username": "", "password": PASSWORD},
        {"username": "alice", "password": "p" * 129},
        {"username": "alice\ud800", "password": PASSWORD},
        {"username": "alice", "password": "\udfff" * 8},
    ],
)
async def test_malformed_login_is_422(client, payload):
    await register(client, username="alice")
    await problem(await client.post("/auth/login", json=payload), 422, "validation_failed")


# --- throttling -----------------------------------------------------------------------------


async def fail(client, identifier: str) -> int:
    resp = await client.post("/auth/login", json={"username": identifier, "password": "wrong-pw"})
    return resp.status


async def test_five_failures_lock_the_account_even_for_the_right_password(client):
    account = await register(client)
    for _ in range(5):
        assert await fail(client, account.username) == 401
    resp = await client.post(
        "/auth/login", json={"username": account.username, "password": PASSWORD}
    )
    body = await problem(resp, 429, "login_throttled")
    assert body["status"] == 429
    assert 890 <= int(resp.headers["Retry-After"]) <= 900
    # Attempts while locked are refused without extending the lock.
    resp = await client.post(
        "/auth/login", json={"username": account.username, "password": "wrong-pw"}
    )
    await problem(resp, 429, "login_throttled")
    assert int(resp.headers["Retry-After"]) <= 900


async def test_username_and_email_forms_share_one_counter(client):
    account = await register(client)
    for identifier in [account.username, account.email, account.username.upper()] * 2:
        if await fail(client, identifier) == 429:
            break
    resp = await client.post("/auth/login", json={"username": account.email, "password": PASSWORD})
    await problem(resp, 429, "login_throttled")
    resp = await client.post(
        "/auth/login", json={"username": account.username, "password": PASSWORD}
    )
    await problem(resp, 429, "login_throttled")


async def test_unknown_identifiers_are_throttled_the_same_way(client):
    ghost = random_username()
    statuses = [await fail(client, ghost if i % 2 else ghost.upper()) for i in range(6)]
    assert statuses == [401] * 5 + [429]
    resp = await client.post("/auth/login", json={"username": ghost, "password": PASSWORD})
    body = await problem(resp, 429, "login_throttled")
    assert 890 <= int(resp.headers["Retry-After"]) <= 900
    assert body["detail"]


async def test_throttling_one_account_leaves_others_alone(client):
    victim = await register(client)
    other = await register(client)
    for _ in range(5):
        await fail(client, victim.username)
    await other.login()


async def test_a_success_before_the_limit_resets_the_count(client):
    account = await register(client)
    for _ in range(4):
        assert await fail(client, account.username) == 401
    await account.login()
    for _ in range(4):
        assert await fail(client, account.username) == 401
    await account.login()


async def test_parallel_guesses_cannot_exceed_the_limit(client):
    account = await register(client)
    statuses = await asyncio.gather(*(fail(client, account.username) for _ in range(12)))
    assert sorted(statuses) == [401] * 5 + [429] * 7
    resp = await client.post(
        "/auth/login", json={"username": account.username, "password": PASSWORD}
    )
    await problem(resp, 429, "login_throttled")


async def test_parallel_right_logins_are_not_throttled(client):
    # More simultaneous attempts than the limit, none failing: no 429 (they queue instead).
    account = await register(client)

    async def login() -> int:
        resp = await client.post(
            "/auth/login", json={"username": account.username, "password": PASSWORD}
        )
        return resp.status

    assert await asyncio.gather(*(login() for _ in range(12))) == [200] * 12


async def test_the_lock_ends_window_seconds_after_the_fifth_failure(start):
    client = await start(login_throttle_window=1)
    account = await register(client)
    for _ in range(5):
        await fail(client, account.username)
    resp = await client.post(
        "/auth/login", json={"username": account.username, "password": PASSWORD}
    )
    await problem(resp, 429, "login_throttled")
    assert resp.headers["Retry-After"] == "1"

    async def can_log_in() -> bool:
        resp = await client.post(
            "/auth/login", json={"username": account.username, "password": PASSWORD}
        )
        return resp.status == 200

    assert await eventually(can_log_in, timeout=3.0, interval=0.1)


async def test_throttle_keys_are_prefixed_and_expire(client, redis_admin_url):
    account = await register(client)
    for _ in range(5):
        await fail(client, account.username)
    redis = services(client).sessions.redis
    # SCAN over the administrator's connection: the service's ACL user may not list keys.
    admin = open_redis(redis_admin_url)
    try:
        keys = [key async for key in admin.scan_iter("*")]
    finally:
        await admin.aclose()
    throttle_keys = [k for k in keys if k.startswith("customer:throttle:login:")]
    assert len(throttle_keys) == 2  # the failures and the lock
    for key in throttle_keys:
        assert 0 < await redis.pttl(key) <= 900_000
