"""Access tokens: claims, kid, the JWKS, the signing-key settings, and foreign keys refused."""

from __future__ import annotations

import logging

import jwt
import pytest

from svc_core import SettingsError
from svc_core.auth import key_id
from svc_core.testing import TEST_ISSUER, KeyPair, mint_token
from svc_customer import CustomerSettings
from svc_customer.tokens import load_signing_key
from tests.customer.conftest import bearer, problem, register


def header_and_claims(token: str) -> tuple[dict, dict]:
    return jwt.get_unverified_header(token), jwt.decode(token, options={"verify_signature": False})


async def test_access_token_claims_and_header(client):
    account = await register(client)
    pair = await account.login()
    header, claims = header_and_claims(pair["access_token"])
    assert header["alg"] == "RS256"
    assert set(claims) == {"iss", "sub", "username", "sid", "jti", "iat", "exp"}
    assert claims["iss"] == TEST_ISSUER  # the configured JWT_ISSUER
    assert claims["sub"] == account.id
    assert claims["username"] == account.username
    assert claims["exp"] - claims["iat"] == 900
    second = await account.login()
    _, claims2 = header_and_claims(second["access_token"])
    assert claims2["sid"] != claims["sid"]
    assert claims2["jti"] != claims["jti"]


async def test_issued_tokens_verify_with_the_published_jwks_key(client):
    pair = await (await register(client)).login()
    resp = await client.get("/auth/jwks.json")
    assert resp.status == 200
    jwks = await resp.json()
    kid = jwt.get_unverified_header(pair["access_token"])["kid"]
    published = {key["kid"]: key for key in jwks["keys"]}
    assert kid in published
    for key in jwks["keys"]:
        assert set(key) == {"kty", "kid", "alg", "use", "n", "e"}
        assert (key["kty"], key["alg"], key["use"]) == ("RSA", "RS256", "sig")
    public = jwt.PyJWK(published[kid]).key
    assert key_id(public) == kid
    claims = jwt.decode(
        pair["access_token"],
        public,
        algorithms=["RS256"],
        issuer=TEST_ISSUER,
    )
    assert claims["sid"]


async def test_jwks_also_publishes_extra_public_keys(start, test_keys, other_keys):
    client = await start(jwt_public_keys=test_keys.public_pem + other_keys.public_pem)
    kids = {key["kid"] for key in (await (await client.get("/auth/jwks.json")).json())["keys"]}
    assert {test_keys.kid, other_keys.kid} <= kids
    assert len(kids) == 3  # the active key too


async def test_a_token_signed_by_another_key_is_refused(client, other_keys):
    account = await register(client)
    pair = await account.login()
    _, claims = header_and_claims(pair["access_token"])
    forged = mint_token(
        other_keys, sub=account.id, sid=claims["sid"], issuer=claims["iss"], username="x"
    )
    await problem(
        await client.get("/customers/me", headers=bearer({"access_token": forged})),
        401,
        "unauthorized",
    )
    # Even with the kid of the real key, the signature does not verify.
    forged = mint_token(
        other_keys,
        sub=account.id,
        sid=claims["sid"],
        issuer=claims["iss"],
        headers={"kid": jwt.get_unverified_header(pair["access_token"])["kid"]},
    )
    await problem(
        await client.get("/customers/me", headers=bearer({"access_token": forged})),
        401,
        "unauthorized",
    )


async def test_protected_routes_need_a_header_token(client):
    pair = await (await register(client)).login()
    await problem(await client.get("/customers/me"), 401, "unauthorized")
    resp = await client.get("/customers/me", params={"jwt": pair["access_token"]})
    await problem(resp, 401, "unauthorized")
    await problem(await client.post("/auth/logout"), 401, "unauthorized")


async def test_a_configured_private_key_signs(start, tmp_path):
    keypair = KeyPair.generate()  # not the fixture's default key
    client = await start(jwt_private_key=keypair.private_pem)
    pair = await (await register(client)).login()
    assert jwt.get_unverified_header(pair["access_token"])["kid"] == keypair.kid

    path = tmp_path / "signing.pem"
    path.write_text(keypair.private_pem)
    client = await start(jwt_private_key_file=path, jwt_private_key="")
    pair = await (await register(client)).login()
    assert jwt.get_unverified_header(pair["access_token"])["kid"] == keypair.kid
    resp = await client.get("/customers/me", headers=bearer(pair))
    assert resp.status == 200


async def test_a_generated_key_is_announced_in_the_log(start, caplog):
    with caplog.at_level(logging.WARNING, logger="svc_customer.tokens"):
        await start(jwt_private_key="")
    assert any("generated in memory" in r.getMessage() for r in caplog.records)


PRODUCTION = {
    "environment": "production",
    "mongo_url": "mongodb://db",
    "redis_url": "redis://cache",
    "password_pepper": "a-real-pepper-of-enough-entropy",
}


def test_production_refuses_a_missing_signing_key():
    with pytest.raises(SettingsError, match="JWT_PRIVATE_KEY_FILE"):
        CustomerSettings.from_env({}, **PRODUCTION)
    settings = CustomerSettings.from_env({}, **PRODUCTION, jwt_private_key="-----BEGIN...")
    assert settings.has_signing_key
    assert settings.describe()["jwt_private_key"] == "***"


def test_production_refuses_the_placeholder_pepper():
    values = {**PRODUCTION, "jwt_private_key": "pem"}
    del values["password_pepper"]
    with pytest.raises(SettingsError, match="PASSWORD_PEPPER"):
        CustomerSettings.from_env({}, **values)


@pytest.mark.parametrize(
    ("environ", "variable"),
    [
        ({"ACCESS_TOKEN_TTL": "901"}, "ACCESS_TOKEN_TTL"),
        ({"ACCESS_TOKEN_TTL": "0"}, "ACCESS_TOKEN_TTL"),
        ({"BCRYPT_ROUNDS": "3"}, "BCRYPT_ROUNDS"),
        ({"JWT_PRIVATE_KEY": "x", "JWT_PRIVATE_KEY_FILE": "/k.pem"}, "JWT_PRIVATE_KEY"),
    ],
)
def test_bad_settings_name_their_variable(environ, variable):
    with pytest.raises(SettingsError, match=variable):
        CustomerSettings.from_env(environ)


def test_settings_read_from_the_environment():
    settings = CustomerSettings.from_env(
        {"ACCESS_TOKEN_TTL": "600", "BCRYPT_ROUNDS": "10", "LOGIN_THROTTLE_WINDOW": "60"}
    )
    assert (settings.access_token_ttl, settings.bcrypt_rounds) == (600, 10)
    assert settings.login_throttle_window == 60
    assert settings.bcrypt_rounds != CustomerSettings.from_env({}).bcrypt_rounds


async def test_an_unreadable_or_bad_key_fails_startup_naming_the_variable(
    customer_settings, tmp_path
):
    path = tmp_path / "missing.pem"
    with pytest.raises(SettingsError, match="JWT_PRIVATE_KEY_FILE: cannot read"):
        await load_signing_key(customer_settings(jwt_private_key_file=path, jwt_private_key=""))
    path.write_text("not a key")
    with pytest.raises(SettingsError, match="JWT_PRIVATE_KEY_FILE: not an unencrypted PEM"):
        await load_signing_key(customer_settings(jwt_private_key_file=path, jwt_private_key=""))
    with pytest.raises(SettingsError, match="JWT_PRIVATE_KEY: not an unencrypted PEM"):
        await load_signing_key(customer_settings(jwt_private_key="-----BEGIN nonsense"))
