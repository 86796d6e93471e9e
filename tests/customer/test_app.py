"""The chassis endpoints as the customer service serves them."""

from __future__ import annotations


async def test_health_ready_and_openapi(client):
    assert (await client.get("/health")).status == 200
    ready = await client.get("/ready")
    assert ready.status == 200
    assert (await ready.json())["checks"] == {"mongodb": "ok", "redis": "ok"}
    spec = await (await client.get("/openapi.json")).json()
    assert set(spec["paths"]) >= {
        "/auth/register",
        "/auth/login",
        "/auth/refresh",
        "/auth/logout",
        "/auth/jwks.json",
        "/customers/me",
        "/customers/me/password",
    }
    assert set(spec["paths"]["/customers/me"]) >= {"get", "patch"}
    schemas = spec["components"]["schemas"]
    assert "password_hash" not in str(schemas)


async def test_public_routes_need_no_token(client):
    assert (await client.get("/auth/jwks.json")).status == 200
    resp = await client.post("/auth/login", json={"username": "nobody", "password": "whatever1"})
    assert resp.status == 401
    assert (await resp.json(content_type=None))["code"] == "invalid_credentials"


async def test_unknown_query_parameters_are_422_on_every_route(client):
    """api.md: unknown query parameters are rejected (422), never ignored; the query is
    checked before anything happens (no account is created, nobody is logged in)."""
    from tests.customer.conftest import bearer, problem, register

    account = await register(client)
    pair = await account.login()
    calls = [
        (
            "POST",
            "/auth/register?ref=x",
            {"username": "newbie", "email": "n@example.com", "password": "long enough pw"},
            {},
        ),
        (
            "POST",
            "/auth/login?x=1",
            {"username": account.username, "password": account.password},
            {},
        ),
        ("POST", "/auth/refresh?x=1", {"refresh_token": pair["refresh_token"]}, {}),
        ("GET", "/auth/jwks.json?x=1", None, {}),
        ("GET", "/customers/me?foo=1", None, bearer(pair)),
        ("PATCH", "/customers/me?foo=1", {"email": "other@example.com"}, bearer(pair)),
        ("POST", "/auth/logout?x=1", None, bearer(pair)),
    ]
    for method, path, body, headers in calls:
        resp = await client.request(method, path, json=body, headers=headers)
        data = await problem(resp, 422, "validation_failed")
        assert list(data["errors"].values()) == [["Unknown query parameter."]], path
    # nothing above took effect: the refresh token is still valid, the session still live
    resp = await client.post("/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert resp.status == 200
