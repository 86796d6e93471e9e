"""prometheus (priority 13): request counts per service, route and status, served on the
status listener's ``/metrics`` (Kong serves them on its Admin/Status API, never on the proxy)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from multidict import CIMultiDict

from svc_gateway.plugins import Context, GatewayPlugin


class Prometheus(GatewayPlugin):
    name = "prometheus"
    priority = 13

    def __init__(self, config: dict[str, Any], where: str) -> None:
        super().__init__(config, where)
        self.requests: Counter[tuple[str, str, str]] = Counter()
        self.status_codes = bool(config["status_code_metrics"])

    def header_filter(self, ctx: Context, headers: CIMultiDict[str]) -> None:
        status = str(ctx.state.get("status", "")) if self.status_codes else ""
        self.requests[(ctx.service.name, ctx.route.name, status)] += 1

    def render(self) -> str:
        lines = [
            "# HELP kong_http_requests_total HTTP status codes per service/route in Kong",
            "# TYPE kong_http_requests_total counter",
        ]
        for (service, route, code), count in sorted(self.requests.items()):
            lines.append(
                f'kong_http_requests_total{{service="{service}",route="{route}",code="{code}",'
                f'source="service",workspace="default",consumer=""}} {count}'
            )
        return "\n".join(lines) + "\n"
