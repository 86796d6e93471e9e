"""POST /cache/{key}/incr: exact 64-bit arithmetic, TTL kept, atomic across instances."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from svc_cache import create_app
from tests.cache.conftest import assert_problem

INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)


async def incr(client: Any, key: str, headers: dict[str, str], **payload: Any) -> Any:
    return await client.post(f"/cache/{key}/incr", json=payload or None, headers=headers)


async def stored(client: Any, key: str, headers: dict[str, str]) -> Any:
    resp = await client.get(f"/cache/{key}", headers=headers)
    assert resp.status == 200
    return await resp.json()


async def test_missing_key_starts_at_zero_and_default_is_one(client, alice):
    resp = await incr(client, "hits", alice)
    assert resp.status == 200
    assert await resp.json() == {"key": "hits", "value": 1, "ttl_seconds": None}
    resp = await client.post("/cache/hits/incr", json={}, headers=alice)
    assert (await resp.json())["value"] == 2
    assert await stored(client, "hits", alice) == {"key": "hits", "value": 2, "ttl_seconds": None}


@pytest.mark.parametrize(("start", "by", "result"), [(10, 5, 15), (10, -25, -15), (7, 0, 7)])
async def test_by_adds_any_integer(client, alice, start, by, result):
    await client.put("/cache/n", json={"value": start}, headers=alice)
    resp = await incr(client, "n", alice, by=by)
    assert resp.status == 200
    assert (await resp.json())["value"] == result
    assert (await stored(client, "n", alice))["value"] == result


async def test_missing_key_with_negative_by(client, alice):
    resp = await incr(client, "n", alice, by=-3)
    assert (await resp.json())["value"] == -3


@pytest.mark.parametrize("by", [INT64_MAX, INT64_MIN])
async def test_extremes_are_exact(client, alice, by):
    # Lua numbers are doubles: a script that did the arithmetic in Lua would round these.
    resp = await incr(client, "n", alice, by=by)
    assert resp.status == 200
    assert (await resp.json())["value"] == by
    assert (await stored(client, "n", alice))["value"] == by


async def test_large_values_stay_exact(client, alice):
    await client.put("/cache/n", json={"value": 2**53 + 1}, headers=alice)
    resp = await incr(client, "n", alice, by=2)
    assert (await resp.json())["value"] == 2**53 + 3


async def test_ttl_is_kept(client, alice):
    await client.put("/cache/n", json={"value": 1, "ttl_seconds": 100}, headers=alice)
    resp = await incr(client, "n", alice, by=4)
    body = await resp.json()
    assert body["value"] == 5
    assert body["ttl_seconds"] in (99, 100)
    assert (await stored(client, "n", alice))["ttl_seconds"] in (99, 100)


@pytest.mark.parametrize(
    "value", [1.0, 1.5, "1", "abc", True, False, None, [1], {"n": 1}, 2**63, -(2**63) - 1]
)
async def test_non_integer_is_409_and_unchanged(client, alice, value):
    await client.put("/cache/v", json={"value": value, "ttl_seconds": 100}, headers=alice)
    resp = await incr(client, "v", alice)
    assert resp.status == 409
    assert_problem(await resp.json(), 409, "not_an_integer")
    after = await stored(client, "v", alice)
    assert after["value"] == value
    assert isinstance(after["value"], type(value))
    assert after["ttl_seconds"] in (99, 100)


@pytest.mark.parametrize(("start", "by"), [(INT64_MAX, 1), (INT64_MIN, -1), (-5, INT64_MIN)])
async def test_overflow_is_409_and_unchanged(client, alice, start, by):
    await client.put("/cache/n", json={"value": start}, headers=alice)
    resp = await incr(client, "n", alice, by=by)
    assert resp.status == 409
    assert_problem(await resp.json(), 409, "not_an_integer")
    assert (await stored(client, "n", alice))["value"] == start


@pytest.mark.parametrize("by", [INT64_MAX + 1, INT64_MIN - 1, 1.0, 2.5, True, "1", None, [1]])
async def test_bad_by_is_422(client, alice, by):
    await client.put("/cache/n", json={"value": 3}, headers=alice)
    resp = await incr(client, "n", alice, by=by)
    assert resp.status == 422
    body = await resp.json()
    assert_problem(body, 422, "validation_failed")
    assert list(body["errors"]) == ["by"]
    assert (await stored(client, "n", alice))["value"] == 3


async def test_unknown_field_is_422(client, alice):
    resp = await incr(client, "n", alice, step=2)
    assert resp.status == 422
    assert list((await resp.json())["errors"]) == ["step"]
    assert (await client.get("/cache/n", headers=alice)).status == 404


async def test_counters_are_per_customer(client, alice, bob):
    await incr(client, "n", alice, by=10)
    resp = await incr(client, "n", bob)
    assert (await resp.json())["value"] == 1
    assert (await stored(client, "n", alice))["value"] == 10


async def test_concurrent_increments_across_two_instances(aiohttp_client, cache_settings, alice):
    first = await aiohttp_client(create_app(cache_settings))
    second = await aiohttp_client(create_app(cache_settings))

    async def bump(i: int) -> int:
        resp = await incr(first if i % 2 else second, "count", alice)
        assert resp.status == 200
        value: int = (await resp.json())["value"]
        return value

    results = await asyncio.gather(*(bump(i) for i in range(100)))
    # Each increment saw a distinct value: none was lost or applied twice.
    assert sorted(results) == list(range(1, 101))
    assert (await stored(first, "count", alice))["value"] == 100
    assert (await stored(second, "count", alice))["value"] == 100
