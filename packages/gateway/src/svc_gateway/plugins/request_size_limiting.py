"""request-size-limiting (priority 951), K:kong/plugins/request-size-limiting/handler.lua.

A declared Content-Length over the limit: 413 ``Request size limit exceeded`` (417 with
``Expect: 100-continue``). Without one (chunked), Kong reads the body and checks its size; the
local gateway counts the bytes while streaming them upstream and answers the same 413 as soon as
the limit is passed (see the proxy).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from svc_gateway.config import ConfigError
from svc_gateway.plugins import Context, GatewayPlugin, error_response

UNITS = {"megabytes": 1024 * 1024, "kilobytes": 1024, "bytes": 1}
MESSAGE = "Request size limit exceeded"


def too_large(ctx: Context) -> web.Response:
    expect = ctx.request.headers.get("Expect", "").strip().lower()
    return error_response(ctx.kong_request_id, 417 if expect == "100-continue" else 413, MESSAGE)


class RequestSizeLimiting(GatewayPlugin):
    name = "request-size-limiting"
    priority = 951

    def __init__(self, config: dict[str, Any], where: str) -> None:
        super().__init__(config, where)
        unit = config["size_unit"]
        if unit not in UNITS:
            raise ConfigError(f"request-size-limiting at {where}: size_unit {unit!r} unknown")
        self.limit = int(config["allowed_payload_size"] * UNITS[unit])
        self.require_length = bool(config["require_content_length"])

    async def access(self, ctx: Context) -> web.StreamResponse | None:
        declared = ctx.request.headers.get("Content-Length")
        if self.require_length and not declared:
            return error_response(
                ctx.kong_request_id, 411, "A valid Content-Length header is required"
            )
        if declared is not None and declared.strip().isdigit():
            if int(declared) > self.limit:
                return too_large(ctx)
            return None
        ctx.body_limit = self.limit
        return None
