"""Thin handlers: parse (schema) -> call the domain -> render."""

from __future__ import annotations

from aiohttp import web

from svc_core import RouteTable, body, current_claims
from svc_customer import domain
from svc_customer.schemas import (
    JwksOut,
    LoginIn,
    PasswordChange,
    ProfileOut,
    ProfileUpdate,
    RefreshIn,
    RegisterIn,
    TokenPairOut,
)
from svc_customer.typedefs import SERVICES

routes = RouteTable()

# Token responses must not be cached anywhere (RFC 6749 section 5.1).
NO_STORE = {"Cache-Control": "no-store"}


@routes.post(
    "/auth/register", public=True, body=RegisterIn, response=ProfileOut, status=201, errors=(409,)
)
async def register(request: web.Request) -> web.Response:
    """Register a customer."""
    data = await body(request)
    customer = await domain.register(
        request.app[SERVICES],
        username=data["username"],
        email=data["email"],
        password=data["password"],
    )
    return web.json_response(domain.render_profile(customer), status=201)


@routes.post("/auth/login", public=True, body=LoginIn, response=TokenPairOut, errors=(401, 429))
async def login(request: web.Request) -> web.Response:
    """Log in with a username or email and a password."""
    data = await body(request)
    pair = await domain.login(
        request.app[SERVICES], identifier=data["username"], password=data["password"]
    )
    return web.json_response(pair.render(), headers=NO_STORE)


@routes.post("/auth/refresh", public=True, body=RefreshIn, response=TokenPairOut, errors=(401,))
async def refresh(request: web.Request) -> web.Response:
    """Swap a refresh token for a new token pair in the same session."""
    data = await body(request)
    pair = await domain.refresh(request.app[SERVICES], refresh_token=data["refresh_token"])
    return web.json_response(pair.render(), headers=NO_STORE)


@routes.post("/auth/logout", status=204, errors=(401,))
async def logout(request: web.Request) -> web.Response:
    """Revoke the caller's session."""
    await body(request)
    await domain.logout(request.app[SERVICES], claims=current_claims(request))
    return web.Response(status=204)


@routes.get("/auth/jwks.json", public=True, response=JwksOut)
async def jwks(request: web.Request) -> web.Response:
    """The public keys that verify access tokens."""
    return web.json_response(
        request.app[SERVICES].issuer.jwks(), headers={"Cache-Control": "public, max-age=60"}
    )


@routes.get("/customers/me", response=ProfileOut, errors=(401, 404))
async def get_me(request: web.Request) -> web.Response:
    """The caller's profile."""
    customer = await domain.profile(request.app[SERVICES], customer_id=current_claims(request).sub)
    return web.json_response(domain.render_profile(customer))


@routes.patch("/customers/me", body=ProfileUpdate, response=ProfileOut, errors=(401, 404, 409))
async def update_me(request: web.Request) -> web.Response:
    """Change the caller's email."""
    claims = current_claims(request)
    services = request.app[SERVICES]
    await domain.profile(services, customer_id=claims.sub)  # 404 before 422
    data = await body(request)
    customer = await domain.change_email(services, customer_id=claims.sub, email=data["email"])
    return web.json_response(domain.render_profile(customer))


@routes.post("/customers/me/password", body=PasswordChange, status=204, errors=(401, 403, 429))
async def change_password(request: web.Request) -> web.Response:
    """Change the caller's password; every other session of the caller is revoked."""
    claims = current_claims(request)
    services = request.app[SERVICES]
    await domain.profile(services, customer_id=claims.sub)  # 404 before 422
    data = await body(request)
    await domain.change_password(
        services, claims=claims, current=data["current_password"], new=data["new_password"]
    )
    return web.Response(status=204)
