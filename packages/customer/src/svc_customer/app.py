"""create_app: the customer service composed on the chassis."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from svc_core import create_app as create_service
from svc_core import keys
from svc_customer.domain import Services
from svc_customer.passwords import PasswordHasher
from svc_customer.repository import INDEXES, CustomerRepository
from svc_customer.sessions import SessionStore
from svc_customer.settings import CustomerSettings
from svc_customer.throttle import Throttle
from svc_customer.tokens import TokenIssuer, extra_public_keys, load_signing_key
from svc_customer.typedefs import SERVICES
from svc_customer.views import routes


async def _services_context(app: web.Application) -> AsyncIterator[None]:
    settings = app[keys.SETTINGS]
    assert isinstance(settings, CustomerSettings)
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

    app[SERVICES] = Services(
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
    yield
    hasher.close()


def create_app(settings: CustomerSettings | None = None) -> web.Application:
    settings = settings or CustomerSettings.from_env()
    return create_service(
        settings,
        routes,
        title="customer service",
        mongo_indexes=INDEXES,
        redis=True,
        contexts=[_services_context],
    )
