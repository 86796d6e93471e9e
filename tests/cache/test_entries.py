"""PUT, GET and DELETE /cache/{key}: every row of api.md's cache table except incr."""

from __future__ import annotations

import asyncio
import io
import json
import re
import time
from typing import Any

import pytest
from yarl import URL

from svc_core.auth import revoke_session
from svc_core.redis import open_redis
from svc_core.testing import mint_token
from tests.cache.conftest import assert_problem

JSON = {"Content-Type": "application/json"}


async def put(client: Any, key: str, headers: dict[str, str], **payload: Any) -> Any:
    return await client.put(f"/cache/{key}", json=payload, headers=headers)


# --- success ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        {"nested": {"list": [1, 2.5, "x", None, True]}},
        [],
        "plain text with ünïcödé and 🙂",
        0,
        -17,
        2**70,
        3.25,
        False,
        "",
    ],
)
async def test_put_then_get_round_trips_any_json_value(client, alice, value):
    resp = await put(client, "k", alice, value=value)
    assert resp.status == 200
    assert await resp.json() == {"key": "k", "value": value, "ttl_seconds": None}

    resp = await client.get("/cache/k", headers=alice)
    assert resp.status == 200
    assert resp.content_type == "application/json"
    assert await resp.json() == {"key": "k", "value": value, "ttl_seconds": None}


async def test_null_value_round_trips_and_differs_from_missing(client, alice):
    resp = await put(client, "nothing", alice, value=None)
    assert resp.status == 200
    assert await resp.json() == {"key": "nothing", "value": None, "ttl_seconds": None}

    resp = await client.get("/cache/nothing", headers=alice)
    assert resp.status == 200
    assert await resp.json() == {"key": "nothing", "value": None, "ttl_seconds": None}

    resp = await client.get("/cache/never-set", headers=alice)
    assert resp.status == 404
    assert_problem(await resp.json(), 404, "not_found")


async def test_put_replaces_value(client, alice):
    await put(client, "k", alice, value="first")
    resp = await put(client, "k", alice, value={"second": 2})
    assert (await resp.json())["value"] == {"second": 2}
    resp = await client.get("/cache/k", headers=alice)
    assert (await resp.json())["value"] == {"second": 2}


@pytest.mark.parametrize("key", ["a", "A-z_0.9:x", "...", "x" * 200, "user:42:profile"])
async def test_every_allowed_key_shape_works(client, alice, key):
    resp = await put(client, key, alice, value=key)
    assert resp.status == 200
    assert (await resp.json())["key"] == key
    resp = await client.get(f"/cache/{key}", headers=alice)
    assert await resp.json() == {"key": key, "value": key, "ttl_seconds": None}


async def test_delete_then_gone(client, alice):
    await put(client, "k", alice, value=1)
    resp = await client.delete("/cache/k", headers=alice)
    assert resp.status == 204
    assert await resp.read() == b""
    assert (await client.get("/cache/k", headers=alice)).status == 404
    resp = await client.delete("/cache/k", headers=alice)
    assert resp.status == 404
    assert_problem(await resp.json(), 404, "not_found")


# --- TTL -------------------------------------------------------------------------------------


async def test_ttl_is_reported_rounded_up(client, alice):
    resp = await put(client, "k", alice, value=1, ttl_seconds=10)
    assert (await resp.json())["ttl_seconds"] == 10
    # A few milliseconds have passed: 9.99x s remain, which rounds up to 10 (not down to 9).
    resp = await client.get("/cache/k", headers=alice)
    assert (await resp.json())["ttl_seconds"] == 10


@pytest.mark.parametrize("ttl", [1, 2_592_000])
async def test_ttl_bounds_are_accepted(client, alice, ttl):
    resp = await put(client, "k", alice, value=1, ttl_seconds=ttl)
    assert resp.status == 200
    assert (await resp.json())["ttl_seconds"] == ttl
    resp = await client.get("/cache/k", headers=alice)
    assert (await resp.json())["ttl_seconds"] == ttl


async def test_entry_expires(client, alice):
    resp = await put(client, "short", alice, value="soon gone", ttl_seconds=1)
    assert resp.status == 200
    deadline = time.monotonic() + 5
    while True:
        resp = await client.get("/cache/short", headers=alice)
        if resp.status == 404:
            break
        assert resp.status == 200
        assert (await resp.json())["ttl_seconds"] == 1
        assert time.monotonic() < deadline, "the entry outlived its TTL"
        await asyncio.sleep(0.05)
    assert_problem(await resp.json(), 404, "not_found")
    assert (await client.delete("/cache/short", headers=alice)).status == 404


