"""The jwt plugin as Kong 3.9.1 runs it: K:kong/plugins/jwt/handler.lua and jwt_parser.lua.

Every failure is 401 with ``Content-Type: application/json; charset=utf-8``, a body from
``kong.response.exit`` (so no request_id) and, since 3.8, ``WWW-Authenticate``: ``Bearer`` when
no token was found, ``Bearer error="invalid_token"`` otherwise (shared/kong.md §2).
"""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import jwt as pyjwt
import pytest
from aiohttp.test_utils import TestClient, TestServer

from svc_core.testing import KeyPair, mint_token
from svc_gateway.config import load
from svc_gateway.gateway import Gateway
from svc_gateway.plugins.pre_function import canonical_token
from tests.gateway.conftest import SERVICES, TEMPLATE, recorded

INVALID = 'Bearer error="invalid_token"'


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"sig") -> str:
    return ".".join(
        [b64(json.dumps(header).encode()), b64(json.dumps(claims).encode()), b64(signature)]
    )


async def expect_401(
    gateway: TestClient[Any, Any], body: dict[str, str], www: str = INVALID, **kwargs: Any
) -> None:
    response = await gateway.get("/orders", **kwargs)
    assert response.status == 401
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    assert response.headers["WWW-Authenticate"] == www
    assert json.loads(await response.read()) == body


async def test_missing_token_is_unauthorized_with_bearer_challenge(
    gateway: TestClient[Any, Any], upstream: TestServer
) -> None:
    """handler.lua do_authentication: no token -> 401 {"message":"Unauthorized"},
    WWW-Authenticate: Bearer (3.8+); the upstream is never reached."""
    await expect_401(gateway, {"message": "Unauthorized"}, www="Bearer")
    assert recorded(upstream) == []


async def test_header_without_bearer_scheme_counts_as_no_token(
    gateway: TestClient[Any, Any], make_token: Any
) -> None:
    """handler.lua retrieve_tokens: the header must match ``\\s*[Bb]earer\\s+(.+)``."""
    await expect_401(
        gateway,
        {"message": "Unauthorized"},
        www="Bearer",
        headers={"Authorization": f"Token {make_token()}"},
    )


async def test_rest_routes_ignore_the_jwt_query_parameter(
    gateway: TestClient[Any, Any], make_token: Any
) -> None:
    """kong.yml gives REST routes ``uri_param_names: []``: ``?jwt=`` is not a token there."""
    await expect_401(
        gateway, {"message": "Unauthorized"}, www="Bearer", params={"jwt": make_token()}
    )


async def test_valid_token_reaches_upstream_with_consumer_headers(
    gateway: TestClient[Any, Any], upstream: TestServer, make_token: Any, test_keys: KeyPair
) -> None:
    """handler.lua set_consumer: X-Consumer-ID / X-Consumer-Username / X-Credential-Identifier
    (= the jwt_secret key, here the kid) are set upstream; client-sent copies never pass."""
    token = make_token()
    response = await gateway.get(
        "/orders",
        headers={
            "Authorization": f"Bearer {token}",
            "X-Consumer-ID": "spoofed",
            "X-Consumer-Custom-ID": "spoofed",
            "X-Anonymous-Consumer": "true",
        },
    )
    assert response.status == 200
    seen = recorded(upstream)[-1]["headers"]
    assert seen["X-Consumer-ID"] == "6c1f0a52-2f4e-4b55-9a57-0d3f6f0d5a11"
    assert seen["X-Consumer-Username"] == "customer-tokens"
    assert seen["X-Credential-Identifier"] == test_keys.kid
    assert "X-Consumer-Custom-ID" not in seen
    assert "X-Anonymous-Consumer" not in seen
    assert seen["Authorization"] == f"Bearer {token}"  # Kong does not strip it


async def test_consumer_headers_are_stripped_on_public_routes_too(
    gateway: TestClient[Any, Any], upstream: TestServer
) -> None:
    """Deliberate local hardening: without an auth plugin Kong would pass these through; the
    local gateway never lets a client set them (services must not trust them anyway)."""
    await gateway.post("/auth/login", json={}, headers={"X-Consumer-ID": "spoofed"})
    assert "X-Consumer-ID" not in recorded(upstream)[-1]["headers"]


async def test_expired_token(gateway: TestClient[Any, Any], make_token: Any) -> None:
    """jwt_parser.lua verify_registered_claims: exp <= now -> {"exp":"token expired"}."""
    token = make_token(claims={"iat": int(time.time()) - 100, "exp": int(time.time()) - 1})
    await expect_401(
        gateway, {"exp": "token expired"}, headers={"Authorization": f"Bearer {token}"}
    )


