"""Signing keys as the system names them: RSA public keys, their JWK form and PEM bundles.

The ``kid`` of every key is its RFC 7638 thumbprint (:func:`key_id`), derived the same way by
the customer service (which signs), its JWKS, the gateway's rendered credentials and every
verifier, so no key id is ever configured beside a key.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import time
from collections.abc import Iterable
from typing import Any

import aiohttp
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import (
    RSAPrivateKey,
    RSAPublicKey,
    RSAPublicNumbers,
)

log = logging.getLogger("svc_core.auth")

ALGORITHM = "RS256"


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
