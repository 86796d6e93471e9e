"""Serve an app: ``python -m svc_<name>`` calls :func:`run`.

SIGTERM and SIGINT stop accepting connections, let in-flight requests finish (up to
``SHUTDOWN_TIMEOUT`` seconds), run the app's shutdown and cleanup, then exit.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TypeVar

from aiohttp import web

from svc_core.logs import configure_logging
from svc_core.settings import Settings, SettingsError

S = TypeVar("S", bound=Settings)
log = logging.getLogger("svc_core")


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


def run(settings_cls: type[S], factory: Callable[[S], web.Application]) -> None:
    """Read settings from the environment, build the app and serve it until SIGTERM/SIGINT."""
    try:
        settings = settings_cls.from_env()
    except SettingsError as exc:
        raise SystemExit(f"{settings_cls.service_name}: configuration error: {exc}") from None
    configure_logging(settings_cls.service_name, settings.log_level)
    app = factory(settings)
    log.info(
        "starting",
        extra={"port": settings.listen_port, "settings": settings.describe()},
    )
    web.run_app(
        app,
        host=settings.host,
        port=settings.listen_port,
        access_log=None,
        shutdown_timeout=settings.shutdown_timeout,
        print=None,
        loop=new_event_loop(settings.uvloop),
    )


async def serve(app: web.Application, host: str, port: int) -> web.AppRunner:
    """Start ``app`` on ``host:port`` inside a running loop (tests, the dev stack)."""
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=5.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    return runner
