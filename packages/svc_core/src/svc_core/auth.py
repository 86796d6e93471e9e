"""Access-token verification and session revocation.

Tokens are RS256 JWTs issued by the customer service. Every service verifies them again behind
the gateway: the algorithm is pinned to RS256 (``none`` and HS* are refused before any key is
touched), the key is chosen by the header's ``kid``, and ``exp``, ``iat``, ``iss`` and the
claims api.md lists are required.

Performance: decoding costs ~40-70 us, so verified claims are cached per raw token (bounded,
never trusted past ``exp``). Revocation is checked on every request, cache hit or not, against a
local set of revoked session ids that a Redis pub/sub subscription keeps current. Staleness is
bounded: while the subscription is down (or not yet synced) each check asks Redis directly, so a
revoked session is refused as soon as Redis has the record, and fails closed (503) when Redis
cannot answer.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import hashlib
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

import aiohttp
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from redis.asyncio import Redis
from redis.exceptions import RedisError

from svc_core.errors import DependencyUnavailable, Unauthorized

log = logging.getLogger("svc_core.auth")

ALGORITHM = "RS256"
REQUIRED_CLAIMS = ("iss", "sub", "sid", "jti", "iat", "exp")
REVOKED_KEY = "auth:revoked"
REVOKED_CHANNEL = "auth:revocations"
MAX_TOKEN_LENGTH = 8192


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

    @property
    def customer_id(self) -> str:
        return self.sub


# --- keys -----------------------------------------------------------------------------------


def _b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8 or 1, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64url_to_int(value: str) -> int:
    padded = value + "=" * (-len(value) % 4)
    return int.from_bytes(base64.urlsafe_b64decode(padded), "big")


def key_id(public_key: RSAPublicKey) -> str:
    """The RFC 7638 JWK thumbprint of an RSA public key: the ``kid`` everywhere in the system.

    The customer service, the JWKS, Kong's credentials (rendered from the PEM) and this verifier
    all derive it the same way, so a key never needs an id configured beside it.
    """
    numbers = public_key.public_numbers()
    canonical = json.dumps(
        {"e": _b64url_uint(numbers.e), "kty": "RSA", "n": _b64url_uint(numbers.n)},
        separators=(",", ":"),
        sort_keys=True,
    )
    digest = hashlib.sha256(canonical.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def public_jwk(public_key: RSAPublicKey) -> dict[str, str]:
    numbers = public_key.public_numbers()
    return {
        "kty": "RSA",
        "kid": key_id(public_key),
        "alg": ALGORITHM,
        "use": "sig",
        "n": _b64url_uint(numbers.n),
        "e": _b64url_uint(numbers.e),
    }


def jwk_to_public_key(jwk: dict[str, Any]) -> RSAPublicKey:
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicNumbers

    return RSAPublicNumbers(_b64url_to_int(jwk["e"]), _b64url_to_int(jwk["n"])).public_key()


def load_public_keys(pem_text: str) -> list[RSAPublicKey]:
    """Every RSA public key in a PEM bundle (one or more ``PUBLIC KEY`` blocks)."""
    keys: list[RSAPublicKey] = []
    marker = "-----END PUBLIC KEY-----"
    for chunk in pem_text.split(marker):
        if "-----BEGIN PUBLIC KEY-----" not in chunk:
            continue
        key = serialization.load_pem_public_key((chunk.strip() + "\n" + marker + "\n").encode())
        if not isinstance(key, RSAPublicKey):
            raise ValueError("only RSA public keys are supported")
        keys.append(key)
    return keys


def public_pem(key: RSAPublicKey | RSAPrivateKey) -> str:
    public = key.public_key() if isinstance(key, RSAPrivateKey) else key
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


class KeySet:
    """Public keys by ``kid``; optionally refreshed from a JWKS URL when an unknown kid appears."""

    REFRESH_INTERVAL = 5.0

    def __init__(
        self,
        keys: Iterable[RSAPublicKey] = (),
        *,
        jwks_url: str = "",
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self._keys: dict[str, RSAPublicKey] = {}
        for key in keys:
            self.add(key)
        self.jwks_url = jwks_url
        self.session = session
        self._last_refresh = 0.0
        self._refresh_lock = asyncio.Lock()

    def add(self, key: RSAPublicKey) -> str:
        kid = key_id(key)
        self._keys[kid] = key
        return kid

    def get(self, kid: str) -> RSAPublicKey | None:
        return self._keys.get(kid)

    def __len__(self) -> int:
        return len(self._keys)

    async def refresh(self) -> bool:
        """Fetch the JWKS again (at most once per REFRESH_INTERVAL). True when it was fetched."""
        if not self.jwks_url or self.session is None:
            return False
        async with self._refresh_lock:
            if time.monotonic() - self._last_refresh < self.REFRESH_INTERVAL:
                return False
            self._last_refresh = time.monotonic()
            try:
                timeout = aiohttp.ClientTimeout(total=3)
                async with self.session.get(self.jwks_url, timeout=timeout) as resp:
                    resp.raise_for_status()
                    document = await resp.json()
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                log.warning("jwks fetch failed", extra={"url": self.jwks_url, "error": str(exc)})
                return False
            for jwk in document.get("keys", []):
                if jwk.get("kty") == "RSA" and jwk.get("alg", ALGORITHM) == ALGORITHM:
                    self.add(jwk_to_public_key(jwk))
            return True


# --- verification ---------------------------------------------------------------------------


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
        if self._cache.pop(token, None) is not None:  # verified once, expired since
            raise Unauthorized("The access token has expired.")
        claims = await self._decode(token)
        self._cache[token] = claims
        if len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return claims

    async def _decode(self, token: str) -> Claims:
        if len(token) > MAX_TOKEN_LENGTH or not token.isascii():
            raise Unauthorized("The access token is invalid.")
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
        try:
            return Claims(
                sub=_claim_str(payload, "sub"),
                sid=_claim_str(payload, "sid"),
                jti=_claim_str(payload, "jti"),
                username=str(payload.get("username", "")),
                iat=int(payload["iat"]),
                exp=int(payload["exp"]),
                token=token,
            )
        except (TypeError, ValueError):
            raise Unauthorized("The access token is invalid.") from None


def _claim_str(payload: dict[str, Any], name: str) -> str:
    value = payload.get(name)
    if not isinstance(value, str) or not value:
        raise ValueError(name)
    return value


def bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, else None."""
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    token = token.strip()
    return token or None


