"""The rules: registration, login with throttling, token refresh, logout, profile and password.

Handlers call these keyword-only functions with the service's parts (:class:`Services`) and
render what they return; every refusal is a :class:`svc_core.Problem` the chassis renders.
Where the handler audits the call, the function fills in the audit event (``audit``): who acted,
on what, and a lockout as ``auth.throttled``.
"""

from __future__ import annotations

import dataclasses

from svc_core import (
    Claims,
    Conflict,
    Forbidden,
    NotFound,
    Problem,
    TooManyRequests,
    new_id,
    utcnow,
)
from svc_core.audit import Event
from svc_customer.passwords import PasswordHasher
from svc_customer.repository import (
    Customer,
    CustomerRepository,
    DuplicateField,
    normalise_email,
)
from svc_customer.sessions import SessionStore
from svc_customer.settings import CustomerSettings
from svc_customer.throttle import Throttle, Throttled
from svc_customer.tokens import TokenIssuer

# --- refusals -------------------------------------------------------------------------------


class InvalidCredentials(Problem):
    """The same status, title, detail and code for an unknown account and a wrong password."""

    status = 401
    code = "invalid_credentials"

    def default_detail(self) -> str:
        return "The username or email, or the password, is incorrect."


class RefreshTokenInvalid(Problem):
    status = 401
    code = "refresh_token_invalid"

    def default_detail(self) -> str:
        return "The refresh token is unknown or has expired; log in again."


class RefreshTokenReused(Problem):
    """``sid`` and ``customer_id``: the session revoked for it (for the audit log, not shown)."""

    status = 401
    code = "refresh_token_reused"

    def __init__(self, *, sid: str = "", customer_id: str = "") -> None:
        super().__init__()
        self.sid = sid
        self.customer_id = customer_id

    def default_detail(self) -> str:
        return "This refresh token was already used; its session has been revoked."


class RefreshSessionRevoked(Problem):
    status = 401
    code = "session_revoked"

    def default_detail(self) -> str:
        return "This session has been revoked; log in again."


class UsernameTaken(Conflict):
    code = "username_taken"

    def default_detail(self) -> str:
        return "That username is already taken."


class EmailTaken(Conflict):
    code = "email_taken"

    def default_detail(self) -> str:
        return "That email address is already registered."


class InvalidCurrentPassword(Forbidden):
    code = "invalid_current_password"

    def default_detail(self) -> str:
        return "The current password is incorrect."


def _conflict(exc: DuplicateField) -> Conflict:
    return UsernameTaken() if exc.field == "username" else EmailTaken()


# --- the service's parts --------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Services:
    settings: CustomerSettings
    customers: CustomerRepository
    hasher: PasswordHasher
    issuer: TokenIssuer
    sessions: SessionStore
    login_throttle: Throttle
    password_throttle: Throttle


@dataclasses.dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int

    token_type = "Bearer"  # noqa: S105 - the token type, not a secret


# --- use cases ------------------------------------------------------------------------------


async def register(svc: Services, *, username: str, email: str, password: str) -> Customer:
    password_hash = await svc.hasher.hash(password)
    try:
        return await svc.customers.insert(
            customer_id=new_id(),
            username=username,
            email=normalise_email(email),
            password_hash=password_hash,
            now=utcnow(),
        )
    except DuplicateField as exc:
        raise _conflict(exc) from None


def _throttle_subject(customer: Customer | None, identifier: str) -> str:
    # Username and email forms of one account share its id; unknown identifiers are counted
    # under their normalised form, the same way, so a 429 says nothing about existence.
    return f"id:{customer['_id']}" if customer else f"name:{identifier.lower()}"


