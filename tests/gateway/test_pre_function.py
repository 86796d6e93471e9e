"""The global pre-function that leaves one spelling of Authorization per token.

Kong sources: K:kong/plugins/pre-function/_handler.lua (the configured Lua runs in the access
phase, priority 1000000, before jwt 1450 and rate-limiting 910), K:kong/plugins/jwt/handler.lua
(``\\s*[Bb]earer\\s+(.+)``, unanchored), K:kong/plugins/rate-limiting/handler.lua
(``limit_by: header`` keys on ``kong.request.get_header(conf.header_name)``: the raw text),
K:kong/pdk/service/request.lua (``set_header`` / ``clear_header`` edit the request through
``ngx.req.set_header`` / ``clear_header``) and K:kong/pdk/request.lua (``get_header`` reads
``ngx.var.http_*``, which sees those edits: openresty/lua-nginx-module t/028-req-header.t).
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp.test_utils import TestClient, TestServer

from svc_gateway.checks import config_problems
from svc_gateway.config import ConfigError, parse
from svc_gateway.gateway import Gateway
from svc_gateway.plugins.pre_function import SNIPPET, canonical_authorization
from tests.gateway.conftest import SERVICES, pin_clock, recorded

NOW = (int(time.time()) // 60) * 60 + 30


def spellings(token: str) -> list[str]:
    """The spellings that ARE the token: the scheme in any case; whitespace around the whole
    value is not part of it (HTTP parsers strip it, nginx and aiohttp alike)."""
    return [
        f"Bearer {token}",
        f"bearer {token}",
        f"BEARER {token}",
        f"bEaReR {token}",
        f"Bearer {token} \t",
        f" Bearer {token}",
    ]


ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def respelled_signatures(token: str) -> list[str]:
    """The same token with its last character respelled: the same decoded bytes (only the
    unused trailing bits differ), which a lenient decoder such as Kong's accepts."""
    head, _, signature = token.rpartition(".")
    unused = {2: 4, 3: 2}[len(signature) % 4]
    base = ALPHABET.index(signature[-1]) & ~((1 << unused) - 1)
    variants = [signature[:-1] + ALPHABET[base + bits] for bits in range(1, 1 << unused)]
    for variant in variants:
        padded = "=" * (-len(signature) % 4)
        assert base64.urlsafe_b64decode(variant + padded) == base64.urlsafe_b64decode(
            signature + padded
        )
    return [f"{head}.{variant}" for variant in variants]


def other_spellings(token: str) -> list[str]:
    """Spellings of the same token that are NOT the token (api.md "auth")."""
    return [
        f"Bearer {token}==",
        f"Bearer {token}=",
        f"Bearer {token}=.x",
        f"Bearer {token}.",
        f"Bearer {token}.x",
        f"Bearer {token}.{token}",
        f"Bearer\t{token}",
        f"Bearer  {token}",
        f"Bearer \t {token}",
        f"x Bearer {token}",
        f"Bearer {token} {token}",
        *(f"Bearer {t}" for t in respelled_signatures(token)),
    ]


async def test_every_spelling_of_one_token_shares_one_budget(
    gateway: TestClient[Any, Any], upstream: TestServer, make_token: Any
) -> None:
    """100 requests spread over the accepted spellings of the same token spend one budget: the
    101st, in any spelling, is 429. The services receive the canonical header only."""
    pin_clock(gateway, NOW)
    token = make_token()
    variants = spellings(token)
    for i in range(100):
        response = await gateway.get(
            "/orders", headers={"Authorization": variants[i % len(variants)]}
        )
        assert response.status == 200, await response.text()
        assert response.headers["X-RateLimit-Remaining-Minute"] == str(99 - i)
    for variant in variants:
        refused = await gateway.get("/orders", headers={"Authorization": variant})
        assert refused.status == 429
        assert json.loads(await refused.read())["message"] == "API rate limit exceeded"
    assert {r["headers"]["Authorization"] for r in recorded(upstream)} == {f"Bearer {token}"}


async def test_one_token_many_budgets_is_closed(
    gateway: TestClient[Any, Any], upstream: TestServer, make_token: Any
) -> None:
    """Issue 11, finding 2: once a token's 100 requests are spent, no other spelling of it
    (padding, extra segments, a respelled last character, a tab or two spaces) gets a 2xx or
    a fresh budget; each is refused with jwt's 401, before rate-limiting counts anything."""
    pin_clock(gateway, NOW)
    token = make_token()
    for _ in range(100):
        assert (await gateway.get("/orders", headers={"Authorization": f"Bearer {token}"})).ok
    for variant in other_spellings(token):
        response = await gateway.get("/orders", headers={"Authorization": variant})
        assert response.status in (401, 429), (variant, response.status)
        assert response.headers.get("X-RateLimit-Remaining-Minute", "0") == "0", variant
        if response.status == 401:
            assert json.loads(await response.read()) == {"message": "Unauthorized"}
            assert response.headers["WWW-Authenticate"] == "Bearer"
    again = await gateway.get("/orders", headers={"Authorization": f"Bearer {token}"})
    assert again.status == 429
    assert len(recorded(upstream)) == 100


