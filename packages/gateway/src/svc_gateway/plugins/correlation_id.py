"""correlation-id (priority 100001), K:kong/plugins/correlation-id/handler.lua.

A client-sent value is kept as is; otherwise one is generated. It is forwarded upstream and,
with ``echo_downstream``, set on the response (also on the plugins' own error responses).
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
        value = ctx.request.headers.get(self.header_name)
        if value is None:
            value = self.generate()
            ctx.upstream_headers[self.header_name] = value
        ctx.state[self.name] = value
        return

    def header_filter(self, ctx: Context, headers: CIMultiDict[str]) -> None:
        if self.echo and self.name in ctx.state:
            headers[self.header_name] = ctx.state[self.name]
