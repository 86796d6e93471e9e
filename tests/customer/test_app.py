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
