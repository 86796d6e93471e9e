"""Thin handlers: the chassis has authenticated and validated the request; a handler calls the
domain and returns what the route's response schema renders. Security events are audited here
(svc_core.audit): registration, login (success, failure, lockout), refresh token reuse, logout
and password change, one record each."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from svc_core import RouteTable, audit, body, current_claims, resource
from svc_customer import domain
from svc_customer.parts import PARTS
from svc_customer.repository import Customer
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

routes = RouteTable()

# Token responses must not be cached anywhere (RFC 6749 section 5.1).
NO_STORE = {"Cache-Control": "no-store"}


async def own_profile(request: web.Request) -> Customer:
    """The caller's profile (404 if the customer is gone), before the body is validated."""
    return await domain.profile(PARTS.of(request), customer_id=current_claims(request).sub)


@routes.post(
    "/auth/register", public=True, body=RegisterIn, response=ProfileOut, status=201, errors=(409,)
)
async def register(request: web.Request) -> Customer:
    """Register a customer."""
    data = body(request)
    async with audit.event(request, "auth.register") as event:
        customer = await domain.register(
            PARTS.of(request),
            username=data["username"],
            email=data["email"],
            password=data["password"],
        )
        event.about("customer", customer["_id"])
    return customer


@routes.post(
    "/auth/login",
    public=True,
    body=LoginIn,
    response=TokenPairOut,
    headers=NO_STORE,
    errors=(401, 429),
)
async def login(request: web.Request) -> domain.TokenPair:
    """Log in with a username or email and a password."""
    data = body(request)
    async with audit.event(request, "auth.login") as event:
        return await domain.login(
            PARTS.of(request), identifier=data["username"], password=data["password"], audit=event
        )


@routes.post(
    "/auth/refresh",
    public=True,
    body=RefreshIn,
    response=TokenPairOut,
    headers=NO_STORE,
    errors=(401,),
)
async def refresh(request: web.Request) -> domain.TokenPair:
    """Swap a refresh token for a new token pair in the same session."""
    try:
        return await domain.refresh(PARTS.of(request), refresh_token=body(request)["refresh_token"])
    except domain.RefreshTokenReused as reused:
        await audit.record(
            request,
            "auth.refresh_reused",
            outcome="denied",
            target=("customer", reused.customer_id or None),
            detail={"session": reused.sid, "reason": reused.instance_code},
        )
        raise


@routes.post("/auth/logout", status=204, errors=(401,))
async def logout(request: web.Request) -> None:
    """Revoke the caller's session."""
    claims = current_claims(request)
    async with audit.event(request, "auth.logout", target=("session", claims.sid)):
        await domain.logout(PARTS.of(request), claims=claims)


@routes.get(
    "/auth/jwks.json",
    public=True,
    response=JwksOut,
    headers={"Cache-Control": "public, max-age=60"},
)
async def jwks(request: web.Request) -> dict[str, Any]:
    """The public keys that verify access tokens."""
    return PARTS.of(request).issuer.jwks()


@routes.get("/customers/me", load=own_profile, response=ProfileOut, errors=(401, 404))
async def get_me(request: web.Request) -> Customer:
    """The caller's profile."""
    customer: Customer = resource(request)
    return customer


@routes.patch(
    "/customers/me",
    load=own_profile,
    body=ProfileUpdate,
    response=ProfileOut,
    errors=(401, 404, 409),
)
async def update_me(request: web.Request) -> Customer:
    """Change the caller's email."""
    return await domain.change_email(
        PARTS.of(request), customer_id=current_claims(request).sub, email=body(request)["email"]
    )


@routes.post(
    "/customers/me/password",
    load=own_profile,
    body=PasswordChange,
    status=204,
    errors=(401, 403, 404, 429),
)
async def change_password(request: web.Request) -> None:
    """Change the caller's password; every other session of the caller is revoked."""
    data = body(request)
    claims = current_claims(request)
    async with audit.event(
        request, "auth.password_change", target=("customer", claims.sub)
    ) as event:
        await domain.change_password(
            PARTS.of(request),
            claims=claims,
            current=data["current_password"],
            new=data["new_password"],
            audit=event,
        )