# --- revocation -----------------------------------------------------------------------------


async def revoke_session(
    redis: Redis, sid: str, *, until: float, local: RevocationList | None = None
) -> None:
    """Record that session ``sid`` is revoked until ``until`` (epoch seconds) and tell everyone.

    ``until`` should be the latest ``exp`` an access token of the session can carry: past it
    the tokens are dead anyway and the record may go. ``local`` (the calling app's list,
    ``app[svc_core.keys.REVOCATIONS]``) takes effect at once instead of via its own pub/sub echo.
    """
    if local is not None:
        local.add(sid, until)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.zadd(REVOKED_KEY, {sid: until})
        pipe.zremrangebyscore(REVOKED_KEY, "-inf", time.time())
        pipe.publish(REVOKED_CHANNEL, json.dumps({"sid": sid, "until": until}))
        await pipe.execute()


class RevocationList:
    """Revoked session ids, mirrored locally while a pub/sub subscription is live."""

    POLL = 0.05  # how long one wait for a message lasts; bounds how long stop() takes

    def __init__(self, redis: Redis, *, retry_delay: float = 0.5) -> None:
        self.redis = redis
        self._stopping = False
        self.retry_delay = retry_delay
        self._revoked: dict[str, float] = {}
        self.synced = False
        self._task: asyncio.Task[None] | None = None
        self._last_prune = time.monotonic()

    def add(self, sid: str, until: float) -> None:
        """Apply a revocation this process made itself, without waiting for its echo."""
        self._revoked[sid] = until

    def known(self, sid: str) -> bool | None:
        """Whether ``sid`` is revoked, from the local mirror; ``None`` when only Redis knows."""
        if not self.synced:
            return None
        until = self._revoked.get(sid)
        return until is not None and until > time.time()

    async def is_revoked(self, sid: str) -> bool:
        known = self.known(sid)
        if known is not None:
            return known
        if self._revoked.get(sid, 0.0) > time.time():  # revoked by this process itself
            return True
        try:
            score = await self.redis.zscore(REVOKED_KEY, sid)
        except (RedisError, OSError):
            raise DependencyUnavailable("The session store is unavailable.") from None
        return score is not None and float(score) > time.time()

    def start(self) -> None:
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self._follow(), name="svc-core-revocations")

    async def stop(self) -> None:
        # redis-py's get_message does not honour cancellation while it waits, so ask the loop
        # to finish (it checks between short polls) and cancel only as a last resort.
        self._stopping = True
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._task), self.POLL * 4)
            if not self._task.done():
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
            self._task = None
        self.synced = False

    async def _follow(self) -> None:
        while not self._stopping:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                # Subscribe first, then load the set: nothing revoked in between is missed.
                await pubsub.subscribe(REVOKED_CHANNEL)
                now = time.time()
                current: Any = await self.redis.zrangebyscore(
                    REVOKED_KEY, now, "+inf", withscores=True
                )
                self._revoked = {str(sid): float(until) for sid, until in current}
                self.synced = True
                while not self._stopping:
                    message = await pubsub.get_message(timeout=self.POLL)
                    if message is not None and message.get("type") == "message":
                        self._apply(message["data"])
                    self._prune()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # connection lost: fall back to asking Redis, then resync
                if self.synced:
                    log.warning(
                        "revocation feed lost; checking Redis per request",
                        extra={"error": repr(exc)},
                    )
                self.synced = False
                if not self._stopping:
                    await asyncio.sleep(self.retry_delay)
            finally:
                self.synced = False
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]

    def _apply(self, data: Any) -> None:
        try:
            event = json.loads(data)
            self._revoked[str(event["sid"])] = float(event["until"])
        except (ValueError, KeyError, TypeError):
            log.warning("ignored a malformed revocation message")

    def _prune(self) -> None:
        if time.monotonic() - self._last_prune < 60:
            return
        self._last_prune = time.monotonic()
        now = time.time()
        self._revoked = {sid: until for sid, until in self._revoked.items() if until > now}
