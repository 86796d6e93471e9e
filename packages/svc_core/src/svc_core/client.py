"""Service-to-service HTTP: the app's pooled session, timeouts, bounded retries of idempotent
calls, and the caller's request id and token forwarded.

    orders = ServiceClient(app[keys.HTTP], settings.order_service_url)
    resp = await orders.request("GET", f"/orders/{order_id}", request=request)
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
from typing import Any

import aiohttp
from aiohttp import web

from svc_core import keys, tracing
from svc_core.errors import DependencyUnavailable
from svc_core.logs import request_id_var

log = logging.getLogger("svc_core.client")

IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
RETRY_STATUSES = frozenset({502, 503, 504})


@dataclasses.dataclass(frozen=True)
class ServiceResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        import json

        return json.loads(self.body) if self.body else None


class ServiceClient:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        *,
        timeout: float = 5.0,
        retries: int = 2,
        backoff: float = 0.1,
    ) -> None:
        self.session = session
        self.base_url = base_url.rstrip("/")
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.retries = retries
        self.backoff = backoff

    async def request(
        self,
        method: str,
        path: str,
        *,
        request: web.Request | None = None,
        json: Any = None,
        headers: dict[str, str] | None = None,
        token: str | None = None,
    ) -> ServiceResponse:
        """Call ``path``; idempotent methods are retried on connection errors and 502/503/504.

        Raises :class:`DependencyUnavailable` when the service cannot be reached.
        """
        method = method.upper()
        sent = dict(headers or {})
        request_id = request_id_var.get()
        if request_id:
            sent.setdefault("X-Request-ID", request_id)
        if token is None and request is not None and keys.CLAIMS in request:
            token = request[keys.CLAIMS].token
        if token:
            sent["Authorization"] = f"Bearer {token}"
        attempts = 1 + (self.retries if method in IDEMPOTENT else 0)
        url = self.base_url + path
        for attempt in range(1, attempts + 1):
            try:
                with tracing.client_span(method, url, sent) as span:
                    async with self.session.request(
                        method, url, json=json, headers=sent, timeout=self.timeout
                    ) as resp:
                        body = await resp.read()
                        if span is not None:
                            span.set_attribute("http.response.status_code", resp.status)
                        if resp.status in RETRY_STATUSES and attempt < attempts:
                            raise _Retry(resp.status)
                        return ServiceResponse(resp.status, dict(resp.headers), body)
            except (aiohttp.ClientError, TimeoutError, _Retry) as exc:
                if attempt >= attempts:
                    log.warning(
                        "service call failed",
                        extra={"method": method, "url": url, "error": type(exc).__name__},
                    )
                    raise DependencyUnavailable(
                        "A service this request depends on is unavailable."
                    ) from None
                delay = self.backoff * 2 ** (attempt - 1)
                await asyncio.sleep(delay * (0.5 + random.random()))  # noqa: S311 - jitter
        raise AssertionError("unreachable")  # pragma: no cover


class _Retry(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status
