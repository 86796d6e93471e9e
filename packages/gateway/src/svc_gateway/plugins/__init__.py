"""The Kong plugins the local gateway reproduces, one module each (DEVELOPMENT TOOL).

Every plugin has Kong's PRIORITY (higher runs first, shared/kong.md §1), an ``access`` step that
may answer the request itself, and a ``header_filter`` step that edits response headers. As in
Kong, ``header_filter`` runs for every plugin of the request, also when an earlier plugin's
``access`` answered and this one's ``access`` never ran (K:kong/init.lua collects them all).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from aiohttp import web
from multidict import CIMultiDict

from svc_gateway.config import Consumer, Credential, Route, Service

JSON_TYPE = "application/json; charset=utf-8"
# The Server header of the gateway's own answers: no product versions (issue 11 item 10; Kong
# runs with KONG_HEADERS without server_tokens). aiohttp's default names Python's and its own.
SERVER = "svc-gateway"


@dataclasses.dataclass
class Context:
    """One request's state as it passes the plugins (Kong's ``ngx.ctx`` / ``kong.ctx``)."""

    request: web.Request
    route: Route
    service: Service
    kong_request_id: str
    client_ip: str
    upstream_headers: CIMultiDict[str]
    # The client's request headers as the plugins see them: pre-function may rewrite one
    # (ngx.req.set_header edits the request Kong's later plugins read and proxies upstream).
    request_headers: CIMultiDict[str]
    consumer: Consumer | None = None
    credential: Credential | None = None
    body_limit: int | None = None
    state: dict[str, Any] = dataclasses.field(default_factory=dict)


def exit_response(
    status: int, body: dict[str, Any] | None = None, headers: dict[str, str] | None = None
) -> web.Response:
    """``kong.response.exit(status, body, headers)``: a table body is sent as compact JSON."""
    response = web.Response(status=status, headers=headers)
    response.headers.setdefault("Server", SERVER)
    if body is not None:
        response.body = json.dumps(body, separators=(",", ":")).encode()
        response.headers["Content-Type"] = JSON_TYPE
    return response


def error_response(
    ctx_request_id: str, status: int, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    """``kong.response.error``: since 3.5 the body also carries Kong's own request id."""
    return exit_response(status, {"message": message, "request_id": ctx_request_id}, headers)


class GatewayPlugin:
    name = ""
    priority = 0

    def __init__(self, config: dict[str, Any], where: str) -> None:
        self.config = config
        self.where = where

    async def access(self, ctx: Context) -> web.StreamResponse | None:
        return None

    def header_filter(self, ctx: Context, headers: CIMultiDict[str]) -> None:
        return None

    async def start(self) -> None:
        """Open whatever the plugin needs (a Redis client)."""

    async def stop(self) -> None:
        """Release it."""