async def test_exp_must_be_a_number(gateway: TestClient[Any, Any], make_token: Any) -> None:
    """jwt_parser.lua: a claim in claims_to_verify that is not a number (or missing) ->
    {"exp":"must be a number"}."""
    for token in (make_token(claims={"exp": "tomorrow"}), make_token(drop=("exp",))):
        await expect_401(
            gateway, {"exp": "must be a number"}, headers={"Authorization": f"Bearer {token}"}
        )


async def test_signature_by_another_key_with_our_kid(
    gateway: TestClient[Any, Any], other_keys: KeyPair, test_keys: KeyPair
) -> None:
    """handler.lua: the credential is found by kid, then the signature fails ->
    {"message":"Invalid signature"}."""
    token = mint_token(other_keys, headers={"kid": test_keys.kid})
    await expect_401(
        gateway, {"message": "Invalid signature"}, headers={"Authorization": f"Bearer {token}"}
    )


async def test_unknown_kid(gateway: TestClient[Any, Any], other_keys: KeyPair) -> None:
    """handler.lua: no jwt_secret with this key -> "No credentials found for given 'kid'"
    (the claim name follows key_claim_name)."""
    token = mint_token(other_keys)
    await expect_401(
        gateway,
        {"message": "No credentials found for given 'kid'"},
        headers={"Authorization": f"Bearer {token}"},
    )


async def test_missing_and_empty_kid(gateway: TestClient[Any, Any], test_keys: KeyPair) -> None:
    """handler.lua: key claim absent from payload and header -> "No mandatory 'kid' in
    claims"; present but empty -> "Invalid 'kid' in claims"."""
    exp = int(time.time()) + 600
    no_kid = pyjwt.encode({"sub": "c", "exp": exp}, test_keys.private_key, algorithm="RS256")
    await expect_401(
        gateway,
        {"message": "No mandatory 'kid' in claims"},
        headers={"Authorization": f"Bearer {no_kid}"},
    )
    empty = pyjwt.encode(
        {"sub": "c", "exp": exp}, test_keys.private_key, algorithm="RS256", headers={"kid": ""}
    )
    await expect_401(
        gateway,
        {"message": "Invalid 'kid' in claims"},
        headers={"Authorization": f"Bearer {empty}"},
    )


async def test_kid_in_payload_takes_precedence(
    gateway: TestClient[Any, Any], test_keys: KeyPair
) -> None:
    """handler.lua: ``claims[key_claim_name] or header[key_claim_name]``: payload first."""
    token = mint_token(test_keys, claims={"kid": "not-a-known-kid"})
    await expect_401(
        gateway,
        {"message": "No credentials found for given 'kid'"},
        headers={"Authorization": f"Bearer {token}"},
    )


async def test_algorithm_must_equal_the_credentials(
    gateway: TestClient[Any, Any], test_keys: KeyPair
) -> None:
    """handler.lua: token alg != jwt_secret.algorithm (RS256) -> "Invalid algorithm" (an HS256
    token signed with the public key as secret never gets near verification)."""
    token = forge({"alg": "HS256", "typ": "JWT", "kid": test_keys.kid}, {"exp": 2**31})
    await expect_401(
        gateway, {"message": "Invalid algorithm"}, headers={"Authorization": f"Bearer {token}"}
    )


@pytest.fixture
async def query_gateway(
    aiohttp_client: Any, render: Any, upstream: TestServer, tmp_path: Path
) -> TestClient[Any, Any]:
    """The WebSocket route's jwt setting (``uri_param_names: [jwt]``) on every route: a token in
    ``?jwt=`` reaches the jwt plugin as sent, since the pre-function screens only the
    Authorization header."""
    template = tmp_path / "ws-template.yml"
    template.write_text(
        TEMPLATE.read_text().replace("uri_param_names: []", "uri_param_names: [jwt]")
    )
    address = f"127.0.0.1:{upstream.port}"
    config = load(render(dict.fromkeys(SERVICES, address), template=template))
    client: TestClient[Any, Any] = await aiohttp_client(Gateway(config).app())
    return client


