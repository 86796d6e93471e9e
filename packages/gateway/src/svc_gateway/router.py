"""Route matching as Kong's default ``traditional_compatible`` router does it.

K:kong/router/transform.lua ``get_priority``: each (route, path) pair gets a priority whose top
bits count the match fields a route sets (methods, paths, ...), then the prefix length. So a
route that also matches on method beats a paths-only route whatever the prefix lengths, and
among equals the longest prefix wins. Prefixes are plain string prefixes (``/auth`` matches
``/authx`` too). Ties keep kong.yml's order.
"""

from __future__ import annotations

from collections.abc import Iterable

from svc_gateway.config import Route


class Router:
    def __init__(self, routes: Iterable[Route]) -> None:
        entries: list[tuple[tuple[int, int], int, str, Route]] = []
        for order, route in enumerate(routes):
            weight = (1 if route.methods else 0) + (1 if route.paths else 0)
            for path in route.paths or ("",):
                entries.append(((weight, len(path)), order, path, route))
        entries.sort(key=lambda e: (-e[0][0], -e[0][1], e[1]))
        self.entries = [(path, route) for _, _, path, route in entries]

    def match(self, method: str, path: str) -> Route | None:
        for prefix, route in self.entries:
            if route.methods is not None and method not in route.methods:
                continue
            if path.startswith(prefix):
                return route
        return None
