"""Access-token verification and session revocation in the chassis."""

from __future__ import annotations

import asyncio
import base64
import json
import time

import jwt
import pytest
from aiohttp import web

from svc_core import keys
from svc_core.auth import KeySet, key_id, public_jwk, revoke_session
from svc_core.testing import mint_token
from tests.svc_core.toy import ToySettings, create_toy_app


@pytest.fixture
async def app(make_settings):
    return create_toy_app(make_settings(ToySettings))


@pytest.fixture
async def client(aiohttp_client, app):
    return await aiohttp_client(app)


async def rejected(resp, code: str = "unauthorized") -> dict:
    assert resp.status == 401, await resp.text()
    assert resp.content_type == "application/problem+json"
    body = await resp.json(content_type=None)
    assert body["code"] == code
    return body


def b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


async def test_valid_token_reaches_the_handler(client, make_token):
    token = make_token(sub="cust-7", sid="s-7")
    resp = await client.get("/whoami", headers={"Authorization": f"Bearer {token}"})
    assert resp.status == 200
    assert await resp.json() == {"sub": "cust-7", "sid": "s-7"}


@pytest.mark.parametrize(
    "header",
    [None, "", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Token abc", "Bearer not.a.jwt"],
)
async def test_missing_or_malformed_header(client, header):
    headers = {} if header is None else {"Authorization": header}
    await rejected(await client.get("/whoami", headers=headers))


async def test_token_in_query_string_is_refused_on_rest_routes(client, make_token):
    await rejected(await client.get("/whoami", params={"jwt": make_token()}))


async def test_forged_signature(client, make_token):
    header, payload, signature = make_token(sub="alice").split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["sub"] = "mallory"
    forged = f"{header}.{b64(claims)}.{signature}"
    await rejected(await client.get("/whoami", headers={"Authorization": f"Bearer {forged}"}))


async def test_expired_token(client, make_token):
    token = make_token(claims={"iat": int(time.time()) - 120, "exp": int(time.time()) - 60})
    body = await rejected(await client.get("/whoami", headers={"Authorization": f"Bearer {token}"}))
    assert "expired" in body["detail"]


async def test_alg_none(client, test_keys):
    claims = {
        "iss": "svc-test-issuer",
        "sub": "x",
        "sid": "s",
        "jti": "j",
        "iat": int(time.time()),
        "exp": int(time.time()) + 60,
    }
    token = f"{b64({'alg': 'none', 'typ': 'JWT', 'kid': test_keys.kid})}.{b64(claims)}."
    await rejected(await client.get("/whoami", headers={"Authorization": f"Bearer {token}"}))


async def test_hs256_signed_with_the_public_key(client, test_keys):
    """The classic key-confusion attack: HMAC keyed with the (public) RSA key's PEM."""
    now = int(time.time())
    claims = {"iss": "svc-test-issuer", "sub": "x", "sid": "s", "jti": "j"}
    claims |= {"iat": now, "exp": now + 60}
    header = b64({"alg": "HS256", "typ": "JWT", "kid": test_keys.kid})
    signing_input = f"{header}.{b64(claims)}".encode()
    import hashlib
    import hmac

    sig = hmac.new(test_keys.public_pem.encode(), signing_input, hashlib.sha256).digest()
    token = signing_input.decode() + "." + base64.urlsafe_b64encode(sig).rstrip(b"=").decode()
    await rejected(await client.get("/whoami", headers={"Authorization": f"Bearer {token}"}))


async def test_token_from_an_untrusted_key(client, other_keys):
    token = mint_token(other_keys, sub="x")
    await rejected(await client.get("/whoami", headers={"Authorization": f"Bearer {token}"}))


async def test_untrusted_key_claiming_a_trusted_kid(client, other_keys, test_keys):
    token = mint_token(other_keys, headers={"kid": test_keys.kid})
    await rejected(await client.get("/whoami", headers={"Authorization": f"Bearer {token}"}))


async def test_wrong_issuer(client, make_token):
    token = make_token(issuer="someone-else")
    await rejected(await client.get("/whoami", headers={"Authorization": f"Bearer {token}"}))


@pytest.mark.parametrize("claim", ["sid", "sub", "exp", "jti", "iat", "iss"])
async def test_required_claims(client, make_token, claim):
    token = make_token(drop=(claim,))
    await rejected(await client.get("/whoami", headers={"Authorization": f"Bearer {token}"}))


async def test_public_route_needs_no_token(client):
    resp = await client.get("/public/hello")
    assert resp.status == 200


async def test_chassis_endpoints_are_public(client):
    for path in ("/health", "/ready", "/metrics", "/openapi.json"):
        assert (await client.get(path)).status == 200, path


async def test_revoked_session_is_refused_everywhere_quickly(client, app, make_token):
    token = make_token(sid="sess-1")
    headers = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/whoami", headers=headers)).status == 200  # now cached as verified
    revocations = app[keys.REDIS]
    await revoke_session(revocations, "sess-1", until=time.time() + 900)
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        resp = await client.get("/whoami", headers=headers)
        if resp.status == 401:
            break
        await asyncio.sleep(0.01)
    await rejected(resp, "session_revoked")
    # other sessions are untouched
    other = make_token(sid="sess-2")
    resp = await client.get("/whoami", headers={"Authorization": f"Bearer {other}"})
    assert resp.status == 200


async def test_revocation_known_before_start_is_loaded(
    aiohttp_client, make_settings, redis_url, make_token
):
    from svc_core.keys import REVOCATIONS
    from svc_core.redis import open_redis

    redis = open_redis(redis_url)
    await revoke_session(redis, "old-session", until=time.time() + 900)
    await redis.aclose()
    app = create_toy_app(make_settings(ToySettings))
    client = await aiohttp_client(app)
    deadline = time.monotonic() + 2
    while not app[REVOCATIONS].synced and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert app[REVOCATIONS].synced  # answered from the local mirror, not a Redis round trip
    token = make_token(sid="old-session")
    resp = await client.get("/whoami", headers={"Authorization": f"Bearer {token}"})
    await rejected(resp, "session_revoked")


async def test_revocation_without_feed_asks_redis(app, client, make_token):
    """While the pub/sub mirror is down, each check asks Redis (bounded staleness)."""
    from svc_core.keys import REVOCATIONS

    revocations = app[REVOCATIONS]
    await revocations.stop()
    assert not revocations.synced
    token = make_token(sid="sess-x")
    headers = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/whoami", headers=headers)).status == 200
    await revoke_session(app[keys.REDIS], "sess-x", until=time.time() + 900)
    await rejected(await client.get("/whoami", headers=headers), "session_revoked")


async def test_expired_revocation_no_longer_counts(app, client, make_token):
    token = make_token(sid="sess-y")
    await revoke_session(app[keys.REDIS], "sess-y", until=time.time() - 1)
    await asyncio.sleep(0.05)
    resp = await client.get("/whoami", headers={"Authorization": f"Bearer {token}"})
    assert resp.status == 200


async def test_cached_token_is_not_trusted_past_exp(app, client, make_token, monkeypatch):
    token = make_token(ttl=30)
    headers = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/whoami", headers=headers)).status == 200
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 31)
    body = await rejected(await client.get("/whoami", headers=headers))
    assert "expired" in body["detail"]


