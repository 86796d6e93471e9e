"""The servers the benchmark compares; one per process: ``python bench/servers.py KIND PORT``.

bare          aiohttp, GET /ping -> {"ok": true}; no middleware (the baseline)
health        svc_core's /health through the whole chassis (request pipeline)
auth          svc_core, an authenticated route touching no database: RS256 verification
              (cached per token), revocation check, query validation, JSON, access log, metrics
fastapi-auth  FastAPI + uvicorn, the same route verifying RS256 with PyJWT on every request
fastapi-cached  the same FastAPI route with the chassis' verified-token cache (a like-for-like
              framework comparison)
service:NAME  a registered service as ``python -m svc_NAME`` runs it (bench's keys, real Redis)
pair:chat PORT,PORT         two chat instances in one process (issue 16 item 5), sharing the
              in-process MongoDB stand-in (``memory://bench-chat``, as the dev stack shares it:
              there is no MongoDB server here); each has its own Redis pub/sub connection
pair:broadcaster PORT,PORT  the ceiling for chat: a minimal aiohttp + Redis pub/sub broadcaster
              (join, message -> PUBLISH, every subscriber sends to its local sockets), two
              instances in one process likewise
stack PORT    every registered service and the local gateway in one process (svc_devstack's
              Stack, as ``nox -s dev`` and the e2e tests start it), the gateway on PORT

Both FastAPI peers make the same checks as the chassis' route: RS256 pinned, issuer, required
claims, the revocation check against a local set, no query parameters accepted, the answer
rendered through a response model (pydantic). uvicorn's access log is off (the chassis writes
one): the comparison favours the peers.
"""

import asyncio
import os
import sys

from aiohttp import web

from svc_core import Auth, AuthSettings, RouteTable, Schema, Service, current_claims, fields
from svc_core.logs import configure_logging
from svc_core.runner import new_event_loop

PUBLIC_PEM = os.environ.get("BENCH_PUBLIC_PEM", "")
ISSUER = "svc-bench"


class BenchSettings(AuthSettings):
    pass


class MeOut(Schema):
    id = fields.String()
    username = fields.String()


routes = RouteTable()


@routes.get("/me", response=MeOut)
async def me(request: web.Request) -> dict[str, str]:
    claims = current_claims(request)  # the query was checked (none allowed) by the chassis
    return {"id": claims.sub, "username": claims.username}


service = Service(name="bench", port=1, settings=BenchSettings, routes=routes, uses=[Auth()])


def chassis_app() -> web.Application:
    settings = BenchSettings.from_env(
        {},
        environment="test",
        redis_url=os.environ.get("REDIS_URL", "memory://bench"),
        jwt_public_keys=PUBLIC_PEM,
        jwt_issuer=ISSUER,
        access_log=os.environ.get("BENCH_ACCESS_LOG", "1") == "1",
        # /health is a probe, left out of the access log by default: measure it logged
        access_log_probes=True,
        # tracing: off (the default, what every other figure measures), or on for "auth-traced":
        # every request sampled, spans written as JSON lines to /dev/null, synchronously
        otel_traces=os.environ.get("BENCH_OTEL_TRACES", "off"),
        otel_traces_file=os.devnull,
    )
    configure_logging("bench", "INFO")  # the access log is formatted and written, as in production
    return service.create_app(settings)


def bare_app() -> web.Application:
    async def ping(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_get("/ping", ping)
    return app


def fastapi_app(cached: bool = False):  # type: ignore[no-untyped-def]
    import time

    import jwt
    from fastapi import FastAPI, Header, HTTPException, Request
    from pydantic import BaseModel

    app = FastAPI()
    revoked: dict[str, float] = {}  # the revocation mirror: sid -> until
    cache: dict[str, dict[str, object]] = {}

    class MeModel(BaseModel):
        id: str
        username: str

    def verify(token: str) -> dict[str, object]:
        if cached:
            claims = cache.get(token)
            if claims is not None and claims["exp"] > time.time():  # type: ignore[operator]
                return claims
        try:
            claims = jwt.decode(
                token,
                PUBLIC_PEM,
                algorithms=["RS256"],
                issuer=ISSUER,
                options={"require": ["iss", "sub", "sid", "jti", "username", "iat", "exp"]},
            )
        except jwt.PyJWTError:
            raise HTTPException(401) from None
        if cached:
            cache[token] = claims
        return claims

    @app.get("/me", response_model=MeModel)
    async def fme(request: Request, authorization: str = Header("")) -> dict[str, object]:
        if request.query_params:
            raise HTTPException(422, "no query parameters are accepted")
        if not authorization.startswith("Bearer "):
            raise HTTPException(401)
        claims = verify(authorization[7:])
        if revoked.get(str(claims["sid"]), 0.0) > time.time():
            raise HTTPException(401)
        return {"id": claims["sub"], "username": claims["username"]}

    return app


def service_app(name: str, mongo_url: str = "memory://") -> web.Application:
    """A registered service (svc_core.discover()) as it runs: its own settings from the
    environment, Redis for real, MongoDB's in-process stand-in (no MongoDB on this machine)."""
    from svc_core import discover

    service = discover()[name]
    environ = {
        **os.environ,
        "REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15"),
        "MONGO_URL": mongo_url,
        "JWT_PUBLIC_KEYS": PUBLIC_PEM,
        "JWT_ISSUER": ISSUER,
        "JWT_PRIVATE_KEY": os.environ.get("BENCH_PRIVATE_PEM", ""),
    }
    settings = service.load_settings(environ)
    configure_logging(name, "INFO")
    return service.create_app(settings)


