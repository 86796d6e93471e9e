"""Authentication: who a request is from, and whether that session still counts.

- :mod:`svc_core.auth.keys`: RSA keys, their ``kid`` (RFC 7638 thumbprint), JWK and PEM forms,
  and the :class:`KeySet` a verifier looks keys up in.
- :mod:`svc_core.auth.tokens`: the one accepted spelling of a token, :class:`Claims`, and the
  :class:`TokenVerifier` that checks and caches them.
- :mod:`svc_core.auth.revocations`: :func:`revoke_session` and the :class:`RevocationList`
  every process mirrors, durable across a Redis that loses data.
- :func:`authenticate`: the one entry point the request wrapper calls.
"""

from __future__ import annotations

from aiohttp import web

from svc_core import keys as app_keys
from svc_core.auth.keys import (
    ALGORITHM,
    KeySet,
    jwk_to_public_key,
    key_id,
    load_public_keys,
    public_jwk,
    public_pem,
)
from svc_core.auth.revocations import (
    EPOCH_KEY,
    NOT_BEFORE_KEY,
    REVOKED_CHANNEL,
    REVOKED_KEY,
    RevocationList,
    revoke_session,
)
from svc_core.auth.tokens import (
    MAX_TOKEN_LENGTH,
    MAX_TOKEN_LIFETIME,
    REQUIRED_CLAIMS,
    Claims,
    TokenVerifier,
    bearer_token,
    is_canonical_token,
    scheme_token,
)
from svc_core.errors import SessionRevoked, Unauthorized

__all__ = [
    "ALGORITHM",
    "EPOCH_KEY",
    "MAX_TOKEN_LENGTH",
    "MAX_TOKEN_LIFETIME",
    "NOT_BEFORE_KEY",
    "REQUIRED_CLAIMS",
    "REVOKED_CHANNEL",
    "REVOKED_KEY",
    "Claims",
    "KeySet",
    "RevocationList",
    "TokenVerifier",
    "authenticate",
    "bearer_token",
    "cached_claims",
    "is_canonical_token",
    "jwk_to_public_key",
    "key_id",
    "load_public_keys",
    "public_jwk",
    "public_pem",
    "revoke_session",
]


async def authenticate(
    app: web.Application, authorization: str | None, query_token: str | None = None
) -> Claims:
    """The verified claims of a request's access token, else :class:`Unauthorized` (or
    :class:`SessionRevoked`).

    ``authorization`` is the ``Authorization`` header; ``query_token`` the ``?jwt=`` value of a
    route that accepts one (used when the header carries no bearer token). The common case (a
    token verified before, the revocation mirror in sync) awaits nothing.
    """
    token = scheme_token(authorization) if authorization else None
    if token is None:
        if authorization and authorization[:6].lower() == "bearer":
            raise Unauthorized("The access token is malformed.")  # other whitespace, or none
        if not query_token:
            raise Unauthorized("A bearer access token is required.")
        token = query_token
    verifier = app[app_keys.VERIFIER]
    claims = verifier.cached(token)
    if claims is None:
        claims = await verifier.verify_uncached(token)  # spelling, signature, claims
    revocations = app[app_keys.REVOCATIONS]
    refused = revocations.known(claims.sid, claims.iat)
    if refused is None:
        refused = await revocations.ask(claims.sid, claims.iat)
    if refused:
        raise SessionRevoked()
    return claims


def cached_claims(
    verifier: TokenVerifier, revocations: RevocationList, authorization: str | None
) -> Claims | None:
    """:func:`authenticate`'s common case without a coroutine: the claims of a bearer token
    verified before, when the revocation mirror is in sync and does not refuse it (a refused
    session raises :class:`SessionRevoked`). ``None``: ask :func:`authenticate`."""
    if not authorization:
        return None
    token = scheme_token(authorization)
    if token is None:
        return None
    claims = verifier.cached(token)
    if claims is None:
        return None
    refused = revocations.known(claims.sid, claims.iat)
    if refused is None:
        return None
    if refused:
        raise SessionRevoked()
    return claims