@pytest.mark.parametrize("second", [{}, {"ttl_seconds": None}])
async def test_put_without_ttl_removes_an_earlier_ttl(client, alice, second):
    await put(client, "k", alice, value=1, ttl_seconds=100)
    resp = await put(client, "k", alice, value=2, **second)
    assert (await resp.json())["ttl_seconds"] is None
    resp = await client.get("/cache/k", headers=alice)
    assert await resp.json() == {"key": "k", "value": 2, "ttl_seconds": None}


async def test_put_with_ttl_replaces_an_earlier_ttl(client, alice):
    await put(client, "k", alice, value=1, ttl_seconds=2_000_000)
    await put(client, "k", alice, value=1, ttl_seconds=30)
    resp = await client.get("/cache/k", headers=alice)
    assert (await resp.json())["ttl_seconds"] == 30


# --- namespaces ------------------------------------------------------------------------------


async def test_customers_never_see_each_others_entries(client, alice, bob):
    await put(client, "shared-name", alice, value="alice's")
    assert (await client.get("/cache/shared-name", headers=bob)).status == 404
    assert (await client.delete("/cache/shared-name", headers=bob)).status == 404

    await put(client, "shared-name", bob, value="bob's", ttl_seconds=50)
    resp = await client.get("/cache/shared-name", headers=alice)
    assert await resp.json() == {"key": "shared-name", "value": "alice's", "ttl_seconds": None}

    assert (await client.delete("/cache/shared-name", headers=bob)).status == 204
    resp = await client.get("/cache/shared-name", headers=alice)
    assert (await resp.json())["value"] == "alice's"


async def test_colons_cannot_cross_namespaces(client, auth_header):
    # With a naive "cache:<sub>:<key>" both would be "cache:a:b:c".
    sub_a, sub_ab = auth_header(sub="a"), auth_header(sub="a:b")
    await put(client, "b:c", sub_a, value="from a")
    assert (await client.get("/cache/c", headers=sub_ab)).status == 404
    await put(client, "c", sub_ab, value="from a:b")
    resp = await client.get("/cache/b:c", headers=sub_a)
    assert (await resp.json())["value"] == "from a"


async def test_redis_layout_is_prefixed_and_hides_the_customer_id(client, alice, redis_admin_url):
    await put(client, "k", alice, value={"a": 1}, ttl_seconds=60)
    redis = open_redis(redis_admin_url)  # SCAN: the cache's ACL user may not list keys
    try:
        names = [name async for name in redis.scan_iter("*")]
        cache_keys = [name for name in names if name.startswith("cache:")]
        assert len(cache_keys) == 1
        (name,) = cache_keys
        assert "alice" not in name
        prefix, tag, key = name.split(":", 2)
        assert (prefix, key) == ("cache", "k")
        assert re.fullmatch(r"\{[0-9a-f]{32}\}", tag)
        assert await redis.get(name) == '{"a":1}'
        assert 0 < await redis.ttl(name) <= 60
    finally:
        await redis.aclose()


# --- authentication --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/cache/k"),
        ("PUT", "/cache/k"),
        ("DELETE", "/cache/k"),
        ("POST", "/cache/k/incr"),
    ],
)
async def test_every_route_needs_a_token(client, method, path, other_keys):
    resp = await client.request(method, path, json={"value": 1})
    assert resp.status == 401
    assert_problem(await resp.json(), 401, "unauthorized")
    forged = {"Authorization": f"Bearer {mint_token(other_keys, sub='x')}"}
    resp = await client.request(method, path, json={"value": 1}, headers=forged)
    assert resp.status == 401


async def test_revoked_session_is_refused(client, make_token, redis_url):
    headers = {"Authorization": f"Bearer {make_token(sub='c1', sid='s-1')}"}
    assert (await put(client, "k", headers, value=1)).status == 200
    redis = open_redis(redis_url)
    try:
        await revoke_session(redis, "s-1", until=time.time() + 900)
    finally:
        await redis.aclose()
    deadline = time.monotonic() + 5
    while (resp := await client.get("/cache/k", headers=headers)).status != 401:
        assert time.monotonic() < deadline, "the revoked session was still accepted"
        await asyncio.sleep(0.05)
    assert_problem(await resp.json(), 401, "session_revoked")


# --- invalid keys ----------------------------------------------------------------------------

BAD_KEYS = [
    "a%2Fb",
    "%C3%A9",  # "é"
    "has%20space",
    "x" * 201,
    "tab%09",
    "trailing-line-feed%0A",  # "$" lets it by a plain Regexp; the key's Pattern does not
    "nul%00",
    "star*",
]


