"""Access tokens: their one accepted spelling, their claims, and verifying them.

Tokens are RS256 JWTs issued by the customer service. Every service verifies them again behind
the gateway: the algorithm is pinned to RS256 (``none`` and HS* are refused before any key is
touched), the key is chosen by the header's ``kid``, and the claims are checked strictly (api.md
Conventions "auth"): ``exp`` and ``iat`` integers, ``sub``, ``sid``, ``jti``, ``username``
non-empty strings, ``iss`` the configured issuer, ``exp`` at most 15 minutes after ``iat``.

A token is one exact string: three base64url segments without padding, each canonical
(re-encoding its bytes gives back the same text). Any other spelling of the same token (padding,
non-zero unused bits in a segment's last character, extra segments) is refused, so it can never
buy its own cache entry or rate-limit budget.

Performance: decoding costs ~40-70 us, so verified claims are cached per raw token (bounded,
never trusted past ``exp``). Only canonical tokens ever reach the cache, so a cache hit needs no
other check.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import time
from collections import OrderedDict
from typing import Any

import jwt

from svc_core.auth.keys import ALGORITHM, KeySet
from svc_core.errors import Unauthorized

REQUIRED_CLAIMS = ("iss", "sub", "sid", "jti", "username", "iat", "exp")
MAX_TOKEN_LENGTH = 8192
MAX_TOKEN_LIFETIME = 900  # api.md: exp at most 15 minutes after iat
SCHEME = "bearer "  # compared case-insensitively, as Kong's pre-function does

_B64URL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


@dataclasses.dataclass(frozen=True, slots=True)
class Claims:
    """The verified claims of an access token."""

    sub: str
    sid: str
    jti: str
    username: str
    iat: int
    exp: int
    token: str = dataclasses.field(repr=False)


def _canonical_segment(segment: str) -> bool:
    if not segment or len(segment) % 4 == 1 or not _B64URL.issuperset(segment):
        return False
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        return False
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") == segment


def is_canonical_token(token: str) -> bool:
    """Whether ``token`` is spelled canonically: exactly three non-empty base64url segments, no
    padding, and each segment the exact re-encoding of its bytes."""
    if len(token) > MAX_TOKEN_LENGTH or not token.isascii():
        return False
    segments = token.split(".")
    return len(segments) == 3 and all(_canonical_segment(s) for s in segments)


def scheme_token(header: str) -> str | None:
    """The text after ``Bearer `` (one space, scheme in any case), else None. Not yet checked."""
    if header.startswith("Bearer ") or header[:7].lower() == SCHEME:
        return header[7:]
    return None


def bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header spelled canonically, else None.

    Exactly one space after the scheme, nothing before or after, and a canonical token
    (:func:`is_canonical_token`).
    """
    if not header:
        return None
    token = scheme_token(header)
    if token is None or not is_canonical_token(token):
        return None
    return token


class TokenVerifier:
    """Verifies access tokens and remembers the verified result per token string."""

    def __init__(self, keys: KeySet, *, issuer: str, cache_size: int = 10_000) -> None:
        self.keys = keys
        self.issuer = issuer
        self.cache_size = cache_size
        self._cache: OrderedDict[str, Claims] = OrderedDict()

    def cached(self, token: str) -> Claims | None:
        """The claims of a token verified before and not yet expired; no coroutine needed."""
        claims = self._cache.get(token)
        if claims is not None and claims.exp > time.time():
            return claims
        return None

    async def verify(self, token: str) -> Claims:
        """The token's claims, or :class:`Unauthorized`."""
        claims = self.cached(token)
        if claims is not None:
            return claims
        return await self.verify_uncached(token)

    async def verify_uncached(self, token: str) -> Claims:
        """:meth:`verify` for a token :meth:`cached` just missed (the fast path is not repeated)."""
        if self._cache.pop(token, None) is not None:  # verified once, expired since
            raise Unauthorized("The access token has expired.")
        claims = await self._decode(token)
        self._cache[token] = claims
        if len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return claims

    async def _decode(self, token: str) -> Claims:
        if not is_canonical_token(token):
            raise Unauthorized("The access token is malformed.")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthorized("The access token is malformed.") from None
        if header.get("alg") != ALGORITHM:
            raise Unauthorized("The access token's algorithm is not accepted.")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise Unauthorized("The access token names no signing key.")
        key = self.keys.get(kid)
        if key is None and await self.keys.refresh():
            key = self.keys.get(kid)
        if key is None:
            raise Unauthorized("The access token was signed by an unknown key.")
        try:
            payload = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                issuer=self.issuer,
                options={"require": list(REQUIRED_CLAIMS)},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("The access token has expired.") from None
        except jwt.PyJWTError:
            raise Unauthorized("The access token is invalid.") from None
        return claims_of(payload, token)


def claims_of(payload: dict[str, Any], token: str) -> Claims:
    """Strictly typed claims from a verified payload, else :class:`Unauthorized`."""
    iat, exp = payload.get("iat"), payload.get("exp")
    if type(iat) is not int or type(exp) is not int:  # not bool, float or a numeric string
        raise Unauthorized("The access token is invalid.")
    if exp - iat > MAX_TOKEN_LIFETIME:
        raise Unauthorized("The access token lives too long.")
    sub, sid, jti, username = (_text(payload, name) for name in ("sub", "sid", "jti", "username"))
    return Claims(sub=sub, sid=sid, jti=jti, username=username, iat=iat, exp=exp, token=token)


def _text(payload: dict[str, Any], name: str) -> str:
    value = payload.get(name)
    if not isinstance(value, str) or not value:
        raise Unauthorized("The access token is invalid.")
    return value
