"""The customer service's parts, built once at startup; handlers reach them through ``PARTS``."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from svc_core import Parts, keys
from svc_customer.domain import Services
from svc_customer.passwords import PasswordHasher
from svc_customer.repository import CustomerRepository
from svc_customer.sessions import SessionStore
from svc_customer.settings import CustomerSettings
from svc_customer.throttle import Throttle
from svc_customer.tokens import TokenIssuer, extra_public_keys, load_signing_key


async def build(app: web.Application, settings: CustomerSettings) -> AsyncIterator[Services]:
    redis = app[keys.REDIS]
    issuer = TokenIssuer(
        await load_signing_key(settings),
        issuer=settings.jwt_issuer,
        ttl=settings.access_token_ttl,
        extra_keys=extra_public_keys(settings),
    )
    # The service verifies its own tokens on its protected routes (the chassis' auth context
    # ran before this one and only knows JWT_PUBLIC_KEYS).
    for public_key in issuer.public_keys:
        app[keys.VERIFIER].keys.add(public_key)
    hasher = PasswordHasher(
        pepper=settings.password_pepper,
        rounds=settings.bcrypt_rounds,
        threads=settings.bcrypt_threads,
    )
    await hasher.dummy_hash()  # computed once now, so the first unknown-user login is not faster

    def throttle(kind: str) -> Throttle:
        return Throttle(
            redis,
            kind,
            limit=settings.login_throttle_limit,
            window=settings.login_throttle_window,
        )

    yield Services(
        settings=settings,
        customers=CustomerRepository(app[keys.MONGO_DB]),
        hasher=hasher,
        issuer=issuer,
        sessions=SessionStore(
            redis,
            refresh_ttl=settings.refresh_token_ttl,
            access_ttl=settings.access_token_ttl,
            revocations=app[keys.REVOCATIONS],
        ),
        login_throttle=throttle("login"),
        password_throttle=throttle("password"),
    )
    hasher.close()


PARTS = Parts(build)
