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


# --- one spelling per token (api.md Conventions "auth") -----------------------------------


def _respell(token: str, segment: int, spelling) -> str:
    parts = token.split(".")
    parts[segment] = spelling(parts[segment])
    return ".".join(parts)


def _flip_trailing_bits(segment: str) -> str | None:
    """The same bytes with non-zero unused bits in the last character, or None when the
    segment's length leaves no unused bits."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    unused = {2: 4, 3: 2}.get(len(segment) % 4)
    if unused is None:
        return None
    value = alphabet.index(segment[-1]) | 1
    return segment[:-1] + alphabet[value]


def test_the_helpers_respell_the_same_bytes(make_token):
    token = make_token()
    for i, segment in enumerate(token.split(".")):
        flipped = _flip_trailing_bits(segment)
        if flipped is not None:
            pad = "=" * (-len(segment) % 4)
            assert flipped != segment
            assert base64.urlsafe_b64decode(flipped + pad) == base64.urlsafe_b64decode(
                segment + pad
            ), i


async def test_the_canonical_token_is_accepted_case_insensitive_scheme(client, make_token):
    token = make_token(sub="c-1")
    for scheme in ("Bearer", "bearer", "BEARER"):
        resp = await client.get("/whoami", headers={"Authorization": f"{scheme} {token}"})
        assert resp.status == 200, scheme


async def test_a_padded_token_is_refused_even_once_the_canonical_one_is_cached(client, make_token):
    token = make_token(claims={"sub": "cust-pad"})
    # Pick a token whose signature segment needs padding (256-byte RS256 signature: 342 chars,
    # 342 % 4 == 2 -> "==").
    assert len(token.split(".")[2]) % 4 == 2
    ok = await client.get("/whoami", headers={"Authorization": f"Bearer {token}"})
    assert ok.status == 200
    for spelling in (
        f"{token}==",
        f"{token}=",
        _respell(token, 0, lambda s: s + "=" * (-len(s) % 4 or 4)),
    ):
        await rejected(await client.get("/whoami", headers={"Authorization": f"Bearer {spelling}"}))


async def test_non_canonical_trailing_bits_are_refused(client, make_token):
    token = make_token()
    signature = token.split(".")[2]
    variant = _respell(token, 2, _flip_trailing_bits)
    assert variant != token
    assert _flip_trailing_bits(signature) is not None
    await rejected(await client.get("/whoami", headers={"Authorization": f"Bearer {variant}"}))
    # the same in the header or payload segment, when their length leaves unused bits
    for i in (0, 1):
        if _flip_trailing_bits(token.split(".")[i]) is not None:
            variant = _respell(token, i, _flip_trailing_bits)
            resp = await client.get("/whoami", headers={"Authorization": f"Bearer {variant}"})
            await rejected(resp)


@pytest.mark.parametrize("suffix", [".", ".x", ".AAAA", "..", ".e30"])
async def test_extra_segments_are_refused(client, make_token, suffix):
    token = make_token()
    assert (await client.get("/whoami", headers={"Authorization": f"Bearer {token}"})).status == 200
    resp = await client.get("/whoami", headers={"Authorization": f"Bearer {token}{suffix}"})
    await rejected(resp)


@pytest.mark.parametrize("separator", ["\t", "  ", " \t", "\t "])
async def test_other_whitespace_after_the_scheme_is_refused(client, make_token, separator):
    token = make_token()
    assert (await client.get("/whoami", headers={"Authorization": f"Bearer {token}"})).status == 200
    resp = await client.get("/whoami", headers={"Authorization": f"Bearer{separator}{token}"})
    await rejected(resp)


def test_bearer_token_accepts_only_the_canonical_spelling(make_token):
    from svc_core.auth import bearer_token

    token = make_token()
    assert bearer_token(f"Bearer {token}") == token
    assert bearer_token(f"bearer {token}") == token
    for header in (
        f"Bearer  {token}",
        f"Bearer\t{token}",
        f" Bearer {token}",
        f"Bearer {token} ",
        f"Bearer {token}==",
        f"Bearer {token}.x",
        f"Bearer {_respell(token, 2, _flip_trailing_bits)}",
        "Bearer a.b",
        "Bearer ..",
        None,
        "",
    ):
        assert bearer_token(header) is None, header


def test_canonical_token_check():
    from svc_core.auth import is_canonical_token

    assert is_canonical_token("eyJh.eyJz.c2ln")
    assert is_canonical_token("QQ.QUI.QUJD")  # unpadded lengths 2, 3, 4
    assert not is_canonical_token("QR.QUI.QUJD")  # 'R' leaves non-zero unused bits
    assert not is_canonical_token("QQ.QUJ.QUJD")  # 'J' leaves non-zero unused bits
    assert not is_canonical_token("QQ==.QUI.QUJD")
    assert not is_canonical_token("Q.QUI.QUJD")  # a length no base64 has
    assert not is_canonical_token("QQ.QUI")
    assert not is_canonical_token("QQ.QUI.QUJD.QQ")
    assert not is_canonical_token("QQ..QUJD")
    assert not is_canonical_token("QQ.Q+I.QUJD")
    assert not is_canonical_token("QQ.Q/I.QUJD")


async def test_a_query_token_must_be_canonical_too(aiohttp_client, make_settings, make_token):
    from svc_core import Auth, RouteTable, Service, current_claims

    routes = RouteTable()

    @routes.get("/stream", query_token=True)
    async def stream(request: web.Request) -> web.Response:
        return web.json_response({"sub": current_claims(request).sub})

    service = Service(name="stream", port=3998, settings=ToySettings, routes=routes, uses=[Auth()])
    client = await aiohttp_client(service.create_app(make_settings(ToySettings)))
    token = make_token(sub="q-1")
    assert (await client.get("/stream", params={"jwt": token})).status == 200
    for spelling in (f"{token}==", f"{token}.x", _respell(token, 2, _flip_trailing_bits)):
        await rejected(await client.get("/stream", params={"jwt": spelling}))


# --- strict claims (api.md Conventions "auth") --------------------------------------------


@pytest.mark.parametrize(
    "claims",
    [
        {"exp": "EXP"},  # a numeric string
        {"iat": "IAT"},
        {"exp": "EXPF"},  # a float
        {"iat": "IATF"},
        {"exp": True},
        {"iat": True},
        {"username": ""},
        {"username": 7},
        {"sub": ""},
        {"sid": ""},
        {"jti": ""},
        {"sub": 12},
        {"sid": ["s"]},
        {"jti": None},
    ],
)
async def test_claims_are_checked_strictly(client, make_token, claims):
    now = int(time.time())
    replace = {"EXP": str(now + 600), "IAT": str(now), "EXPF": now + 600.5, "IATF": now + 0.5}
    claims = {k: replace.get(v, v) if isinstance(v, str) else v for k, v in claims.items()}
    token = make_token(claims=claims)
    await rejected(await client.get("/whoami", headers={"Authorization": f"Bearer {token}"}))


async def test_username_is_required(client, make_token):
    token = make_token(drop=("username",))
    await rejected(await client.get("/whoami", headers={"Authorization": f"Bearer {token}"}))


async def test_a_token_living_longer_than_15_minutes_is_refused(client, make_token):
    now = int(time.time())
    ok = make_token(claims={"iat": now, "exp": now + 900})
    assert (await client.get("/whoami", headers={"Authorization": f"Bearer {ok}"})).status == 200
    for exp in (now + 901, now + 10 * 365 * 24 * 3600):
        token = make_token(claims={"iat": now, "exp": exp})
        await rejected(await client.get("/whoami", headers={"Authorization": f"Bearer {token}"}))


def test_minted_test_tokens_conform_by_default(test_keys):
    token = mint_token(test_keys)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert {"iss", "sub", "sid", "jti", "username", "iat", "exp"} <= set(claims)
    assert type(claims["iat"]) is int
    assert type(claims["exp"]) is int
    assert 0 < claims["exp"] - claims["iat"] <= 900


async def test_authenticate_is_the_one_entry_point(app, client, make_token):
    """What a WebSocket handler calls to check an ``auth`` frame's token, as the chassis does."""
    from svc_core.auth import authenticate
    from svc_core.errors import SessionRevoked, Unauthorized

    token = make_token(sub="ws-1", sid="ws-session")
    claims = await authenticate(app, f"Bearer {token}")
    assert (claims.sub, claims.sid, claims.token) == ("ws-1", "ws-session", token)
    assert (await authenticate(app, None, token)).sub == "ws-1"  # ?jwt= on a WebSocket route
    assert (await authenticate(app, "Basic dXNlcjpwYXNz", token)).sub == "ws-1"
    for header, query in (
        (None, None),
        ("Bearer\t" + token, None),
        ("Bearer " + token + "=", None),
    ):
        with pytest.raises(Unauthorized) as refused:
            await authenticate(app, header, query)
        assert type(refused.value) is Unauthorized
    await revoke_session(
        app[keys.REDIS], "ws-session", until=time.time() + 900, local=app[keys.REVOCATIONS]
    )
    with pytest.raises(SessionRevoked):
        await authenticate(app, f"Bearer {token}")
