"""cors (priority 2000), K:kong/plugins/cors/handler.lua (3.9.1).

A preflight (OPTIONS with Origin and Access-Control-Request-Method) is answered here with 200
and an empty body, before jwt or rate-limiting run. Other responses get the origin, credentials
and exposed-headers headers in ``header_filter``, whether or not the request had an Origin.
Only literal origins and ``*`` are supported; a regex origin is a startup error.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from multidict import CIMultiDict

from svc_gateway.config import ConfigError
from svc_gateway.plugins import Context, GatewayPlugin, exit_response

LITERAL_ORIGIN = re.compile(r"[A-Za-z0-9.:/-]+")


def normalize_origin(origin: str) -> str:
    """scheme://host[:port], without the scheme's default port (Kong's ``normalize_origin``)."""
    parts = urlsplit(origin)
    if not parts.scheme or not parts.netloc:
        return origin
    host, sep, port = parts.netloc.rpartition(":")
    if not sep or not port.isdigit():
        host, port = parts.netloc, ""
    if (parts.scheme, port) in (("http", "80"), ("https", "443")):
        port = ""
    return f"{parts.scheme}://{host}" + (f":{port}" if port else "")


class Cors(GatewayPlugin):
    name = "cors"
    priority = 2000

    def __init__(self, config: dict[str, Any], where: str) -> None:
        super().__init__(config, where)
        self.origins: list[str] = list(config["origins"] or [])
        for origin in self.origins:
            if origin != "*" and not LITERAL_ORIGIN.fullmatch(origin):
                raise ConfigError(f"cors at {where}: regex origin {origin!r} is not supported")
        self.normalized = [normalize_origin(o) for o in self.origins]
        self.headers: list[str] = list(config["headers"] or [])
        self.exposed: list[str] = list(config["exposed_headers"] or [])
        self.methods: list[str] = list(config["methods"])
        self.max_age: int | None = config["max_age"]
        self.credentials = bool(config["credentials"])
        self.private_network = bool(config["private_network"])
        self.preflight_continue = bool(config["preflight_continue"])

    def _origin(self, headers: CIMultiDict[str], origin: str | None, filtering: bool) -> bool:
        """Set Access-Control-Allow-Origin; True when every origin is allowed."""
        if not self.origins or self.origins == ["*"]:
            headers["Access-Control-Allow-Origin"] = "*"
            return True
        # Always Vary: Origin (added to the upstream's Vary in header_filter, set on preflight).
        if filtering:
            headers.add("Vary", "Origin")
        else:
            headers["Vary"] = "Origin"
        if len(self.origins) == 1:
            headers["Access-Control-Allow-Origin"] = self.origins[0]
            return False
        if origin:
            if "*" in self.origins:
                headers["Access-Control-Allow-Origin"] = "*"
                return True
            requested = normalize_origin(origin)
            if requested in self.normalized:
                headers["Access-Control-Allow-Origin"] = requested
                return False
        headers.popall("Access-Control-Allow-Origin", None)
        return False

    def _credentials(
        self, headers: CIMultiDict[str], allow_all: bool, origin: str | None, filtering: bool
    ) -> None:
        if not self.credentials:
            return
        if not allow_all:
            headers["Access-Control-Allow-Credentials"] = "true"
            return
        if origin:  # ACAO cannot be * with credentials: echo the request's Origin instead
            if filtering:
                headers.add("Vary", "Origin")
            else:
                headers["Vary"] = "Origin"
            headers["Access-Control-Allow-Origin"] = origin
            headers["Access-Control-Allow-Credentials"] = "true"

    async def access(self, ctx: Context) -> web.StreamResponse | None:
        request = ctx.request
        origin = request.headers.get("Origin")
        if (
            request.method != "OPTIONS"
            or not origin
            or not request.headers.get("Access-Control-Request-Method")
        ):
            return None
        ctx.state["cors_skip_headers"] = True
        if self.preflight_continue:
            return None
        headers: CIMultiDict[str] = CIMultiDict()
        allow_all = self._origin(headers, origin, filtering=False)
        self._credentials(headers, allow_all, origin, filtering=False)
        if self.headers:
            headers["Access-Control-Allow-Headers"] = ",".join(self.headers)
        elif request.headers.get("Access-Control-Request-Headers"):
            headers["Access-Control-Allow-Headers"] = request.headers[
                "Access-Control-Request-Headers"
            ]
        headers["Access-Control-Allow-Methods"] = ",".join(self.methods)
        if self.max_age is not None:
            headers["Access-Control-Max-Age"] = str(self.max_age)
        if (
            self.private_network
            and request.headers.get("Access-Control-Request-Private-Network") == "true"
        ):
            headers["Access-Control-Allow-Private-Network"] = "true"
        response = exit_response(200)
        response.headers.extend(headers)
        return response

    def header_filter(self, ctx: Context, headers: CIMultiDict[str]) -> None:
        if ctx.state.get("cors_skip_headers"):
            return
        origin = ctx.request.headers.get("Origin")
        allow_all = self._origin(headers, origin, filtering=True)
        self._credentials(headers, allow_all, origin, filtering=True)
        if self.exposed:
            headers["Access-Control-Expose-Headers"] = ",".join(self.exposed)
