"""The web service's settings: where the browser finds the public API."""

from __future__ import annotations

from svc_core import Settings, env


class WebSettings(Settings):
    gateway_url: str = env(
        "GATEWAY_URL",
        "http://localhost:8000",
        help="the gateway's public URL, used when the page is loaded from this service directly "
        "(through the gateway the page calls its own origin)",
    )
