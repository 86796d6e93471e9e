"""What the web service is: the browser client's static files, no storage of its own."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from svc_core import Service
from svc_web.settings import WebSettings
from svc_web.views import redirect_root, routes


class WebService(Service[WebSettings]):
    """A ``Service`` that also answers ``/`` on its own port (a redirect to ``/app/``). That path
    is not a RouteTable route on purpose: the gateway routes only ``/app``, and the dev stack's
    consistency check holds every declared route to a gateway route."""

    def create_app(self, settings: WebSettings | None = None) -> web.Application:
        app = super().create_app(settings)
        app.router.add_get("/", redirect_root)
        return app


service: Service[Any] = WebService(
    name="web",
    port=3000,
    settings=WebSettings,
    routes=routes,
)
create_app = service.create_app
