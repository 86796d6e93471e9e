"""``Idempotency-Key``: one outcome per (customer, key), replayed on every retry.

- The key is claimed (a unique index on ``(customer_id, key)``) BEFORE anything is charged, so of
  any number of concurrent requests with one key exactly one runs; the others poll for its stored
  outcome and replay it, or answer 409 ``idempotency_in_progress`` once they have waited
  ``IDEMPOTENCY_WAIT_SECONDS``.
- Requests are compared by an HMAC of their canonical JSON body: no card data is kept for it.
- Outcomes that are the request's answer (201, 402, 404, 409) are stored; anything else (a
  dependency down, a bug) releases the key so the client may retry it.
- The first request's answer goes out as any other (its value rendered by the route's response
  schema, or its problem); a replay is the stored status and body, unchanged, as a response of
  its own with ``Idempotent-Replayed: true``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiohttp import web

from svc_core import BadRequest, Conflict, Problem, utcnow
from svc_core.errors import PROBLEM_CONTENT_TYPE
from svc_payment.repository import IdempotencyKeys

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
STORED_PROBLEM_STATUSES = frozenset({402, 404, 409})
POLL_SECONDS = 0.05

T = TypeVar("T")


@dataclasses.dataclass(frozen=True, slots=True)
class Outcome:
    status: int
    body: dict[str, Any]
    content_type: str = "application/json"

    def stored(self) -> dict[str, Any]:
        return {"status": self.status, "body": self.body, "content_type": self.content_type}

    @classmethod
    def from_problem(cls, problem: Problem, request_id: str) -> Outcome:
        return cls(problem.instance_status, problem.body(request_id), PROBLEM_CONTENT_TYPE)

    def replay(self) -> web.Response:
        """The stored answer again, exactly as it was, marked as a replay."""
        return web.json_response(
            self.body,
            status=self.status,
            content_type=self.content_type,
            headers={"Idempotent-Replayed": "true"},
        )


def key_from(request: web.Request) -> str:
    """The request's key: 1-255 printable ASCII characters, else 400."""
    key = request.headers.get(HEADER, "")
    if not key or len(key) > MAX_KEY_LENGTH or not all(" " <= c <= "~" for c in key):
        raise BadRequest(
            f"An {HEADER} header of 1-{MAX_KEY_LENGTH} printable ASCII characters is required.",
            code="idempotency_key_missing",
        )
    return key


def fingerprint(secret: str, body: Any) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hmac.new(secret.encode(), canonical.encode(), hashlib.sha256).hexdigest()


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


class Idempotency:
    def __init__(self, keys: IdempotencyKeys, *, secret: str, ttl: int, wait: float) -> None:
        self.keys = keys
        self.secret = secret
        self.ttl = ttl
        self.wait = wait

    async def run_once(
        self,
        *,
        customer_id: str,
        key: str,
        body: Any,
        request_id: str,
        action: Callable[[], Awaitable[T]],
        status: int,
        render: Callable[[T], dict[str, Any]],
    ) -> T | web.Response:
        """Run ``action`` once for (customer, key) and store its outcome: ``render(value)`` with
        ``status``, or the problem it raised. The first request gets ``action``'s value (or its
        problem, raised); every duplicate gets the stored outcome as a replayed response."""
        deadline = asyncio.get_running_loop().time() + self.wait
        digest = fingerprint(self.secret, body)
        while True:
            if await self.keys.claim(customer_id, key, digest, now=utcnow(), ttl=self.ttl):
                # Shielded: a request cancelled mid-way (client gone, shutdown) still finishes
                # its charge and records the outcome, so a retry replays it instead of meeting
                # a half-done claim.
                settling = self._settle(customer_id, key, request_id, action, status, render)
                settled = await asyncio.shield(settling)
                if isinstance(settled, Problem):
                    raise settled
                return settled
            outcome = await self._wait_for_first(customer_id, key, digest, deadline)
            if outcome is not None:
                return outcome.replay()
            # The first request left nothing to replay (released, or expired): claim it anew.

    async def _wait_for_first(
        self, customer_id: str, key: str, digest: str, deadline: float
    ) -> Outcome | None:
        """The stored outcome to replay; None when the key is free again."""
        loop = asyncio.get_running_loop()
        while True:
            record = await self.keys.get(customer_id, key)
            if record is None:
                return None
            if _aware(record["expires_at"]) <= utcnow():
                await self.keys.drop_expired(record["_id"], utcnow())
                return None
            if not hmac.compare_digest(record["fingerprint"], digest):
                raise Problem(
                    "This Idempotency-Key was already used with a different request body.",
                    status=422,
                    code="idempotency_key_reused",
                    extra={"errors": {HEADER: ["Already used with a different body."]}},
                )
            if record["state"] == "completed":
                stored = record["response"]
                return Outcome(stored["status"], stored["body"], stored["content_type"])
            if loop.time() >= deadline:
                raise Conflict(
                    "A request with this Idempotency-Key is still running; retry later.",
                    code="idempotency_in_progress",
                )
            await asyncio.sleep(min(POLL_SECONDS, max(0.0, deadline - loop.time())))

    async def _settle(
        self,
        customer_id: str,
        key: str,
        request_id: str,
        action: Callable[[], Awaitable[T]],
        status: int,
        render: Callable[[T], dict[str, Any]],
    ) -> T | Problem:
        """``action``'s value, or the problem it raised that is its answer (stored either way)."""
        try:
            value = await action()
            outcome = Outcome(status, render(value))
        except Problem as problem:
            if problem.instance_status not in STORED_PROBLEM_STATUSES:
                await self.keys.release(customer_id, key)
                raise
            await self.keys.complete(
                customer_id, key, Outcome.from_problem(problem, request_id).stored()
            )
            return problem
        except BaseException:
            await self.keys.release(customer_id, key)
            raise
        await self.keys.complete(customer_id, key, outcome.stored())
        return value
