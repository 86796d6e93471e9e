"""Serve an app: ``python -m svc_<name>`` calls :func:`run` (through ``service.main()``).

SIGTERM and SIGINT stop accepting connections, let in-flight requests finish (up to
``SHUTDOWN_TIMEOUT`` seconds), run the app's shutdown and cleanup, then exit.

Requests that are not valid HTTP (a control byte in a header, an oversized header, bad
chunking) never reach the app: aiohttp answers them itself, by default with a text body that
echoes the offending bytes and a log line with a traceback that holds the request's headers. The
runner here answers them with a problem+json body that echoes nothing, and logs one line naming
only the status and the error's class (api.md "HTTP limits"; a bearer token never reaches a log).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import TYPE_CHECKING, Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from svc_core.errors import Problem
from svc_core.logs import configure_logging, new_request_id
from svc_core.pipeline import SERVER, problem_response
from svc_core.settings import SettingsError

if TYPE_CHECKING:
    from svc_core.service import Service

log = logging.getLogger("svc_core")
# idle keep-alive connections close after this (api.md "HTTP limits": within 75 s)
KEEPALIVE_TIMEOUT = 75.0


class _FramingErrors(RequestHandler):
    """aiohttp's protocol handler, answering requests it cannot parse without echoing them."""

    __slots__ = ()

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        log.warning(
            "request not served: invalid HTTP" if status < 500 else "request failed",
            extra={"status": status, "error": type(exc).__name__ if exc else None},
        )
        if request.writer.output_size > 0:
            raise ConnectionError("the response has started; the connection is dropped")
        detail = (
            "The request is not valid HTTP."
            if status == 400
            else "The request could not be served."
            if status >= 500
            else "The request was refused."
        )
        code = {400: "bad_request", 413: "payload_too_large", 431: "headers_too_large"}.get(
            status, "internal_error" if status >= 500 else "http_error"
        )
        request_id = new_request_id()
        response = problem_response(Problem(detail, status=status, code=code), request_id)
        response.headers["X-Request-ID"] = request_id
        response.headers["Server"] = SERVER
        response.force_close()
        return response


class _Server(web.Server):
    def __call__(self) -> RequestHandler:
        return _FramingErrors(self, loop=self._loop, **self._kwargs)


class Runner(web.AppRunner):
    """``web.AppRunner`` whose connections answer invalid HTTP without echoing it."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        if type(server) is web.Server:  # an app that makes its own server keeps it (the gateway)
            server.__class__ = _Server  # the same object; only the protocol it makes changes
        return server


def new_event_loop(use_uvloop: bool) -> asyncio.AbstractEventLoop:
    if use_uvloop:
        try:
            import uvloop
        except ImportError:
            pass
        else:
            loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
            return loop
    return asyncio.new_event_loop()


def run(service: Service[Any]) -> None:
    """Read the service's settings from the environment, build its app and serve it until
    SIGTERM/SIGINT (``python -m svc_<name>`` calls this through ``service.main()``)."""
    try:
        settings = service.load_settings()
    except SettingsError as exc:
        raise SystemExit(f"{service.name}: configuration error: {exc}") from None
    configure_logging(service.name, settings.log_level)
    app = service.create_app(settings)
    port = service.listen_port(settings)
    log.info("starting", extra={"port": port, "settings": settings.describe()})
    loop = new_event_loop(settings.uvloop)
    try:
        loop.run_until_complete(
            _serve_until_signal(app, settings.host, port, settings.shutdown_timeout)
        )
    finally:
        loop.close()


async def _serve_until_signal(
    app: web.Application, host: str, port: int, shutdown_timeout: float
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    runner = await serve(app, host, port, shutdown_timeout=shutdown_timeout)
    try:
        await stop.wait()
        log.info("stopping")
    finally:
        await runner.cleanup()


async def serve(
    app: web.Application, host: str, port: int, *, shutdown_timeout: float = 5.0
) -> web.AppRunner:
    """Start ``app`` on ``host:port`` inside a running loop (``run``, tests, the dev stack)."""
    runner = Runner(
        app,
        access_log=None,
        shutdown_timeout=shutdown_timeout,
        keepalive_timeout=KEEPALIVE_TIMEOUT,
    )
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    return runner
