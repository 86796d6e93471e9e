"""The customer service's settings: the chassis' plus passwords, tokens, sessions, throttling."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from svc_core import AuditSettings, AuthSettings, MongoSettings, SettingsError, env

MAX_ACCESS_TOKEN_TTL = 900  # api.md: exp at most 15 minutes after iat


class CustomerSettings(MongoSettings, AuthSettings, AuditSettings):
    jwt_private_key_file: Path | None = env(
        "JWT_PRIVATE_KEY_FILE", None, help="PEM (PKCS#8) RSA private key that signs access tokens"
    )
    jwt_private_key: str = env(
        "JWT_PRIVATE_KEY", "", help="the same key as PEM text (use one of the two)"
    )
    access_token_ttl: int = env("ACCESS_TOKEN_TTL", 900, help="access token lifetime, <= 900 s")
    refresh_token_ttl: int = env("REFRESH_TOKEN_TTL", 30 * 24 * 3600, help="refresh token life")
    password_pepper: str = env(
        "PASSWORD_PEPPER",
        "dev-only-pepper-change-me",
        secret=True,
        help="HMAC key of the password pre-hash; changing it invalidates every password",
    )
    bcrypt_rounds: int = env("BCRYPT_ROUNDS", 12, help="bcrypt cost (4..31)")
    bcrypt_threads: int = env("BCRYPT_THREADS", 0, help="threads hashing passwords; 0: CPUs")
    login_throttle_limit: int = env("LOGIN_THROTTLE_LIMIT", 5, help="failures before 429")
    login_throttle_window: int = env(
        "LOGIN_THROTTLE_WINDOW", 900, help="seconds failures count for, and the lockout length"
    )

    def check(self) -> None:
        super().check()
        if not 1 <= self.access_token_ttl <= MAX_ACCESS_TOKEN_TTL:
            raise SettingsError(f"ACCESS_TOKEN_TTL: must be 1..{MAX_ACCESS_TOKEN_TTL} seconds")
        if self.refresh_token_ttl < 1:
            raise SettingsError("REFRESH_TOKEN_TTL: must be a positive number of seconds")
        if not 4 <= self.bcrypt_rounds <= 31:
            raise SettingsError("BCRYPT_ROUNDS: must be 4..31")
        if self.bcrypt_threads < 0:
            raise SettingsError("BCRYPT_THREADS: must be 0 (one per CPU) or more")
        if self.login_throttle_limit < 1 or self.login_throttle_window < 1:
            raise SettingsError("LOGIN_THROTTLE_LIMIT / LOGIN_THROTTLE_WINDOW: must be positive")
        if self.jwt_private_key and self.jwt_private_key_file is not None:
            raise SettingsError("JWT_PRIVATE_KEY_FILE / JWT_PRIVATE_KEY: set only one of them")
        if not self.is_development and not self.has_signing_key:
            raise SettingsError(
                "JWT_PRIVATE_KEY_FILE: a signing key is required in production "
                "(or JWT_PRIVATE_KEY with the PEM text)"
            )

    @property
    def has_signing_key(self) -> bool:
        return bool(self.jwt_private_key) or self.jwt_private_key_file is not None

    def describe(self) -> dict[str, Any]:
        described = super().describe()
        described["jwt_private_key"] = "***" if self.jwt_private_key else ""
        return described