def broadcaster_app(redis_url: str) -> web.Application:
    """The chat ceiling: the same frames as the chat service (``json.dumps`` text frames:
    ``join`` -> ``joined``, ``message`` -> ``{"type": "message", "message": {...}}`` to every
    socket of the room on every instance), through one Redis pub/sub connection per instance,
    with nothing stored, checked or rate-limited: what aiohttp + Redis can do at most."""
    import json

    from redis.asyncio import Redis

    rooms: dict[str, set[web.WebSocketResponse]] = {}
    redis_key = web.AppKey("redis", Redis)
    listener_key = web.AppKey("listener", asyncio.Task[None])

    async def ws_handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        joined: set[str] = set()
        redis = request.app[redis_key]
        try:
            async for msg in ws:
                if msg.type != web.WSMsgType.TEXT:
                    continue
                frame = json.loads(msg.data)
                room = frame.get("room_id", "")
                if frame.get("type") == "join":
                    rooms.setdefault(room, set()).add(ws)
                    joined.add(room)
                    await ws.send_str(json.dumps({"type": "joined", "room_id": room}))
                elif frame.get("type") == "message" and room in joined:
                    message = {"room_id": room, "body": frame["body"]}
                    await redis.publish(f"bc:{room}", json.dumps(message))
        finally:
            for room in joined:
                rooms.get(room, set()).discard(ws)
        return ws

    async def listen(app: web.Application) -> None:
        pubsub = app[redis_key].pubsub()
        await pubsub.psubscribe("bc:*")
        async for event in pubsub.listen():
            if event["type"] != "pmessage":
                continue
            message = json.loads(event["data"])
            frame = json.dumps({"type": "message", "message": message}, ensure_ascii=False)
            for ws in list(rooms.get(message["room_id"], ())):
                try:
                    await ws.send_str(frame)
                except (ConnectionError, RuntimeError):  # a socket closing meanwhile
                    rooms.get(message["room_id"], set()).discard(ws)

    async def startup(app: web.Application) -> None:
        app[redis_key] = Redis.from_url(redis_url)
        app[listener_key] = asyncio.create_task(listen(app))

    async def cleanup(app: web.Application) -> None:
        app[listener_key].cancel()
        await app[redis_key].aclose()

    app = web.Application()
    app.router.add_get("/chat/ws", ws_handler)
    app.router.add_get("/health", lambda request: web.json_response({"status": "ok"}))
    app.on_startup.append(startup)
    app.on_cleanup.append(cleanup)
    return app


async def serve_pair(kind: str, ports: list[int]) -> None:
    """Two instances of ``kind`` (chat or broadcaster) in this process, until terminated."""
    import signal

    from svc_core.runner import serve

    redis_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15")
    runners = []
    for port in ports:
        if kind == "chat":
            app = service_app("chat", "memory://bench-chat")  # shared by both instances
        else:
            app = broadcaster_app(redis_url)
        runners.append(await serve(app, "127.0.0.1", port))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    for runner in runners:
        await runner.cleanup()


async def serve_stack(port: int) -> None:
    """The whole stack in this process: every registered service on a free port, the local
    gateway on ``port`` (svc_devstack's Stack, as the e2e tests start it)."""
    import signal
    from pathlib import Path

    from svc_core.testing import free_port
    from svc_devstack.stack import Stack, StackOptions, services

    work = Path(os.environ["BENCH_STACK_DIR"])
    stack = Stack(
        StackOptions(
            gateway_port=port,
            ports={name: [free_port()] for name in services()},
            root=Path(__file__).resolve().parents[1],
            dev_dir=work,
            environ={
                "ENVIRONMENT": "development",
                "REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15"),
                "LOG_LEVEL": "WARNING",
            },
            service_env={
                "BCRYPT_ROUNDS": os.environ.get("BENCH_BCRYPT_ROUNDS", "4"),
                "UVLOOP": "false",
                "FILES_LOCAL_ROOT": str(work / "files"),
            },
        )
    )
    await stack.start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await stack.stop()


def quiet_background() -> None:
    """For bench/icount.py: instructions are counted per request over a wall-clock window that
    valgrind stretches ~50x, so work done per unit of time (the revocation feed's 50 ms polls and
    1 s epoch checks, the access log's 100 ms flush timer) would be charged to requests many
    times over, and by how loaded the machine is. Slow those clocks down; the access log then
    flushes by size, as it does under real load."""
    from svc_core.auth import RevocationList
    from svc_core.logs import AccessLog

    RevocationList.POLL = 2.0
    RevocationList.__init__.__kwdefaults__["check_interval"] = 3600.0  # type: ignore[index]
    AccessLog.__init__.__kwdefaults__["flush_interval"] = 3600.0  # type: ignore[index]


def main() -> None:
    kind = sys.argv[1]
    if kind.startswith("pair:"):
        ports = [int(p) for p in sys.argv[2].split(",")]
        asyncio.run(serve_pair(kind.removeprefix("pair:"), ports))
        return
    if kind == "stack":
        asyncio.run(serve_stack(int(sys.argv[2])))
        return
    port = int(sys.argv[2])
    if os.environ.get("BENCH_ICOUNT") == "1":
        quiet_background()
    use_uvloop = os.environ.get("BENCH_UVLOOP", "0") == "1"
    if kind in ("fastapi-auth", "fastapi-cached"):
        import uvicorn

        uvicorn.run(
            fastapi_app(cached=kind == "fastapi-cached"),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            access_log=False,
            loop="uvloop" if use_uvloop else "asyncio",
        )
        return
    if kind.startswith("service:"):
        app = service_app(kind.removeprefix("service:"))
    else:
        app = bare_app() if kind == "bare" else chassis_app()
    loop = new_event_loop(use_uvloop)
    asyncio.set_event_loop(loop)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None, loop=loop)


if __name__ == "__main__":
    main()
