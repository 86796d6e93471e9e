"""Web service: the browser client (static HTML, CSS and ES modules) under ``/app/``."""

from svc_web.manifest import create_app, service
from svc_web.settings import WebSettings

__all__ = ["WebSettings", "create_app", "service"]