@pytest.mark.parametrize("raw", BAD_KEYS)
@pytest.mark.parametrize(
    ("method", "suffix", "payload"),
    [("GET", "", None), ("PUT", "", {"value": 1}), ("DELETE", "", None), ("POST", "/incr", None)],
)
async def test_invalid_key_is_422_on_key(client, alice, raw, method, suffix, payload):
    url = URL(f"/cache/{raw}{suffix}", encoded=True)
    resp = await client.request(method, url, json=payload, headers=alice)
    assert resp.status == 422
    body = await resp.json()
    assert_problem(body, 422, "validation_failed")
    assert list(body["errors"]) == ["key"]


@pytest.mark.parametrize("raw", ["%2E", "%2e", "%2E%2E", ".%2E"])
@pytest.mark.parametrize(
    ("method", "suffix", "payload"),
    [("GET", "", None), ("PUT", "", {"value": 1}), ("DELETE", "", None), ("POST", "/incr", None)],
)
async def test_dot_segments_never_reach_a_key(client, alice, raw, method, suffix, payload):
    # Literal "." and ".." are dot segments the URL parser removes; percent-encoded ones are
    # removed by Kong's router (the local gateway does the same), so through the gateway the
    # path names no key and the answer is 404: directly, the service answers the same.
    url = URL(f"/cache/{raw}{suffix}", encoded=True)
    resp = await client.request(method, url, json=payload, headers=alice)
    assert resp.status == 404
    assert_problem(await resp.json(), 404, "not_found")


@pytest.mark.parametrize("raw", [".", ".."])
async def test_literal_dot_segments_leave_a_path_with_no_key(client, alice, raw):
    resp = await client.put(URL(f"/cache/{raw}", encoded=True), json={"value": 1}, headers=alice)
    assert resp.status == 404
    assert_problem(await resp.json(), 404, "not_found")


async def test_slash_in_key_is_another_path(client, alice):
    resp = await client.put("/cache/a/b", json={"value": 1}, headers=alice)
    assert resp.status == 404


async def test_bad_key_and_bad_body_are_reported_together(client, alice):
    resp = await client.put(
        URL("/cache/has%20space", encoded=True), json={"ttl_seconds": 0}, headers=alice
    )
    assert resp.status == 422
    assert set((await resp.json())["errors"]) == {"key", "value", "ttl_seconds"}


# --- invalid bodies --------------------------------------------------------------------------


@pytest.mark.parametrize("ttl", [0, -1, 2_592_001, 1.5, 10.0, "10", True, [], {}])
async def test_bad_ttl_is_422(client, alice, ttl):
    resp = await put(client, "k", alice, value=1, ttl_seconds=ttl)
    assert resp.status == 422
    body = await resp.json()
    assert_problem(body, 422, "validation_failed")
    assert list(body["errors"]) == ["ttl_seconds"]
    assert (await client.get("/cache/k", headers=alice)).status == 404


@pytest.mark.parametrize(
    ("payload", "path"),
    [
        ({}, "value"),
        ({"ttl_seconds": 5}, "value"),
        ({"value": 1, "extra": True}, "extra"),
        ({"value": 1, "key": "other"}, "key"),
        ([1], "_schema"),
        ("value", "_schema"),
    ],
)
async def test_bad_body_is_422(client, alice, payload, path):
    resp = await client.put("/cache/k", json=payload, headers=alice)
    assert resp.status == 422
    assert path in (await resp.json())["errors"]
    assert (await client.get("/cache/k", headers=alice)).status == 404


async def test_empty_body_is_422_missing_value(client, alice):
    resp = await client.put("/cache/k", headers=alice)
    assert resp.status == 422
    assert list((await resp.json())["errors"]) == ["value"]


@pytest.mark.parametrize(
    "raw", [b'{"value": NaN}', b'{"value": [Infinity]}', b'{"value": {"a": -Infinity}}']
)
async def test_non_json_number_literals_are_malformed_json(client, alice, raw):
    resp = await client.put("/cache/k", data=raw, headers={**alice, **JSON})
    assert resp.status == 400
    assert (await resp.json())["code"] == "malformed_json"
    assert (await client.get("/cache/k", headers=alice)).status == 404


@pytest.mark.parametrize(
    "raw",
    [
        b'{"value": 1e400}',
        b'{"value": "\\ud800"}',
        b'{"value": {"\\udfff": 1}}',
    ],
)
async def test_values_json_cannot_carry_are_422(client, alice, raw):
    resp = await client.put("/cache/k", data=raw, headers={**alice, **JSON})
    assert resp.status == 422
    assert list((await resp.json())["errors"]) == ["value"]


