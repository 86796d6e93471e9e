"""Odd paths through the gateway reach the service, which answers with its own problem.

Kong forwards the path and X-Forwarded-Path still percent-encoded (K:kong/runloop/handler.lua,
forwarded_path = var.request_uri without its query), so a %00 or %0A in a path is the service's
business, never a gateway 500 or a plain-text 404.
"""

from __future__ import annotations

import aiohttp
import pytest
from yarl import URL

from svc_devstack.stack import Stack
from tests.e2e.test_journey import sign_up


@pytest.mark.parametrize(
    "path",
    ["/orders/%00", "/orders/%0A", "/orders/%7F", "/orders/%C3%A9t%C3%A9", "/cache/%0A"],
)
async def test_control_and_unicode_paths_get_the_services_problem(
    stack: Stack, gateway_url: str, http: aiohttp.ClientSession, path: str
) -> None:
    _, token = await sign_up(http, gateway_url)
    url = URL(gateway_url + path, encoded=True)
    async with http.get(url, headers={"Authorization": f"Bearer {token}"}) as response:
        body = await response.json(content_type=None)
        assert response.headers["Content-Type"].startswith("application/problem+json"), body
        assert response.status in (400, 404, 422), body
        assert body["status"] == response.status
        assert body["request_id"] == response.headers["X-Request-ID"]