async def login(svc: Services, *, identifier: str, password: str, audit: Event) -> TokenPair:
    customer = await svc.customers.find_by_identifier(identifier)
    # The account, when the identifier names one; never the identifier itself (a password
    # typed into the username field must not reach the audit log).
    audit.about("customer", customer["_id"] if customer else None)
    try:
        async with svc.login_throttle.attempt(_throttle_subject(customer, identifier)) as attempt:
            # Always one bcrypt check (against a dummy hash for an unknown account).
            matches = await svc.hasher.verify(
                password, customer["password_hash"] if customer else None
            )
            if customer is None or not matches:
                attempt.failed()
                raise InvalidCredentials()
            attempt.succeeded()
    except Throttled as exc:
        _throttled(audit, "login", exc)
        raise TooManyRequests(
            "Too many failed logins; try again later.",
            retry_after=exc.retry_after,
            code="login_throttled",
        ) from None
    audit.by(customer["_id"])
    session = await svc.sessions.open(customer["_id"])
    return _pair(svc, customer, session.sid, session.refresh_token)


def _throttled(audit: Event, kind: str, exc: Throttled) -> None:
    audit.action = "auth.throttled"
    audit.detail.update(kind=kind, retry_after=exc.retry_after)


def _pair(svc: Services, customer: Customer, sid: str, refresh_token: str) -> TokenPair:
    access = svc.issuer.issue(customer_id=customer["_id"], username=customer["username"], sid=sid)
    return TokenPair(access.token, refresh_token, access.expires_in)


async def refresh(svc: Services, *, refresh_token: str) -> TokenPair:
    rotation = await svc.sessions.rotate(refresh_token)
    if rotation.status == "revoked":
        raise RefreshSessionRevoked()
    if rotation.status == "reused":
        raise RefreshTokenReused(sid=rotation.sid, customer_id=rotation.customer_id)
    if rotation.status != "ok":
        raise RefreshTokenInvalid()
    customer = await svc.customers.get(rotation.customer_id)
    if customer is None:  # the account is gone: its session must not live on
        await svc.sessions.revoke(rotation.customer_id, rotation.sid)
        raise RefreshTokenInvalid()
    return _pair(svc, customer, rotation.sid, rotation.refresh_token)


async def logout(svc: Services, *, claims: Claims) -> None:
    await svc.sessions.revoke(claims.sub, claims.sid)


async def profile(svc: Services, *, customer_id: str) -> Customer:
    customer = await svc.customers.get(customer_id)
    if customer is None:
        raise NotFound("This customer does not exist.")
    return customer


async def change_email(svc: Services, *, customer_id: str, email: str) -> Customer:
    """Changing only the case of one's own email is no conflict: emails are stored lower-cased,
    so the unique index sees the same value on the same document."""
    try:
        customer = await svc.customers.set_email(customer_id, normalise_email(email), now=utcnow())
    except DuplicateField:
        raise EmailTaken() from None
    if customer is None:
        raise NotFound("This customer does not exist.")
    return customer


async def change_password(
    svc: Services, *, claims: Claims, current: str, new: str, audit: Event
) -> None:
    """Check the current password (throttled like login), store the new one, and revoke every
    other session of the customer; the caller's own session is kept."""
    customer = await profile(svc, customer_id=claims.sub)
    try:
        async with svc.password_throttle.attempt(f"id:{customer['_id']}") as attempt:
            if not await svc.hasher.verify(current, customer["password_hash"]):
                attempt.failed()
                audit.outcome = "failure"  # a wrong password, not a policy's refusal
                raise InvalidCurrentPassword()
            attempt.succeeded()
    except Throttled as exc:
        _throttled(audit, "password_change", exc)
        raise TooManyRequests(
            "Too many wrong current passwords; try again later.",
            retry_after=exc.retry_after,
            code="password_change_throttled",
        ) from None
    new_hash = await svc.hasher.hash(new)
    await svc.customers.set_password_hash(customer["_id"], new_hash, now=utcnow())
    revoked = await svc.sessions.revoke_others(customer["_id"], keep=claims.sid)
    audit.detail["sessions_revoked"] = len(revoked)