async def test_malformed_json_is_400(client, alice):
    resp = await client.put("/cache/k", data=b'{"value": ', headers={**alice, **JSON})
    assert resp.status == 400


async def test_wrong_content_type_is_400(client, alice):
    resp = await client.put(
        "/cache/k", data=b'{"value": 1}', headers={**alice, "Content-Type": "text/plain"}
    )
    assert resp.status == 400


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
async def test_json_beyond_processing_limits_is_422_not_500(client, alice, method):
    """Valid JSON that cannot be processed (nesting past the parser's stack, an integer of
    more than 4300 digits) is refused as a 422, and the stored value is untouched."""
    await put(client, "k", alice, value=1)
    depth = 50_000
    for raw in (
        b'{"value":' + b"[" * depth + b"]" * depth + b"}",
        b'{"value":' + b"9" * 5000 + b"}",
    ):
        resp = await client.request(method, "/cache/k", data=raw, headers={**alice, **JSON})
        assert resp.status == 422
        assert (await resp.json())["code"] == "validation_failed"
    assert (await client.get("/cache/k", headers=alice)).status == 200


# --- size limit ------------------------------------------------------------------------------


def compact_size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


@pytest.mark.parametrize("char", ["x", "é", "🙂"])
async def test_value_of_exactly_65536_bytes_is_accepted(client, alice, char):
    width = len(char.encode())
    value = char * ((65_536 - 2) // width) + "x" * ((65_536 - 2) % width)
    assert compact_size(value) == 65_536
    resp = await put(client, "big", alice, value=value)
    assert resp.status == 200
    resp = await client.get("/cache/big", headers=alice)
    assert (await resp.json())["value"] == value


@pytest.mark.parametrize("char", ["x", "é"])
async def test_value_of_65537_bytes_is_413(client, alice, char):
    width = len(char.encode())
    value = char * ((65_537 - 2) // width) + "x" * ((65_537 - 2) % width)
    assert compact_size(value) == 65_537
    resp = await put(client, "big", alice, value=value)
    assert resp.status == 413
    assert_problem(await resp.json(), 413, "value_too_large")
    assert (await client.get("/cache/big", headers=alice)).status == 404


async def test_size_counts_compact_json_not_the_request_text(client, alice):
    # Spaces in the request body do not count: the stored form is compact.
    value = ["y" * 100] * 600  # 102 + 1 bytes each, compact: 61,801 bytes
    assert compact_size(value) < 65_536
    raw = json.dumps({"value": value}, indent=8).encode()
    assert len(raw) > 65_536
    resp = await client.put("/cache/k", data=raw, headers={**alice, **JSON})
    assert resp.status == 200


async def test_validation_is_checked_before_size(client, alice):
    resp = await put(client, "big", alice, value="x" * 70_000, ttl_seconds=0)
    assert resp.status == 422
    assert list((await resp.json())["errors"]) == ["ttl_seconds"]


async def test_oversized_value_does_not_replace_the_stored_one(client, alice):
    await put(client, "k", alice, value="small", ttl_seconds=100)
    resp = await put(client, "k", alice, value="x" * 70_000)
    assert resp.status == 413
    resp = await client.get("/cache/k", headers=alice)
    body = await resp.json()
    assert body["value"] == "small"
    assert body["ttl_seconds"] is not None


async def test_body_over_the_request_limit_is_413(client, alice):
    raw = json.dumps({"value": "x" * (1024 * 1024 + 1)}).encode()
    resp = await client.put("/cache/k", data=io.BytesIO(raw), headers={**alice, **JSON})
    assert resp.status == 413


# --- query strings and bodies where none belong ----------------------------------------------


async def test_get_rejects_query_parameters_after_the_404(client, alice):
    assert (await client.get("/cache/k?x=1", headers=alice)).status == 404
    await put(client, "k", alice, value=1)
    resp = await client.get("/cache/k?x=1", headers=alice)
    assert resp.status == 422
    assert list((await resp.json())["errors"]) == ["x"]


async def test_put_rejects_query_parameters(client, alice):
    resp = await client.put("/cache/k?ttl_seconds=5", json={"value": 1}, headers=alice)
    assert resp.status == 422
    assert (await client.get("/cache/k", headers=alice)).status == 404


async def test_delete_checks_existence_before_the_body(client, alice):
    resp = await client.delete("/cache/k", json={"force": True}, headers=alice)
    assert resp.status == 404
    await put(client, "k", alice, value=1)
    resp = await client.delete("/cache/k", json={"force": True}, headers=alice)
    assert resp.status == 422
    assert (await client.get("/cache/k", headers=alice)).status == 200
    resp = await client.delete("/cache/k", json={}, headers=alice)
    assert resp.status == 204