MALFORMED = [
    ("not-a-jwt", "Bad token; invalid JSON"),
    ("a.b", "Bad token; invalid JSON"),
    (f"{b64(b'{not json')}.{b64(b'{}')}.{b64(b'x')}", "Bad token; invalid JSON"),
    (forge({"alg": "none", "kid": "x"}, {"exp": 2**31}), "Bad token; invalid alg"),
    (forge({"kid": "x"}, {"exp": 2**31}), "Bad token; invalid alg"),
    (forge({"alg": "RS256", "kid": "x"}, {"exp": 2**31}) + ".x", "Bad token; invalid signature"),
]


@pytest.mark.parametrize(("token", "message"), MALFORMED)
async def test_malformed_tokens(
    query_gateway: TestClient[Any, Any], token: str, message: str
) -> None:
    """jwt_parser.lua decode_token: tokenize(token, ".", 3) (the third part is the rest of the
    token), 2 base64url JSON segments, a supported ``alg``, then a signature that decodes."""
    await expect_401(query_gateway, {"message": message}, params={"jwt": token})


@pytest.mark.parametrize(("token", "message"), MALFORMED)
async def test_malformed_tokens_in_the_header(
    gateway: TestClient[Any, Any], token: str, message: str
) -> None:
    """In Authorization, a token that is not three canonical segments never reaches jwt (the
    pre-function drops the header: no token); one that is gets jwt's own answer."""
    headers = {"Authorization": f"Bearer {token}"}
    if canonical_token(token):
        await expect_401(gateway, {"message": message}, headers=headers)
    else:
        await expect_401(gateway, {"message": "Unauthorized"}, www="Bearer", headers=headers)


async def test_kongs_decoder_accepts_other_spellings_of_the_signature(
    query_gateway: TestClient[Any, Any], make_token: Any
) -> None:
    """nginx's base64url decoder (jwt_parser.lua base64_decode) stops at the first ``=`` and
    ignores unused trailing bits, so Kong's jwt verifies ``T==`` and ``T=.anything`` as T.
    Why kong.yml's pre-function admits only the canonical spelling in Authorization."""
    token = make_token()
    for spelling in (token, f"{token}==", f"{token}=.anything", f"{token}=x"):
        response = await query_gateway.get("/orders", params={"jwt": spelling})
        assert response.status == 200, spelling


async def test_multiple_distinct_tokens(
    query_gateway: TestClient[Any, Any], make_token: Any
) -> None:
    """handler.lua (3.2+): tokens from every uri param, cookie and header are deduplicated;
    more than one distinct token -> "Multiple tokens provided". Shown with the WebSocket
    route's setting (``uri_param_names: [jwt]``), the only route kind that reads the query."""
    client = query_gateway
    first, second = make_token(), make_token()
    response = await client.get(
        "/orders", params={"jwt": first}, headers={"Authorization": f"Bearer {second}"}
    )
    assert response.status == 401
    assert response.headers["WWW-Authenticate"] == INVALID
    assert json.loads(await response.read()) == {"message": "Multiple tokens provided"}
    same = await client.get(
        "/orders", params={"jwt": first}, headers={"Authorization": f"Bearer {first}"}
    )
    assert same.status == 200  # the same token twice is one token
    query_only = await client.get("/orders", params={"jwt": first})
    assert query_only.status == 200


async def test_every_key_in_the_bundle_is_a_credential(
    make_gateway: Any, render: Any, other_keys: KeyPair, test_keys: KeyPair
) -> None:
    """Key rotation: one jwt_secret per public key (key = kid), so tokens signed by either
    live key pass (shared/kong.md §7.3)."""
    client = await make_gateway(JWT_PUBLIC_KEYS=test_keys.public_pem + other_keys.public_pem)
    for keys in (test_keys, other_keys):
        token = mint_token(keys)
        response = await client.get("/orders", headers={"Authorization": f"Bearer {token}"})
        assert response.status == 200


async def test_a_verified_token_is_still_refused_once_expired(
    gateway: TestClient[Any, Any], make_token: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The gateway remembers verified signatures, never verified claims: exp is checked on
    every request (jwt_parser.lua verify_registered_claims runs per request in Kong)."""
    import types

    from svc_gateway.plugins import jwt as jwt_plugin

    token = make_token(ttl=60)
    headers = {"Authorization": f"Bearer {token}"}
    assert (await gateway.get("/orders", headers=headers)).status == 200
    later = time.time() + 120
    monkeypatch.setattr(jwt_plugin, "time", types.SimpleNamespace(time=lambda: later))
    response = await gateway.get("/orders", headers=headers)
    assert response.status == 401
    assert json.loads(await response.read()) == {"exp": "token expired"}
