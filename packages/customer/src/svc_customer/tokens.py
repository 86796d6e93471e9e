"""Access tokens: the RS256 signing key, issuing, and the JWKS that publishes its public half.

The ``kid`` of every key is its RFC 7638 thumbprint (``svc_core.auth.key_id``), derived the
same way by the gateway and every service, so no key id is ever configured beside a key.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import secrets
import time
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from svc_core import SettingsError
from svc_core.auth import ALGORITHM, key_id, load_public_keys, public_jwk
from svc_customer.settings import CustomerSettings

log = logging.getLogger("svc_customer.tokens")


def _parse_private_key(pem: bytes, variable: str) -> rsa.RSAPrivateKey:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        raise SettingsError(f"{variable}: not an unencrypted PEM private key") from None
    if not isinstance(key, rsa.RSAPrivateKey) or key.key_size < 2048:
        raise SettingsError(f"{variable}: an RSA private key of at least 2048 bits is required")
    return key


async def load_signing_key(settings: CustomerSettings) -> rsa.RSAPrivateKey:
    """The configured private key; in development/test without one, a fresh in-memory key."""
    loop = asyncio.get_running_loop()
    if settings.jwt_private_key_file is not None:
        path = settings.jwt_private_key_file
        try:
            pem = await loop.run_in_executor(None, path.read_bytes)
        except OSError as exc:
            raise SettingsError(
                f"JWT_PRIVATE_KEY_FILE: cannot read {path}: {exc.strerror}"
            ) from None
        return _parse_private_key(pem, "JWT_PRIVATE_KEY_FILE")
    if settings.jwt_private_key:
        return _parse_private_key(settings.jwt_private_key.encode(), "JWT_PRIVATE_KEY")
    if not settings.is_development:  # Settings.check refuses this already; belt and braces
        raise SettingsError("JWT_PRIVATE_KEY_FILE: a signing key is required in production")
    log.warning(
        "no JWT_PRIVATE_KEY_FILE or JWT_PRIVATE_KEY: signing with a key generated in memory; "
        "tokens die with this process and other processes cannot verify them unless they "
        "fetch this instance's JWKS"
    )
    return await loop.run_in_executor(
        None, lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )


def extra_public_keys(settings: CustomerSettings) -> list[rsa.RSAPublicKey]:
    """Still-valid public keys (during a rotation) from JWT_PUBLIC_KEYS / JWT_PUBLIC_KEYS_FILE."""
    pem = settings.jwt_public_keys
    if settings.jwt_public_keys_file is not None:
        pem += "\n" + settings.jwt_public_keys_file.read_text()
    return load_public_keys(pem)


@dataclasses.dataclass(frozen=True)
class IssuedToken:
    token: str
    expires_in: int


class TokenIssuer:
    """Signs access tokens with the active key; publishes every live public key."""

    def __init__(
        self,
        private_key: rsa.RSAPrivateKey,
        *,
        issuer: str,
        ttl: int,
        extra_keys: list[rsa.RSAPublicKey] | None = None,
    ) -> None:
        self._private_key = private_key
        self.public_key = private_key.public_key()
        self.kid = key_id(self.public_key)
        self.issuer = issuer
        self.ttl = ttl
        keys = {self.kid: self.public_key}
        for key in extra_keys or []:
            keys.setdefault(key_id(key), key)
        self.public_keys = list(keys.values())
        self._jwks = {"keys": [public_jwk(key) for key in self.public_keys]}

    def issue(self, *, customer_id: str, username: str, sid: str) -> IssuedToken:
        now = int(time.time())
        payload: dict[str, Any] = {
            "iss": self.issuer,
            "sub": customer_id,
            "username": username,
            "sid": sid,
            "jti": secrets.token_urlsafe(16),
            "iat": now,
            "exp": now + self.ttl,
        }
        token = jwt.encode(
            payload, self._private_key, algorithm=ALGORITHM, headers={"kid": self.kid}
        )
        return IssuedToken(token=token, expires_in=self.ttl)

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        return self._jwks
