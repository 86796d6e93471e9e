"""cors (K:kong/plugins/cors/handler.lua, 3.9.1) and correlation-id
(K:kong/plugins/correlation-id/handler.lua) as kong.yml configures them."""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from tests.gateway.conftest import recorded

ORIGIN = "http://localhost:3000"
# api.md Conventions, "CORS" row, in its order.
EXPOSED = (
    "X-Request-ID,RateLimit-Limit,RateLimit-Remaining,RateLimit-Reset,Retry-After,ETag,"
    "Content-Disposition,Content-Range,Idempotent-Replayed,Location,Tus-Resumable,Tus-Version,"
    "Tus-Extension,Tus-Max-Size,Upload-Offset,Upload-Length,Upload-Expires"
)
METHODS = "GET,HEAD,POST,PUT,PATCH,DELETE,OPTIONS"
ALLOWED = (
    "Authorization,Content-Type,Idempotency-Key,X-Request-ID,If-None-Match,Range,"
    "Tus-Resumable,Upload-Length,Upload-Offset,Upload-Metadata"
)


async def test_preflight_is_answered_by_the_gateway(
    gateway: TestClient[Any, Any], upstream: TestServer
) -> None:
    """handler.lua access: OPTIONS + Origin + Access-Control-Request-Method -> 200, empty body,
    the configured headers/methods joined with "," and Max-Age; Vary: Origin since the origin
    list is not "*"; no credentials header (credentials: false). No token needed (cors 2000
    runs before jwt 1450); the upstream is never called."""
    response = await gateway.options(
        "/orders",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )
    assert response.status == 200
    assert await response.read() == b""
    h = response.headers
    assert h["Access-Control-Allow-Origin"] == ORIGIN
    assert h["Access-Control-Allow-Methods"] == METHODS
    assert h["Access-Control-Allow-Headers"] == ALLOWED
    assert h["Access-Control-Max-Age"] == "3600"
    assert h["Vary"] == "Origin"
    assert "Access-Control-Allow-Credentials" not in h
    assert "Access-Control-Expose-Headers" not in h  # preflight: header_filter skipped
    assert recorded(upstream) == []


async def test_single_literal_origin_is_sent_as_is(gateway: TestClient[Any, Any]) -> None:
    """handler.lua configure_origin: one non-regex origin is returned without checking the
    request's Origin (the browser enforces the mismatch)."""
    response = await gateway.options(
        "/orders",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
    )
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN


async def test_several_origins_echo_the_matching_one(make_gateway: Any) -> None:
    """handler.lua configure_origin: with several origins, the normalized request Origin is
    echoed when listed (default port dropped), else no Allow-Origin at all."""
    client = await make_gateway(GATEWAY_CORS_ORIGINS="https://app.example,http://localhost:3000")
    preflight = {"Access-Control-Request-Method": "GET"}
    ok = await client.options("/orders", headers=preflight | {"Origin": "https://app.example:443"})
    assert ok.headers["Access-Control-Allow-Origin"] == "https://app.example"
    other = await client.options("/orders", headers=preflight | {"Origin": "https://evil.example"})
    assert other.status == 200
    assert "Access-Control-Allow-Origin" not in other.headers
    assert other.headers["Vary"] == "Origin"


async def test_cors_headers_on_proxied_and_rejected_responses(
    gateway: TestClient[Any, Any], auth_header: Any
) -> None:
    """handler.lua header_filter: Allow-Origin, Vary and Expose-Headers on every response the
    cors access step ran for, the jwt's 401 included."""
    for response in (
        await gateway.get("/orders", headers=auth_header() | {"Origin": ORIGIN}),
        await gateway.get("/orders", headers={"Origin": ORIGIN}),
    ):
        assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
        assert response.headers["Access-Control-Expose-Headers"] == EXPOSED
        assert response.headers["Vary"] == "Origin"


async def test_client_request_id_is_kept_forwarded_and_echoed(
    gateway: TestClient[Any, Any], upstream: TestServer, auth_header: Any
) -> None:
    """correlation-id: a client-sent X-Request-ID is kept as is (when valid: 1-200 visible
    ASCII characters, tests/gateway/test_request_id.py), forwarded upstream and echoed
    (echo_downstream: true)."""
    value = "client-id/!~:" + uuid.uuid4().hex
    response = await gateway.get("/orders", headers=auth_header() | {"X-Request-ID": value})
    assert response.headers["X-Request-ID"] == value
    assert recorded(upstream)[-1]["headers"]["X-Request-ID"] == value


async def test_generated_request_id_is_a_uuid_forwarded_and_echoed(
    gateway: TestClient[Any, Any], upstream: TestServer, auth_header: Any
) -> None:
    """correlation-id generator "uuid": a fresh UUID when the client sent none, the same value
    upstream and downstream; also on the gateway's own 401."""
    response = await gateway.get("/orders", headers=auth_header())
    generated = response.headers["X-Request-ID"]
    assert str(uuid.UUID(generated)) == generated
    assert recorded(upstream)[-1]["headers"]["X-Request-ID"] == generated
    rejected = await gateway.get("/orders")
    assert rejected.status == 401
    assert uuid.UUID(rejected.headers["X-Request-ID"])
    assert rejected.headers["X-Request-ID"] != generated
