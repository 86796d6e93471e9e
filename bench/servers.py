"""The servers the benchmark compares; one per process: ``python bench/servers.py KIND PORT``.

bare          aiohttp, GET /ping -> {"ok": true}; no middleware (the baseline)
health        svc_core's /health through the whole chassis middleware
auth          svc_core, an authenticated route touching no database: RS256 verification
              (cached per token), revocation check, query validation, JSON, access log, metrics
fastapi-auth  FastAPI + uvicorn, the same route verifying RS256 with PyJWT on every request
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import ClassVar

from aiohttp import web

from svc_core import RouteTable, Settings, create_app, current_claims, query
from svc_core.logs import configure_logging
from svc_core.runner import new_event_loop

PUBLIC_PEM = os.environ.get("BENCH_PUBLIC_PEM", "")
ISSUER = "svc-bench"


class BenchSettings(Settings):
    service_name: ClassVar[str] = "bench"
    default_port: ClassVar[int] = 0


routes = RouteTable()


@routes.get("/me")
async def me(request: web.Request) -> web.Response:
    query(request)
    claims = current_claims(request)
    return web.json_response({"id": claims.sub, "username": claims.username})


def chassis_app() -> web.Application:
    settings = BenchSettings.from_env(
        {},
        environment="test",
        redis_url=os.environ.get("REDIS_URL", "memory://bench"),
        jwt_public_keys=PUBLIC_PEM,
        jwt_issuer=ISSUER,
        access_log=os.environ.get("BENCH_ACCESS_LOG", "1") == "1",
    )
    configure_logging("bench", "INFO")  # the access log is formatted and written, as in production
    return create_app(settings, routes, redis=True)


def bare_app() -> web.Application:
    async def ping(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_get("/ping", ping)
    return app


def fastapi_app():  # type: ignore[no-untyped-def]
    import jwt
    from fastapi import FastAPI, Header, HTTPException

    app = FastAPI()

    @app.get("/me")
    async def fme(authorization: str = Header("")) -> dict[str, str]:
        token = authorization.removeprefix("Bearer ")
        try:
            claims = jwt.decode(token, PUBLIC_PEM, algorithms=["RS256"], issuer=ISSUER)
        except jwt.PyJWTError:
            raise HTTPException(401) from None
        return {"id": claims["sub"], "username": claims["username"]}

    return app


def main() -> None:
    kind, port = sys.argv[1], int(sys.argv[2])
    use_uvloop = os.environ.get("BENCH_UVLOOP", "0") == "1"
    if kind == "fastapi-auth":
        import uvicorn

        uvicorn.run(
            fastapi_app(),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            access_log=False,
            loop="uvloop" if use_uvloop else "asyncio",
        )
        return
    app = bare_app() if kind == "bare" else chassis_app()
    loop = new_event_loop(use_uvloop)
    asyncio.set_event_loop(loop)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None, loop=loop)


if __name__ == "__main__":
    main()
