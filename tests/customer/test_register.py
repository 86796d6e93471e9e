"""POST /auth/register: the stored shape, uniqueness, and every kind of bad input."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from svc_core.testing import random_email, random_username
from tests.customer.conftest import PASSWORD, problem, register, services


async def test_register_returns_the_profile_with_username_as_typed_and_email_lowered(client):
    username = "Alice.Smith-" + random_username()[-6:]
    resp = await client.post(
        "/auth/register",
        json={"username": username, "email": "Alice.Smith@Example.COM", "password": PASSWORD},
    )
    assert resp.status == 201
    data = await resp.json()
    assert set(data) == {"id", "username", "email", "created_at"}
    assert data["username"] == username
    assert data["email"] == "alice.smith@example.com"
    assert data["created_at"].endswith("Z")
    assert len(data["created_at"]) == len("2026-11-25T04:15:00.123Z")
    assert isinstance(data["id"], str)
    assert data["id"]


async def test_no_password_or_hash_is_stored_in_clear_or_returned(client):
    resp = await client.post(
        "/auth/register",
        json={"username": random_username(), "email": random_email(), "password": PASSWORD},
    )
    text = await resp.text()
    assert PASSWORD not in text
    assert "$2b$" not in text
    assert "hash" not in text
    doc = await services(client).customers.customers.find_one({})
    assert doc["password_hash"].startswith("$2b$04$")
    assert PASSWORD not in str(doc)


@pytest.mark.parametrize("transform", [str, str.upper, str.swapcase])
async def test_duplicate_username_is_409_case_insensitively(client, transform):
    account = await register(client, username="Bob_the_Builder")
    resp = await client.post(
        "/auth/register",
        json={
            "username": transform(account.username),
            "email": random_email(),
            "password": PASSWORD,
        },
    )
    body = await problem(resp, 409, "username_taken")
    assert body["status"] == 409


@pytest.mark.parametrize("transform", [str, str.upper, str.title])
async def test_duplicate_email_is_409_case_insensitively(client, transform):
    account = await register(client, email="carol@example.com")
    resp = await client.post(
        "/auth/register",
        json={
            "username": random_username(),
            "email": transform(account.email),
            "password": PASSWORD,
        },
    )
    await problem(resp, 409, "email_taken")


async def test_twenty_simultaneous_registrations_of_one_name_store_exactly_one(client):
    name = random_username()

    async def attempt(i: int) -> int:
        resp = await client.post(
            "/auth/register",
            json={
                "username": name.upper() if i % 2 else name,
                "email": f"racer{i}@example.com",
                "password": PASSWORD,
            },
        )
        if resp.status == 409:
            await problem(resp, 409, "username_taken")
        return resp.status

    statuses = await asyncio.gather(*(attempt(i) for i in range(20)))
    assert sorted(statuses) == [201] + [409] * 19
    count = await services(client).customers.customers.count_documents(
        {"username_key": name.lower()}
    )
    assert count == 1


GOOD: dict[str, Any] = {"username": "valid_name", "email": "v@example.com", "password": PASSWORD}


@pytest.mark.parametrize(
    ("changes", "path"),
    [
        ({"username": "ab"}, "username"),
        ({"username": "a" * 33}, "username"),
        ({"username": "has space"}, "username"),
        ({"username": "new\nline"}, "username"),
        ({"username": "trailing\n"}, "username"),
        ({"username": "ünïcode"}, "username"),
        ({"username": "at@sign"}, "username"),
        ({"username": ""}, "username"),
        ({"username": None}, "username"),
        ({"username": 12345}, "username"),
        ({"username": {"$ne": None}}, "username"),
        ({"username": ["alice"]}, "username"),
        ({"email": "not-an-email"}, "email"),
        ({"email": ""}, "email"),
        ({"email": {"$gt": ""}}, "email"),
        ({"email": "x" * 250 + "@example.com"}, "email"),
        ({"password": "short12"}, "password"),
        ({"password": "p" * 129}, "password"),
        ({"password": 12345678}, "password"),
        ({"password": True}, "password"),
        ({"password": "\ud800" * 8}, "password"),  # a lone surrogate is not text
        ({"email": "a\udc00@example.com"}, "email"),
        ({"role": "admin"}, "role"),
        ({"_id": "mine"}, "_id"),
    ],
)
async def test_invalid_registration_is_422_with_the_field_path(client, changes, path):
    resp = await client.post("/auth/register", json={**GOOD, **changes})
    body = await problem(resp, 422, "validation_failed")
    assert path in body["errors"]


@pytest.mark.parametrize("missing", ["username", "email", "password"])
async def test_missing_field_is_422(client, missing):
    data = {k: v for k, v in GOOD.items() if k != missing}
    body = await problem(await client.post("/auth/register", json=data), 422, "validation_failed")
    assert missing in body["errors"]


async def test_malformed_json_is_400_and_a_json_array_is_422(client):
    resp = await client.post(
        "/auth/register", data="{not json", headers={"Content-Type": "application/json"}
    )
    assert resp.status == 400
    await problem(await client.post("/auth/register", json=[GOOD]), 422, "validation_failed")


async def test_lengths_count_code_points(client):
    # 8 four-byte code points is 32 bytes: a valid 8-character password.
    account = await register(client, password="🔑" * 8)
    await account.login()
    # 128 code points (512 bytes of UTF-8) is the maximum and still accepted.
    await register(client, password="🔑" * 128)
    resp = await client.post("/auth/register", json={**GOOD, "password": "🔑" * 129})
    await problem(resp, 422, "validation_failed")
    resp = await client.post("/auth/register", json={**GOOD, "password": "🔑" * 7})
    await problem(resp, 422, "validation_failed")


async def test_every_character_of_a_long_password_is_significant(client):
    # bcrypt alone would only read 72 bytes; the pre-hash makes the 128th character count.
    password = "x" * 127 + "a"
    account = await register(client, password=password)
    resp = await client.post(
        "/auth/login", json={"username": account.username, "password": "x" * 127 + "b"}
    )
    await problem(resp, 401, "invalid_credentials")
    await account.login()
