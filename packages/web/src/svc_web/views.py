"""The static client under ``/app/``: a fixed list of files read once, each served with a strict
Content-Security-Policy (no inline script or style, connections only to the page's own origin
and the configured gateway) and ``/app/config.json`` telling the page where the API is."""

from __future__ import annotations

import functools
import mimetypes
from importlib import resources
from urllib.parse import urlsplit

from aiohttp import web

from svc_core import RouteTable, settings_of
from svc_core.routing import public
from svc_web.settings import WebSettings

routes = RouteTable()

STATIC = resources.files("svc_web") / "static"
TYPES = {
    ".html": "text/html",
    ".css": "text/css",
    ".js": "text/javascript",
    ".json": "application/json",
    ".svg": "image/svg+xml",
}


@functools.cache
def files() -> dict[str, bytes]:
    """Every file of the client, by its path under ``/app/`` (nothing else is ever served)."""
    found: dict[str, bytes] = {}

    def walk(folder: object, prefix: str) -> None:
        for entry in folder.iterdir():  # type: ignore[attr-defined]
            if entry.is_dir():
                walk(entry, f"{prefix}{entry.name}/")
            elif entry.name.rsplit(".", 1)[-1] in {t[1:] for t in TYPES}:
                found[f"{prefix}{entry.name}"] = entry.read_bytes()

    walk(STATIC, "")
    return found


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def content_security_policy(settings: WebSettings) -> str:
    api = origin(settings.gateway_url)
    ws = api.replace("http://", "ws://", 1).replace("https://", "wss://", 1)
    return "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data: blob:",
            f"connect-src 'self' {api} {ws}",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
            "object-src 'none'",
        ]
    )


def security_headers(request: web.Request) -> dict[str, str]:
    settings = settings_of(request)
    assert isinstance(settings, WebSettings)
    return {
        "Content-Security-Policy": content_security_policy(settings),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-cache",
    }


def static_response(request: web.Request, name: str) -> web.Response:
    body = files().get(name)
    if body is None:
        raise web.HTTPNotFound(headers=security_headers(request))
    suffix = "." + name.rsplit(".", 1)[-1]
    content_type = TYPES.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"
    return web.Response(
        body=body,
        content_type=content_type,
        charset="utf-8" if content_type.startswith("text/") or "json" in content_type else None,
        headers=security_headers(request),
    )


@public
async def redirect_root(request: web.Request) -> web.StreamResponse:
    """``/`` on the service's own port: the client is at ``/app/``."""
    raise web.HTTPFound("/app/")


@routes.get("/app", public=True, content_type="text/html")
async def app_bare(request: web.Request) -> web.StreamResponse:
    """The client's address without its trailing slash: a redirect to ``/app/``."""
    raise web.HTTPFound("/app/")


@routes.get("/app/", public=True, content_type="text/html")
async def index(request: web.Request) -> web.StreamResponse:
    """The client's page."""
    return static_response(request, "index.html")


@routes.get("/app/config.json", public=True)
async def config(request: web.Request) -> web.StreamResponse:
    """Where the page calls the API: its own origin when it came through the gateway (a
    forwarded request), else the configured gateway (the page on this service's own port)."""
    settings = settings_of(request)
    assert isinstance(settings, WebSettings)
    through_gateway = "X-Forwarded-Host" in request.headers
    api_url = "" if through_gateway else settings.gateway_url.rstrip("/")
    return web.json_response({"api_url": api_url}, headers=security_headers(request))


@routes.get("/app/{name}", public=True, content_type="text/plain", errors=(404,))
async def asset(request: web.Request) -> web.StreamResponse:
    """A file of the client (styles); any other name is a 404."""
    return static_response(request, request.match_info["name"])


@routes.get("/app/js/{name}", public=True, content_type="text/javascript", errors=(404,))
async def script(request: web.Request) -> web.StreamResponse:
    """A module of the client; any other name is a 404."""
    return static_response(request, f"js/{request.match_info['name']}")
