"""correlation-id (priority 100001), K:kong/plugins/correlation-id/handler.lua.

A client-sent value is kept as is (an empty one counts as none); otherwise one is generated and
forwarded upstream. With ``echo_downstream`` it is set on the response, also on the plugins' own
error responses: Kong runs the header_filter of every plugin collected for the request, so when
an earlier plugin (pre-function) answered before this access step ran, header_filter reads the
request header itself, or generates a value. The value is read from the request as the plugins
see it, after the pre-function dropped an invalid ``X-Request-ID`` (api.md "request id").
"""

from __future__ import annotations

import itertools
import uuid
from typing import Any

from multidict import CIMultiDict

from svc_gateway.config import ConfigError
from svc_gateway.plugins import Context, GatewayPlugin


class CorrelationId(GatewayPlugin):
    name = "correlation-id"
    priority = 100001

    def __init__(self, config: dict[str, Any], where: str) -> None:
        super().__init__(config, where)
        self.header_name: str = config["header_name"]
        self.echo: bool = bool(config["echo_downstream"])
        generator = config["generator"]
        if generator not in ("uuid", "uuid#counter"):
            raise ConfigError(f"correlation-id at {where}: generator {generator!r} not supported")
        self.generator = generator
        self._worker = str(uuid.uuid4())
        self._counter = itertools.count(1)

    def generate(self) -> str:
        if self.generator == "uuid":
            return str(uuid.uuid4())
        return f"{self._worker}#{next(self._counter)}"

    async def access(self, ctx: Context) -> None:
        value = ctx.request_headers.get(self.header_name)
        if not value:
            value = self.generate()
            ctx.upstream_headers[self.header_name] = value
        ctx.state[self.name] = value
        return

    def header_filter(self, ctx: Context, headers: CIMultiDict[str]) -> None:
        if not self.echo:
            return
        value = ctx.state.get(self.name) or ctx.request_headers.get(self.header_name)
        headers[self.header_name] = value or self.generate()
