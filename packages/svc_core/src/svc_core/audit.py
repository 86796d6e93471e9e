"""The audit log: security-relevant events as structured records in the service's own MongoDB.

A service declares ``Audit()`` in its manifest (its settings class inherits
:class:`AuditSettings`) and records what happened where it happens::

    async with audit.event(request, "auth.login") as event:   # success, or the problem raised
        event.by(customer_id)          # who did it (default: the token's subject, or anonymous)
        event.about("customer", customer_id)
        ...

    await audit.record(request, "auth.refresh_reused", outcome="denied", target=("customer", cid))

One record per event, in the collection ``audit`` of the service's database::

    {"_id", "time", "service", "action", "outcome": "success" | "failure" | "denied",
     "actor": {"type": "customer" | "anonymous" | "system", "id", "ip"},
     "target": {"type", "id"} | None, "request_id", "trace_id", "detail": {...}}

``time`` carries a TTL index (``AUDIT_RETENTION_DAYS``). ``detail`` holds short scalars only,
and never a key that names a secret (password, token, card, cvc, secret, key...): such a key is
dropped before the record is written. The client IP is ``X-Real-IP`` (set by Kong) when the
peer is a trusted proxy (``AUDIT_TRUSTED_PROXIES``), else the peer's own address.

Writing never fails the user's request: the insert is awaited for at most
``AUDIT_WRITE_TIMEOUT`` seconds (so a record is normally stored before the response goes out);
past that it goes on in the background. Once a write has failed or run late, the store is taken
to be down: later requests no longer wait for their writes (they still run, in the background)
until one succeeds again, so an outage costs each request nothing after the first, and at most
``MAX_PENDING`` writes run at once (past that a record is dropped). A write that fails, runs
late or is dropped is logged (no record content beyond action, outcome and request id) and
counted in ``svc_audit_failures_total`` (labels ``service``, ``action``, ``reason``: ``error``
not stored, ``timeout`` the request stopped waiting, ``dropped`` never attempted), for an alert.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import ipaddress
import logging
import re
from collections.abc import AsyncIterator, Iterator, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

from aiohttp import web
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from svc_core import keys, tracing
from svc_core.clock import new_id, to_rfc3339, utcnow
from svc_core.errors import Problem
from svc_core.logs import request_id_var
from svc_core.mongo import Index
from svc_core.settings import Settings, SettingsError, env

if TYPE_CHECKING:
    from svc_core.mongo import Database

log = logging.getLogger("svc_core.audit")

COLLECTION = "audit"
Outcome = Literal["success", "failure", "denied"]
OUTCOMES: tuple[str, ...] = ("success", "failure", "denied")
#: problems that mean "not allowed" (a policy said no) rather than "did not work"
_DENIED_STATUSES = frozenset({403, 429})
#: detail keys that could hold a secret: never stored
SECRET_KEY = re.compile(
    r"pass|token|secret|card|cvc|cvv|pan\b|number|key|authorization|cookie|credential|pepper",
    re.IGNORECASE,
)
_MAX_DETAIL_ITEMS = 16
_MAX_TEXT = 200
_PRIVATE_NETWORKS = (
    "127.0.0.0/8",
    "::1/128",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "fc00::/7",
)
_IP_TEXT = re.compile(r"[0-9A-Fa-f:.]{2,45}")


class AuditSettings(Settings):
    audit_retention_days: int = env(
        "AUDIT_RETENTION_DAYS", 365, help="days an audit record is kept (a TTL index on its time)"
    )
    audit_write_timeout: float = env(
        "AUDIT_WRITE_TIMEOUT",
        1.0,
        help="seconds a request waits for its audit record to be stored; past it the write "
        "goes on in the background and counts in svc_audit_failures_total{reason=timeout}",
    )
    audit_trusted_proxies: tuple[str, ...] = env(
        "AUDIT_TRUSTED_PROXIES",
        _PRIVATE_NETWORKS,
        help="networks (CIDR) whose X-Real-IP header names the client (Kong's); others are "
        "recorded by their own address",
    )

    def check(self) -> None:
        super().check()
        if self.audit_retention_days < 1:
            raise SettingsError("AUDIT_RETENTION_DAYS: must be at least 1")
        if not 0 < self.audit_write_timeout <= 30:
            raise SettingsError("AUDIT_WRITE_TIMEOUT: must be more than 0 and at most 30 seconds")
        for network in self.audit_trusted_proxies:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError:
                raise SettingsError(
                    f"AUDIT_TRUSTED_PROXIES: {network!r} is not a network (e.g. 10.0.0.0/8)"
                ) from None

    def trusted_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        return tuple(ipaddress.ip_network(n, strict=False) for n in self.audit_trusted_proxies)


def indexes(retention_days: int) -> list[Index]:
    """The audit collection's indexes: the TTL on ``time``, and the operator's lookups."""
    return [
        Index(
            COLLECTION,
            [("time", 1)],
            name="audit_ttl",
            expire_after_seconds=retention_days * 86400,
        ),
        Index(COLLECTION, [("action", 1), ("time", -1)], name="audit_action"),
        Index(COLLECTION, [("actor.id", 1), ("time", -1)], name="audit_actor"),
    ]


async def apply_indexes(db: Database, retention_days: int) -> None:
    """Create the indexes; a retention that changed is applied to the existing TTL index
    (``collMod``), since MongoDB refuses to create it again with other options."""
    from pymongo.errors import OperationFailure

    for index in indexes(retention_days):
        try:
            await db[index.collection].create_index(list(index.keys), **index.options())
        except OperationFailure as exc:
            if index.expire_after_seconds is None or exc.code not in (85, 86):
                raise
            await db.command(
                "collMod",
                index.collection,
                index={"name": index.name, "expireAfterSeconds": index.expire_after_seconds},
            )


# --- what a record holds --------------------------------------------------------------------


def scrub(detail: Mapping[str, Any] | None) -> dict[str, Any]:
    """``detail`` as stored: short scalars under names that cannot hold a secret."""
    clean: dict[str, Any] = {}
    for name, value in (detail or {}).items():
        if len(clean) >= _MAX_DETAIL_ITEMS:
            break
        if not isinstance(name, str) or SECRET_KEY.search(name):
            log.warning("audit detail dropped: its name may hold a secret", extra={"field": name})
            continue
        if isinstance(value, bool | int | float) or value is None:
            clean[name] = value
        elif isinstance(value, str):
            clean[name] = value[:_MAX_TEXT]
        else:
            clean[name] = str(value)[:_MAX_TEXT]
    return clean


def _ip(text: str | None) -> str | None:
    if not text or not _IP_TEXT.fullmatch(text.strip()):
        return None
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    # A dual-stack listener sees IPv4 peers as ::ffff:a.b.c.d: the IPv4 address it is (so
    # AUDIT_TRUSTED_PROXIES' IPv4 networks hold it, and --actor finds it by its usual form).
    mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
    return str(mapped or address)


def outcome_of(problem: Problem) -> Outcome:
    return "denied" if problem.instance_status in _DENIED_STATUSES else "failure"


#: writes running at once, at most (each holds its record until the store answers or gives up)
MAX_PENDING = 1000


class AuditLog:
    """The service's audit log at ``app[keys.AUDIT]``: writes records, counts what it could not."""

    def __init__(
        self,
        collection: Any,
        service: str,
        *,
        timeout: float = 1.0,
        trusted: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = (),
        max_pending: int = MAX_PENDING,
    ) -> None:
        self.collection = collection
        self.service = service
        self.timeout = timeout
        self.trusted = trusted
        self.written: dict[tuple[str, str], int] = {}
        self.failures: dict[tuple[str, str], int] = {}
        self.max_pending = max_pending
        self._pending: set[asyncio.Task[None]] = set()
        #: the last write failed or ran late: requests stop waiting until one succeeds again
        self.store_down = False

    # --- who ---------------------------------------------------------------------------------

    def client_ip(self, request: web.BaseRequest) -> str | None:
        """Kong's ``X-Real-IP`` when the peer is a trusted proxy, else the peer's address."""
        peer = _ip(request.remote)
        if peer is not None and self.trusted and "X-Real-IP" in request.headers:
            address = ipaddress.ip_address(peer)
            if any(address in network for network in self.trusted):
                forwarded = _ip(request.headers["X-Real-IP"])
                if forwarded is not None:
                    return forwarded
        return peer

    def actor(self, request: web.BaseRequest | None, customer_id: str | None) -> dict[str, Any]:
        if request is None:
            return {"type": "system", "id": None, "ip": None}
        if customer_id is None:
            claims = request.get(keys.CLAIMS)
            customer_id = claims.sub if claims is not None else None
        return {
            "type": "customer" if customer_id else "anonymous",
            "id": customer_id or None,
            "ip": self.client_ip(request),
        }

    # --- records -----------------------------------------------------------------------------

    def make(
        self,
        request: web.BaseRequest | None,
        action: str,
        *,
        outcome: Outcome,
        target: tuple[str, str | None] | None = None,
        actor: str | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        if outcome not in OUTCOMES:
            raise ValueError(f"audit outcome {outcome!r}: one of {', '.join(OUTCOMES)}")
        request_id = request.get(keys.REQUEST_ID) if request is not None else None
        ids = tracing.current_ids() if tracing.enabled(self.service) else None
        return {
            "_id": new_id(),
            "time": utcnow(),
            "service": self.service,
            "action": action,
            "outcome": outcome,
            "actor": self.actor(request, actor),
            "target": None if target is None else {"type": target[0], "id": target[1]},
            "request_id": request_id or request_id_var.get(),
            "trace_id": ids[0] if ids is not None else None,
            "detail": scrub(detail),
        }

    async def record(
        self,
        request: web.BaseRequest | None,
        action: str,
        *,
        outcome: Outcome,
        target: tuple[str, str | None] | None = None,
        actor: str | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        """Store one record (``request`` None: the service itself acted, e.g. an event handler).
        Never raises; waits at most ``timeout`` seconds."""
        try:
            doc = self.make(
                request, action, outcome=outcome, target=target, actor=actor, detail=detail
            )
        except Exception:  # a bug in what the caller passed must not fail its request either
            self._failed(action, outcome, "error", None, exc_info=True)
            return
        await self.write(doc)

    async def write(self, doc: dict[str, Any]) -> None:
        if len(self._pending) >= self.max_pending:  # the store is down and writes pile up
            self._failed(doc["action"], doc["outcome"], "dropped", doc["request_id"])
            return
        task = asyncio.ensure_future(self._insert(doc))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
        if self.store_down:  # no request waits on a store that is down; the write still runs
            return
        done, _ = await asyncio.wait({task}, timeout=self.timeout)
        if not done:
            self.store_down = True
            self._failed(doc["action"], doc["outcome"], "timeout", doc["request_id"])

    async def _insert(self, doc: dict[str, Any]) -> None:
        try:
            await self.collection.insert_one(doc)
        except asyncio.CancelledError:
            self._failed(doc["action"], doc["outcome"], "error", doc["request_id"])
            raise
        except Exception as exc:
            self.store_down = True
            self._failed(doc["action"], doc["outcome"], "error", doc["request_id"], error=exc)
            return
        self.store_down = False
        key = (doc["action"], doc["outcome"])
        self.written[key] = self.written.get(key, 0) + 1

    def _failed(
        self,
        action: str,
        outcome: str,
        reason: str,
        request_id: str | None,
        *,
        error: BaseException | None = None,
        exc_info: bool = False,
    ) -> None:
        key = (action, reason)
        self.failures[key] = self.failures.get(key, 0) + 1
        log.error(
            {"error": "audit record not stored", "timeout": "audit record late"}.get(
                reason, "audit record dropped"
            ),
            extra={
                "audit_action": action,
                "audit_outcome": outcome,
                "reason": reason,
                "error": type(error).__name__ if error is not None else None,
                "audit_request_id": request_id,
            },
            exc_info=exc_info,
        )

    async def drain(self, timeout: float) -> None:  # noqa: ASYNC109 - a bound at shutdown
        """At shutdown: let writes still running finish for at most ``timeout`` seconds, then
        give up on the rest (each counted and logged as not stored)."""
        if not self._pending:
            return
        _, late = await asyncio.wait(set(self._pending), timeout=timeout)
        for task in late:
            task.cancel()
        if late:
            await asyncio.wait(late)

    # --- metrics -----------------------------------------------------------------------------

    def collector(self) -> Collector:
        return _AuditCollector(self)


class _AuditCollector(Collector):
    def __init__(self, log: AuditLog) -> None:
        self.log = log

    def collect(self) -> Iterator[CounterMetricFamily]:
        records = CounterMetricFamily(
            "svc_audit_records",
            "Audit records stored.",
            labels=["service", "action", "outcome"],
        )
        for (action, outcome), count in list(self.log.written.items()):
            records.add_metric([self.log.service, action, outcome], count)
        failures = CounterMetricFamily(
            "svc_audit_failures",
            "Audit records not stored (error) or not stored in time (timeout).",
            labels=["service", "action", "reason"],
        )
        for (action, reason), count in list(self.log.failures.items()):
            failures.add_metric([self.log.service, action, reason], count)
        yield records
        yield failures


# --- what handlers call ---------------------------------------------------------------------


def of(where: web.Request | web.Application) -> AuditLog:
    app = where.app if isinstance(where, web.Request) else where
    found = app.get(keys.AUDIT)
    if found is None:
        raise RuntimeError("this service records audit events: declare Audit() in its manifest")
    return found


async def record(
    request: web.Request,
    action: str,
    *,
    outcome: Outcome,
    target: tuple[str, str | None] | None = None,
    actor: str | None = None,
    detail: Mapping[str, Any] | None = None,
) -> None:
    """Store one audit record about ``request`` (see the module docstring). Never raises."""
    await of(request).record(
        request, action, outcome=outcome, target=target, actor=actor, detail=detail
    )


@dataclasses.dataclass
class Event:
    """An event being audited (see :func:`event`); the code that knows more fills it in."""

    action: str
    target: tuple[str, str | None] | None = None
    actor: str | None = None
    outcome: Outcome | None = None
    detail: dict[str, Any] = dataclasses.field(default_factory=dict)

    def by(self, customer_id: str) -> Event:
        """The customer who acted (default: the request's token subject, else anonymous)."""
        self.actor = customer_id
        return self

    def about(self, kind: str, ident: str | None) -> Event:
        """What was acted on."""
        self.target = (kind, ident)
        return self


class _EventContext:
    def __init__(self, request: web.Request, event: Event) -> None:
        self.request = request
        self.event = event
        self.log = of(request)  # no Audit() in the manifest: fails here, loudly

    async def __aenter__(self) -> Event:
        return self.event

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        event = self.event
        outcome: Outcome
        if exc is None:
            outcome = event.outcome or "success"
        elif isinstance(exc, Problem):
            outcome = event.outcome or outcome_of(exc)
            event.detail.setdefault("reason", exc.instance_code)
        elif isinstance(exc, asyncio.CancelledError | GeneratorExit):
            return  # the client went away: nothing was decided for it
        else:
            outcome = "failure"
            event.detail.setdefault("reason", "internal_error")
        await self.log.record(
            self.request,
            event.action,
            outcome=outcome,
            target=event.target,
            actor=event.actor,
            detail=event.detail,
        )


def event(
    request: web.Request, action: str, *, target: tuple[str, str | None] | None = None
) -> _EventContext:
    """``async with audit.event(request, action) as event:``: one record when the block ends,
    ``success`` unless it raised; a :class:`~svc_core.Problem` gives ``denied`` (403, 429) or
    ``failure`` (any other), with its code as ``detail.reason``; ``event.outcome`` set in the
    block wins. A request cancelled in the block (its client went away) records nothing."""
    return _EventContext(request, Event(action, target=target))


# --- reading (svc-core audit) ---------------------------------------------------------------


def query(
    *,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    actor: str | None = None,
    action: str | None = None,
    target: str | None = None,
    outcome: str | None = None,
) -> dict[str, Any]:
    """The MongoDB filter of an operator's question. ``actor`` matches the actor's id or IP;
    ``action`` ending in ``.*`` matches every action under that prefix (``auth.*``)."""
    found: dict[str, Any] = {}
    if since is not None or until is not None:
        found["time"] = {}
        if since is not None:
            found["time"]["$gte"] = since
        if until is not None:
            found["time"]["$lt"] = until
    if actor is not None:
        found["$or"] = [{"actor.id": actor}, {"actor.ip": actor}]
    if action is not None:
        if action.endswith(".*"):
            found["action"] = {"$regex": "^" + re.escape(action[:-1])}
        else:
            found["action"] = action
    if target is not None:
        found["target.id"] = target
    if outcome is not None:
        found["outcome"] = outcome
    return found


async def read(db: Database, where: dict[str, Any], *, limit: int) -> AsyncIterator[dict[str, Any]]:
    """The matching records, newest first, at most ``limit``, as JSON-ready dicts."""
    cursor = db[COLLECTION].find(where).sort([("time", -1), ("_id", -1)]).limit(limit)
    async for doc in cursor:
        yield public(doc)


def public(doc: Mapping[str, Any]) -> dict[str, Any]:
    """A stored record as an operator reads it (``time`` in RFC 3339, ``_id`` as ``id``)."""
    out = {"id": doc["_id"]}
    out.update({k: v for k, v in doc.items() if k != "_id"})
    if isinstance(out.get("time"), dt.datetime):
        out["time"] = to_rfc3339(out["time"])
    return out
