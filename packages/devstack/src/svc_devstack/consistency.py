"""Does the gateway config route every registered service? Checked by ``svc-dev`` before it
starts anything, and by the tests, so that a service missing from kong.yml (or routed to an
upstream that does not exist) is an error naming what to add, not a 502 at the first call."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from svc_core.service import Service
from svc_gateway.config import GatewayConfig
from svc_gateway.router import Router

_PARAM = re.compile(r"\{[^}]+\}")


def routing_problems(config: GatewayConfig, services: Mapping[str, Service[Any]]) -> list[str]:
    """One sentence per problem, each naming the kong.yml block to add or fix. A service's
    traffic goes to the upstream ``<name>-upstream`` (through one or more Kong services)."""
    problems: list[str] = []
    router = Router(config.routes)
    for name, service in services.items():
        upstream = f"{name}-upstream"
        kong_services = {k for k, s in config.services.items() if s.host == upstream}
        if not kong_services:
            problems.append(
                f"kong.yml has no service for {name!r}: add a service named {name} with "
                f"host {upstream} and its routes, and an upstream {upstream} with "
                f"targets ${{{name.upper()}_TARGETS}} (deploy/kong/README.md)"
            )
            continue
        if upstream not in config.upstreams:
            problems.append(
                f"kong.yml: service {name!r} sends to host {upstream!r}, which is no upstream: "
                f"add an upstream named {upstream} with targets ${{{name.upper()}_TARGETS}}"
            )
        for spec in service.routes:
            sample = _PARAM.sub("x1", spec.path)
            matched = router.match(spec.method, sample)
            if matched is None or matched.service not in kong_services:
                where = f"routes it to {matched.service!r}" if matched else "routes it nowhere"
                problems.append(
                    f"kong.yml {where}: {spec.method} {spec.path} belongs to service {name!r}; "
                    f"add the path (and method) to a route of service {name}"
                )
    return problems