async def test_other_spellings_never_reach_a_service(
    gateway: TestClient[Any, Any], upstream: TestServer, make_token: Any
) -> None:
    """With a fresh budget too: every other spelling is 401 at the gateway (a tab used to pass
    the gateway while the service refused it)."""
    pin_clock(gateway, NOW)
    token = make_token()
    for variant in other_spellings(token):
        response = await gateway.get("/orders", headers={"Authorization": variant})
        assert response.status == 401, variant
    assert recorded(upstream) == []
    fine = await gateway.get("/orders", headers={"Authorization": f"Bearer {token}"})
    assert fine.headers["X-RateLimit-Remaining-Minute"] == "99"


async def test_a_second_token_keeps_its_own_budget(
    gateway: TestClient[Any, Any], make_token: Any
) -> None:
    """Canonicalising never merges two tokens: each keeps its own bucket."""
    pin_clock(gateway, NOW)
    first, second = make_token(sub="alice"), make_token(sub="bob")
    for _ in range(3):
        assert (await gateway.get("/orders", headers={"Authorization": f"bearer {first}"})).ok
    other = await gateway.get("/orders", headers={"Authorization": f"BEARER {second}"})
    assert other.headers["X-RateLimit-Remaining-Minute"] == "99"


@pytest.mark.parametrize(
    "value",
    ["x Bearer {t}", "Token {t}", "Bearer {t} {t}", "Bearer", "Basic dXNlcjpwYXNz", "Bearer {t}=="],
)
async def test_anything_but_one_bearer_token_is_dropped(
    gateway: TestClient[Any, Any], make_token: Any, value: str
) -> None:
    """The header is cleared, so jwt finds no token: 401 ``Unauthorized`` with
    ``WWW-Authenticate: Bearer`` (3.8+). Without the snippet, Kong's unanchored jwt regex
    would accept ``x Bearer T`` and rate-limiting would count it under its own key."""
    response = await gateway.get("/orders", headers={"Authorization": value.format(t=make_token())})
    assert response.status == 401
    assert json.loads(await response.read()) == {"message": "Unauthorized"}
    assert response.headers["WWW-Authenticate"] == "Bearer"


async def test_public_routes_never_see_a_malformed_authorization(
    gateway: TestClient[Any, Any], upstream: TestServer
) -> None:
    """The plugin is global: on a public route a non-bearer value is dropped (the service
    has no use for it) and the request goes through."""
    response = await gateway.post("/auth/login", json={}, headers={"Authorization": "Basic x"})
    assert response.status == 200
    assert "Authorization" not in recorded(upstream)[-1]["headers"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Bearer QQ.QUI.QUJD", "Bearer QQ.QUI.QUJD"),  # unpadded lengths 2, 3 and 4
        ("bearer QQ.QUI.QUJD", "Bearer QQ.QUI.QUJD"),
        ("Bearer QR.QUI.QUJD", None),  # "R" leaves a non-zero unused bit
        ("Bearer QQ.QUJ.QUJD", None),
        ("Bearer Q.QUI.QUJD", None),  # 1 (mod 4) is no base64 length
        ("Bearer QQ==.QUI.QUJD", None),
        ("Bearer QQ.QUI", None),
        ("Bearer QQ.QUI.QUJD.", None),
        ("Bearer ..", None),
        ("Bearer a+b.QUI.QUJD", None),  # base64, not base64url
        ("Bearer\tQQ.QUI.QUJD", None),
        ("Bearer  QQ.QUI.QUJD", None),
        ("Bearer\xa0QQ.QUI.QUJD", None),
        ("BearerQQ.QUI.QUJD", None),
        ("", None),
    ],
)
def test_canonical_form(value: str, expected: str | None) -> None:
    """``^[Bb][Ee][Aa][Rr][Ee][Rr] (seg.seg.seg)$`` and each segment canonical."""
    assert canonical_authorization(value) == expected


@pytest.fixture
def doc(render: Callable[..., Path]) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(render(dict.fromkeys(SERVICES, "h:1")).read_text())
    return loaded


def pre_function(doc: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = next(p for p in doc["plugins"] if p["name"] == "pre-function")
    return found


def test_the_template_ships_exactly_the_known_snippet(doc: dict[str, Any]) -> None:
    assert pre_function(doc)["config"] == {"access": [SNIPPET]}


@pytest.mark.parametrize(
    "mutate",
    [
        lambda c: c.update(access=[SNIPPET.replace("401", "403")]),
        lambda c: c.update(access=[SNIPPET, "ngx.exit(200)"]),
        lambda c: c.update(access=['kong.log.err("hi")']),
        lambda c: c.update(log=[SNIPPET]),
        lambda c: c.update(access=[]),
        lambda c: c.update(ws_handshake=["return"]),
    ],
    ids=["edited", "extra chunk", "other lua", "other phase", "empty", "unknown phase"],
)
def test_any_other_lua_is_a_startup_error(
    doc: dict[str, Any], mutate: Callable[[dict[str, Any]], None]
) -> None:
    """The local gateway runs no Lua: it neither executes nor ignores what it does not know."""
    mutate(pre_function(doc)["config"])
    with pytest.raises(ConfigError, match="pre-function"):
        Gateway(parse(doc))


def test_project_checks_want_it_global_and_never_overridden(doc: dict[str, Any]) -> None:
    assert config_problems(parse(doc)) == []
    overridden = yaml.safe_load(yaml.safe_dump(doc))
    overridden["services"][2]["plugins"].append(pre_function(overridden))
    found = config_problems(parse(overridden))
    assert any("pre-function is overridden" in problem for problem in found), found
    doc["plugins"].remove(pre_function(doc))
    found = config_problems(parse(doc))
    assert any("no global pre-function" in problem for problem in found), found
