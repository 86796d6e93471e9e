"""The chat WebSocket route: the one route that takes the token as ``?jwt=`` (its own jwt
instance), proxied frame by frame; handshakes with ``?jwt=`` count per client IP, with the
header per token (api.md "rate limit", shared/kong.md §6)."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from tests.gateway.conftest import pin_clock
from tests.gateway.test_rate_limiting import NOW


async def test_token_in_query_or_header_reaches_the_socket(
    gateway: TestClient[Any, Any], make_token: Any
) -> None:
    for kwargs in (
        {"params": {"jwt": make_token()}},
        {"headers": {"Authorization": f"Bearer {make_token()}"}},
    ):
        async with gateway.ws_connect("/chat/ws", **kwargs) as ws:
            await ws.send_str("ping")
            assert (await ws.receive()).data == "echo:ping"


async def test_the_handshake_needs_a_valid_token(
    gateway: TestClient[Any, Any], make_token: Any
) -> None:
    for kwargs in ({}, {"params": {"jwt": "nope"}}, {"params": {"jwt": make_token(ttl=-5)}}):
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await gateway.ws_connect("/chat/ws", **kwargs)
        assert refused.value.status == 401


async def test_rest_chat_routes_ignore_a_query_token(
    gateway: TestClient[Any, Any], make_token: Any
) -> None:
    response = await gateway.get("/chat/rooms", params={"jwt": make_token()})
    assert response.status == 401
    assert await response.json() == {"message": "Unauthorized"}


async def test_query_token_handshakes_count_per_client_ip(
    gateway: TestClient[Any, Any], make_token: Any
) -> None:
    pin_clock(gateway, NOW)
    first = await gateway.get("/chat/ws", params={"jwt": make_token(sub="c1")})
    # (a plain GET, refused by the upstream with 400, is counted like a handshake)
    assert first.headers["X-RateLimit-Remaining-Minute"] == "99"
    async with gateway.ws_connect("/chat/ws", params={"jwt": make_token(sub="c2")}):
        pass
    # another customer's token, same client IP: the same budget
    third = await gateway.get("/chat/ws", params={"jwt": make_token(sub="c3")})
    assert third.headers["X-RateLimit-Remaining-Minute"] == "97"
    # with the header, a handshake counts against its token's own budget
    header = {"Authorization": f"Bearer {make_token(sub='c4')}"}
    own = await gateway.get("/chat/ws", headers=header)
    assert own.headers["X-RateLimit-Remaining-Minute"] == "99"
