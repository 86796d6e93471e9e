"""GET/PATCH /customers/me and POST /customers/me/password."""

from __future__ import annotations

import pytest

from svc_core.testing import eventually, random_email
from tests.customer.conftest import PASSWORD, bearer, problem, register, services

NEW_PASSWORD = "a brand new passphrase"


async def test_get_me_returns_the_profile(client):
    account = await register(client, email="Eve@Example.com")
    pair = await account.login()
    resp = await client.get("/customers/me", headers=bearer(pair))
    assert resp.status == 200
    data = await resp.json()
    assert data == {
        "id": account.id,
        "username": account.username,
        "email": "eve@example.com",
        "created_at": data["created_at"],
    }
    assert data["created_at"].endswith("Z")


async def test_me_for_a_customer_that_does_not_exist_is_404(client, auth_header):
    await problem(await client.get("/customers/me", headers=auth_header()), 404, "not_found")
    resp = await client.patch(
        "/customers/me", json={"email": "x@example.com"}, headers=auth_header()
    )
    await problem(resp, 404, "not_found")


async def test_me_needs_a_token(client):
    await problem(await client.get("/customers/me"), 401, "unauthorized")
    await problem(
        await client.patch("/customers/me", json={"email": "a@b.co"}), 401, "unauthorized"
    )
    resp = await client.post(
        "/customers/me/password", json={"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    )
    await problem(resp, 401, "unauthorized")


async def test_patch_changes_the_email_lower_cased(client):
    account = await register(client)
    pair = await account.login()
    resp = await client.patch(
        "/customers/me", json={"email": "New.Address@Example.ORG"}, headers=bearer(pair)
    )
    assert resp.status == 200
    data = await resp.json()
    assert data["email"] == "new.address@example.org"
    assert data["id"] == account.id
    me = await (await client.get("/customers/me", headers=bearer(pair))).json()
    assert me == data
    await account.login("NEW.address@example.org")


async def test_changing_only_the_case_of_ones_own_email_is_no_conflict(client):
    account = await register(client, email="frank@example.com")
    pair = await account.login()
    resp = await client.patch(
        "/customers/me", json={"email": "FRANK@example.com"}, headers=bearer(pair)
    )
    assert resp.status == 200
    assert (await resp.json())["email"] == "frank@example.com"


@pytest.mark.parametrize("transform", [str, str.upper])
async def test_taking_someone_elses_email_is_409(client, transform):
    taken = await register(client, email="grace@example.com")
    account = await register(client)
    pair = await account.login()
    resp = await client.patch(
        "/customers/me", json={"email": transform(taken.email)}, headers=bearer(pair)
    )
    await problem(resp, 409, "email_taken")
    me = await (await client.get("/customers/me", headers=bearer(pair))).json()
    assert me["email"] == account.email


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"email": None},
        {"email": "nope"},
        {"email": {"$ne": None}},
        {"email": random_email(), "username": "renamed"},
        {"email": random_email(), "password_hash": "x"},
    ],
)
async def test_invalid_patch_is_422(client, payload):
    pair = await (await register(client)).login()
    resp = await client.patch("/customers/me", json=payload, headers=bearer(pair))
    await problem(resp, 422, "validation_failed")


# --- password -------------------------------------------------------------------------------


async def change(client, pair, current: str, new: str = NEW_PASSWORD):
    return await client.post(
        "/customers/me/password",
        json={"current_password": current, "new_password": new},
        headers=bearer(pair),
    )


async def revoked(client, pair) -> bool:
    resp = await client.get("/customers/me", headers=bearer(pair))
    return resp.status == 401 and (await resp.json(content_type=None))["code"] == "session_revoked"


async def test_password_change_revokes_every_other_session_and_keeps_this_one(client):
    account = await register(client)
    mine = await account.login()
    others = [await account.login(), await account.login(account.email)]
    resp = await change(client, mine, PASSWORD)
    assert resp.status == 204
    assert await resp.read() == b""
    for other in others:
        assert await eventually(lambda other=other: revoked(client, other), timeout=1.0)
        resp = await client.post("/auth/refresh", json={"refresh_token": other["refresh_token"]})
        await problem(resp, 401, "session_revoked")
    # This session keeps working, access and refresh alike.
    assert (await client.get("/customers/me", headers=bearer(mine))).status == 200
    resp = await client.post("/auth/refresh", json={"refresh_token": mine["refresh_token"]})
    assert resp.status == 200
    # The old password is gone, the new one works.
    resp = await client.post(
        "/auth/login", json={"username": account.username, "password": PASSWORD}
    )
    await problem(resp, 401, "invalid_credentials")
    await account.login(password=NEW_PASSWORD)


async def test_wrong_current_password_is_403(client):
    account = await register(client)
    pair = await account.login()
    await problem(await change(client, pair, "not my password"), 403, "invalid_current_password")
    await account.login()  # unchanged


@pytest.mark.parametrize(
    "payload",
    [
        {"current_password": PASSWORD, "new_password": PASSWORD},
        {"current_password": PASSWORD, "new_password": "short"},
        {"current_password": PASSWORD, "new_password": "n" * 129},
        {"current_password": PASSWORD},
        {"new_password": NEW_PASSWORD},
        {"current_password": {"$ne": None}, "new_password": NEW_PASSWORD},
        {"current_password": PASSWORD, "new_password": NEW_PASSWORD, "logout_all": True},
        {"current_password": PASSWORD, "new_password": "\ud800" * 9},
    ],
)
async def test_invalid_password_change_is_422(client, payload):
    account = await register(client)
    pair = await account.login()
    resp = await client.post("/customers/me/password", json=payload, headers=bearer(pair))
    await problem(resp, 422, "validation_failed")
    await account.login()  # unchanged


async def test_new_password_equal_to_current_names_the_field(client):
    pair = await (await register(client)).login()
    body = await problem(await change(client, pair, PASSWORD, PASSWORD), 422, "validation_failed")
    assert list(body["errors"]) == ["new_password"]


async def test_wrong_current_passwords_are_throttled_on_their_own_counter(client):
    account = await register(client)
    pair = await account.login()
    for _ in range(5):
        await problem(
            await change(client, pair, "not my password"), 403, "invalid_current_password"
        )
    resp = await change(client, pair, PASSWORD)  # the right one, still refused
    await problem(resp, 429, "password_change_throttled")
    assert 890 <= int(resp.headers["Retry-After"]) <= 900
    # Login has its own counter and is not affected.
    await account.login()
    redis = services(client).sessions.redis
    assert await redis.exists(f"customer:throttle:password:id:{account.id}:lock")


async def test_a_successful_change_resets_the_password_counter(client):
    account = await register(client)
    pair = await account.login()
    for _ in range(4):
        await problem(
            await change(client, pair, "not my password"), 403, "invalid_current_password"
        )
    assert (await change(client, pair, PASSWORD)).status == 204
    for _ in range(4):
        await problem(
            await change(client, pair, "not my password"), 403, "invalid_current_password"
        )
    assert (await change(client, pair, NEW_PASSWORD, "yet another passphrase")).status == 204