def test_kid_is_the_rfc7638_thumbprint():
    # RFC 7638 §3.1 example key and thumbprint
    n = (
        "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_B"
        "JECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FD"
        "W2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4v"
        "MQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
    )
    from svc_core.auth import jwk_to_public_key

    key = jwk_to_public_key({"kty": "RSA", "n": n, "e": "AQAB"})
    assert key_id(key) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    assert public_jwk(key)["kid"] == key_id(key)


async def test_jwks_url_is_fetched_for_an_unknown_kid(aiohttp_server, test_keys, other_keys):
    calls = []

    async def jwks(request: web.Request) -> web.Response:
        calls.append(1)
        return web.json_response({"keys": [public_jwk(other_keys.private_key.public_key())]})

    server_app = web.Application()
    server_app.router.add_get("/auth/jwks.json", jwks)
    server = await aiohttp_server(server_app)
    import aiohttp

    from svc_core.auth import TokenVerifier

    async with aiohttp.ClientSession() as session:
        keyset = KeySet(jwks_url=str(server.make_url("/auth/jwks.json")), session=session)
        verifier = TokenVerifier(keyset, issuer="svc-test-issuer")
        claims = await verifier.verify(mint_token(other_keys, sub="from-jwks"))
        assert claims.sub == "from-jwks"
        assert calls == [1]
        # an unknown kid again does not hammer the JWKS endpoint
        with pytest.raises(Exception, match="unknown key"):
            await verifier.verify(mint_token(test_keys))
        assert calls == [1]


def test_issued_test_tokens_decode_with_pyjwt(test_keys):
    token = mint_token(test_keys, sub="a")
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "RS256"
    assert header["kid"] == test_keys.kid


async def test_own_revocation_applies_at_once(app, client, make_token):
    from svc_core.keys import REVOCATIONS

    token = make_token(sid="mine")
    headers = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/whoami", headers=headers)).status == 200
    await revoke_session(app[keys.REDIS], "mine", until=time.time() + 900, local=app[REVOCATIONS])
    # no waiting for the pub/sub echo: the very next request is refused
    await rejected(await client.get("/whoami", headers=headers), "session_revoked")


async def test_a_non_ascii_token_is_401_not_500(client):
    resp = await client.get("/whoami", headers={"Authorization": "Bearer café.ñ.ü"})
    await rejected(resp)
