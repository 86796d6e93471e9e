"""The local gateway: an aiohttp server that runs a rendered kong.yml the way Kong 3.9 would.

DEVELOPMENT TOOL, never the production gateway (that is Kong with the same file). It reproduces
the subset of Kong the project's kong.yml uses: routing on Kong's normalised path
(traditional_compatible priorities, paths.py), round-robin over healthy upstream targets, the
pre-function snippet, and the jwt, rate-limiting, cors, correlation-id, request-size-limiting and
prometheus plugins, behind nginx's client limits (server.py). Request and response bodies are
streamed both ways, never decoded; WebSocket upgrades are proxied frame by frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import quote

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from redis.asyncio import Redis
from yarl import URL

from svc_core.redis import open_redis
from svc_gateway import paths
from svc_gateway.balancer import Balancer
from svc_gateway.config import GatewayConfig, Plugin, Route, Service, Target
from svc_gateway.plugins import SERVER, Context, GatewayPlugin, error_response
from svc_gateway.plugins.correlation_id import CorrelationId
from svc_gateway.plugins.cors import Cors
from svc_gateway.plugins.jwt import CONSUMER_HEADERS, Jwt
from svc_gateway.plugins.opentelemetry import OpenTelemetry
from svc_gateway.plugins.pre_function import PreFunction
from svc_gateway.plugins.prometheus import Prometheus
from svc_gateway.plugins.rate_limiting import RateLimiting
from svc_gateway.plugins.request_size_limiting import RequestSizeLimiting, too_large
from svc_gateway.router import Router
from svc_gateway.server import ClientLimits, application

log = logging.getLogger("svc_gateway")
BAD_UPSTREAM = "An invalid response was received from the upstream server"

HOP_BY_HOP = frozenset(
    h.lower()
    for h in (
        "Connection",
        "Keep-Alive",
        "Proxy-Authenticate",
        "Proxy-Authorization",
        "TE",
        "Trailer",
        "Trailers",
        "Transfer-Encoding",
        "Upgrade",
        "Host",
        # nginx's proxy module clears Expect upstream (ngx_http_proxy_headers: "Expect: ''");
        # the gateway answers the client's 100-continue itself.
        "Expect",
    )
)
WS_HANDSHAKE = frozenset(
    h.lower()
    for h in (
        "Sec-WebSocket-Key",
        "Sec-WebSocket-Version",
        "Sec-WebSocket-Extensions",
        "Sec-WebSocket-Protocol",
    )
)
GATEWAY: web.AppKey[Gateway] = web.AppKey("svc_gateway")
# What a forwarded path or query keeps as is: every printable ASCII character (so the client's
# own escapes and characters stay exactly as sent); controls, spaces and non-ASCII get encoded.
URL_SAFE = "".join(map(chr, range(0x21, 0x7F)))


def bad_upstream(ctx: Context, error: BaseException | None) -> web.Response:
    """Kong's 502 when no upstream answered (kong/runloop/handler.lua), logged as nginx logs a
    failed connect: which service, and why (the error names the address, never the request)."""
    log.warning(
        "no upstream answered",
        extra={
            "service": ctx.service.name,
            "error": type(error).__name__ if error else None,
            "detail": str(error) if error else None,
            "request_id": ctx.kong_request_id,
        },
    )
    return error_response(ctx.kong_request_id, 502, BAD_UPSTREAM)


class BodyTooLarge(Exception):
    """A body without Content-Length passed request-size-limiting's limit while streaming."""


class BodyTimeout(Exception):
    """No body bytes for client_body_timeout while the gateway was reading the body."""


class Gateway:
    """Plugins, balancers and the proxy for one parsed kong.yml."""

    def __init__(
        self,
        config: GatewayConfig,
        *,
        redis_override: str | None = None,
        redis_factory: Callable[[str], Redis] = open_redis,
        limits: ClientLimits | None = None,
    ) -> None:
        self.config = config
        self.limits = limits or ClientLimits()
        self.router = Router(config.routes)
        self.balancers = {name: Balancer(u) for name, u in config.upstreams.items()}
        self._instances: dict[int, GatewayPlugin] = {}
        self._build: dict[str, Callable[[Plugin], GatewayPlugin]] = {
            "jwt": lambda p: Jwt(p.config, p.where, config.credentials),
            "rate-limiting": lambda p: RateLimiting(p, redis_factory, redis_override),
            "cors": lambda p: Cors(p.config, p.where),
            "correlation-id": lambda p: CorrelationId(p.config, p.where),
            "request-size-limiting": lambda p: RequestSizeLimiting(p.config, p.where),
            "prometheus": lambda p: Prometheus(p.config, p.where),
            "pre-function": lambda p: PreFunction(p.config, p.where),
            "opentelemetry": lambda p: OpenTelemetry(p.config, p.where),
        }
        self.chains = {route.name: self._chain(route) for route in config.routes}
        self.global_chain = [self._instance(p) for p in config.global_plugins]
        for service in config.services.values():
            if service.host not in self.balancers and "-upstream" in service.host:
                log.warning("service host names no upstream", extra={"service": service.name})
        self.session: aiohttp.ClientSession | None = None

    def _instance(self, plugin: Plugin) -> GatewayPlugin:
        key = id(plugin)
        if key not in self._instances:
            self._instances[key] = self._build[plugin.name](plugin)
        return self._instances[key]

    def _chain(self, route: Route) -> list[GatewayPlugin]:
        """One instance per plugin name, the most specific scope winning (route > service >
        global), in Kong's PRIORITY order (K:kong/runloop/plugins_iterator.lua)."""
        chosen: dict[str, Plugin] = {}
        service = self.config.services[route.service]
        for scope in (self.config.global_plugins, service.plugins, route.plugins):
            for plugin in scope:
                chosen[plugin.name] = plugin
        chain = [self._instance(p) for p in chosen.values()]
        return sorted(chain, key=lambda p: p.priority, reverse=True)

    @property
    def prometheus(self) -> Prometheus | None:
        for plugin in self._instances.values():
            if isinstance(plugin, Prometheus):
                return plugin
        return None

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        log.warning(
            "svc-gateway is a local DEVELOPMENT TOOL reproducing a subset of Kong; "
            "production runs Kong with the same kong.yml"
        )
        self.session = aiohttp.ClientSession(
            auto_decompress=False,
            connector=aiohttp.TCPConnector(limit=0),
            cookie_jar=aiohttp.DummyCookieJar(),
        )
        for plugin in self._instances.values():
            await plugin.start()
        for balancer in self.balancers.values():
            await balancer.start()

    async def stop(self) -> None:
        for balancer in self.balancers.values():
            await balancer.stop()
        for plugin in self._instances.values():
            await plugin.stop()
        if self.session is not None:
            await self.session.close()

    # --- request handling -----------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        response = await self._handle(request)
        if (
            unread_body_expected(request)
            and not response.prepared
            and request.transport is not None
        ):
            # The client held its body back for a 100 it never got (or got 100 and is being
            # refused mid-body): send this answer, then close at once. Left to aiohttp, the
            # connection would linger reading the body, or parse it as the next request.
            await response.prepare(request)
            await response.write_eof()
            request.protocol.force_close()  # flushes what was written, then closes
        return response

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        kong_request_id = secrets.token_hex(16)
        # Kong routes on the normalised raw path (K:kong/router/utils.lua strip_uri_args).
        path = paths.normalize(request.raw_path.partition("?")[0])
        route = self.router.match(request.method, path)
        if route is None:
            return error_response(kong_request_id, 404, "no Route matched with those values")
        service = self.config.services[route.service]
        ctx = Context(
            request=request,
            route=route,
            service=service,
            kong_request_id=kong_request_id,
            client_ip=request.remote or "",
            upstream_headers=self._upstream_headers(request, service),
            request_headers=CIMultiDict(request.headers),
        )
        ctx.state["path"] = path
        chain = self.chains[route.name]
        for plugin in chain:
            response = await plugin.access(ctx)
            if response is not None:
                # Kong collects every plugin of the request even after one exited, and runs
                # header_filter for all of them (K:kong/init.lua
                # execute_collecting_plugins_iterator, K:kong/runloop/plugins_iterator.lua).
                return self._finish(ctx, chain, response)
        if is_websocket(request):
            return await self._proxy_websocket(ctx, chain)
        return await self._proxy(ctx, chain)

    def _finish(
        self, ctx: Context, chain: list[GatewayPlugin], response: web.StreamResponse
    ) -> web.StreamResponse:
        """Run the header_filter step of every plugin of the request, in order."""
        ctx.state["status"] = response.status
        if unread_body_expected(ctx.request):
            response.force_close()  # "Connection: close"; handle() closes the connection
        headers: CIMultiDict[str] = response.headers
        for plugin in chain:
            plugin.header_filter(ctx, headers)
        return response

    def _upstream_headers(self, request: web.Request, service: Service) -> CIMultiDict[str]:
        headers: CIMultiDict[str] = CIMultiDict(
            (k, v) for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP
        )
        # Only the gateway sets these (Kong clears them on authenticated routes; the local
        # gateway clears them on every route so a public route cannot smuggle them either).
        for name in CONSUMER_HEADERS:
            headers.popall(name, None)
        client_ip = request.remote or ""
        host = request.host.rsplit(":", 1)[0] if request.host else ""
        port = str(request.transport.get_extra_info("sockname")[1]) if request.transport else ""
        headers["X-Forwarded-For"] = client_ip
        headers["X-Forwarded-Proto"] = request.scheme
        headers["X-Forwarded-Host"] = host
        headers["X-Forwarded-Port"] = port
        # Kong: var.request_uri without its query, i.e. the raw path as the client sent it,
        # still percent-encoded (K:kong/runloop/handler.lua, forwarded_path). Never the decoded
        # path: %00 or %0A decoded cannot be a header value.
        headers["X-Forwarded-Path"] = raw_path(request)
        headers["X-Real-IP"] = client_ip
        headers["Host"] = (
            service.host if service.port in (80, 443) else (f"{service.host}:{service.port}")
        )
        return headers

    def _upstream_path(self, ctx: Context) -> str:
        """Kong's upstream_uri: the normalised path (strip_path applied), escaped, then the
        query exactly as sent (K:kong/runloop/handler.lua)."""
        request, route = ctx.request, ctx.route
        path: str = ctx.state["path"]
        prefix = max((p for p in route.paths if path.startswith(p)), key=len, default="/")
        upstream = paths.escape(paths.upstream_path(path, prefix, route.strip_path))
        _, question, query = request.raw_path.partition("?")
        return upstream + (f"?{quote(query, safe=URL_SAFE)}" if question else "")

    def _targets(self, service: Service) -> Callable[[frozenset[str]], Target | None]:
        balancer = self.balancers.get(service.host)
        if balancer is not None:
            return balancer.pick
        direct = Target(service.host, service.port, 100)
        return lambda exclude: None if direct.address in exclude else direct

    def _body(self, ctx: Context) -> AsyncIterator[bytes] | None:
        request = ctx.request
        if not request.body_exists:
            return None
        limit = ctx.body_limit
        idle = self.limits.client_body_timeout

        async def stream() -> AsyncIterator[bytes]:
            if expects_continue(request):
                # Only now, after every plugin passed: a refused request never got 100.
                await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                request.writer.output_size = 0
            seen = 0
            while True:
                # client_body_timeout: between two successive reads (nginx semantics).
                try:
                    chunk = await asyncio.wait_for(request.content.readany(), idle)
                except TimeoutError:
                    ctx.state["body_timeout"] = True  # aiohttp may wrap the exception
                    raise BodyTimeout from None
                if not chunk:
                    return
                seen += len(chunk)
                if limit is not None and seen > limit:
                    ctx.state["body_too_large"] = True  # aiohttp may wrap the exception
                    raise BodyTooLarge
                yield chunk

        return stream()

    async def _proxy(self, ctx: Context, chain: list[GatewayPlugin]) -> web.StreamResponse:
        assert self.session is not None
        service, request = ctx.service, ctx.request
        pick = self._targets(service)
        body = self._body(ctx)
        timeout = aiohttp.ClientTimeout(
            total=None, connect=service.connect_timeout, sock_read=service.read_timeout
        )
        path = self._upstream_path(ctx)
        tried: set[str] = set()
        upstream: aiohttp.ClientResponse | None = None
        failure: aiohttp.ClientError | None = None
        for _attempt in range(service.retries + 1):
            target = pick(frozenset(tried))
            if target is None:
                if tried:
                    break
                return self._finish(
                    ctx,
                    chain,
                    error_response(
                        ctx.kong_request_id, 503, "failure to get a peer from the ring-balancer"
                    ),
                )
            tried.add(target.address)
            try:
                upstream = await self.session.request(
                    request.method,
                    URL(f"{service.protocol}://{target.address}{path}", encoded=True),
                    headers=ctx.upstream_headers,
                    data=body,
                    allow_redirects=False,
                    timeout=timeout,
                    skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
                )
                break
            except aiohttp.ClientConnectorError as exc:
                failure = exc
                continue  # nothing was sent: the next target may take it (Kong's retries)
            except BodyTooLarge:
                return self._finish(ctx, chain, too_large(ctx))
            except BodyTimeout:
                return self._drop_client(ctx)
            except TimeoutError:
                return self._finish(
                    ctx,
                    chain,
                    error_response(ctx.kong_request_id, 504, "The upstream server is timing out"),
                )
            except aiohttp.ClientError as exc:
                failure = exc
                break
        if ctx.state.get("body_timeout"):
            if upstream is not None:
                upstream.release()
            return self._drop_client(ctx)
        if ctx.state.get("body_too_large"):
            if upstream is not None:
                upstream.release()
            return self._finish(ctx, chain, too_large(ctx))
        if upstream is None:
            return self._finish(ctx, chain, bad_upstream(ctx, failure))
        try:
            response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
            for name, value in upstream.headers.items():
                if name.lower() not in HOP_BY_HOP:
                    response.headers.add(name, value)
            response.headers.setdefault("Server", SERVER)  # else aiohttp's, with versions
            self._finish(ctx, chain, response)
            await response.prepare(request)
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response
        finally:
            upstream.release()

    def _drop_client(self, ctx: Context) -> web.StreamResponse:
        """nginx on client_body_timeout: the request is terminated without an answer and the
        connection closed (the upstream request, already streaming, is aborted with it)."""
        log.info("client_body_timeout: request body stalled, connection closed")
        ctx.request.protocol.force_close()
        return web.Response(status=408)  # never sent: the connection is gone

    async def _proxy_websocket(
        self, ctx: Context, chain: list[GatewayPlugin]
    ) -> web.StreamResponse:
        """Kong OSS proxies a WebSocket as an opaque stream after running the plugins once on
        the handshake (shared/kong.md §6); here frames are relayed both ways, close codes kept."""
        assert self.session is not None
        request = ctx.request
        target = self._targets(ctx.service)(frozenset())
        if target is None:
            return self._finish(
                ctx,
                chain,
                error_response(
                    ctx.kong_request_id, 503, "failure to get a peer from the ring-balancer"
                ),
            )
        headers = CIMultiDict(
            (k, v) for k, v in ctx.upstream_headers.items() if k.lower() not in WS_HANDSHAKE
        )
        protocols = tuple(
            p.strip()
            for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",")
            if p.strip()
        )
        url = URL(
            f"{ctx.service.protocol}://{target.address}{self._upstream_path(ctx)}", encoded=True
        )
        try:
            upstream = await self.session.ws_connect(
                url,
                headers=headers,
                protocols=protocols,
                autoping=True,
                max_msg_size=0,
                timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=10.0),
            )
        except aiohttp.WSServerHandshakeError as exc:
            # The upstream refused the upgrade: relay its status (its body is not available).
            refused = web.Response(status=exc.status, headers={"Server": SERVER})
            return self._finish(ctx, chain, refused)
        except aiohttp.ClientError as exc:
            return self._finish(ctx, chain, bad_upstream(ctx, exc))
        downstream = web.WebSocketResponse(
            protocols=(upstream.protocol,) if upstream.protocol else (), max_msg_size=0
        )
        downstream.headers["Server"] = SERVER  # else aiohttp's, with versions
        self._finish(ctx, chain, downstream)
        try:
            await downstream.prepare(request)
            await relay(downstream, upstream)
        finally:
            await upstream.close()
        return downstream

    # --- the aiohttp app ------------------------------------------------------------------

    def app(self) -> web.Application:
        # nginx's client limits and timeouts, and no Content-Encoding decoding (server.py).
        app = application(self.limits)
        app[GATEWAY] = self

        async def lifecycle(app: web.Application) -> AsyncIterator[None]:
            await self.start()
            yield
            await self.stop()

        app.cleanup_ctx.append(lifecycle)
        # [\s\S]: a decoded path may hold a newline (%0A), which "." would not match.
        app.router.add_route("*", r"/{tail:[\s\S]*}", self.handle, expect_handler=_no_expect)
        return app

    def status_app(self) -> web.Application:
        """Kong's Status API subset: ``/status`` and ``/metrics`` (prometheus)."""
        app = web.Application()

        async def metrics(request: web.Request) -> web.Response:
            plugin = self.prometheus
            text = plugin.render() if plugin else ""
            for name, balancer in self.balancers.items():
                for state in balancer.states:
                    value = 1 if state.healthy else 0
                    text += (
                        f'kong_upstream_target_health{{upstream="{name}",'
                        f'target="{state.target.address}",state="healthy"}} {value}\n'
                    )
            return web.Response(text=text, content_type="text/plain", headers={"Server": SERVER})

        async def status(request: web.Request) -> web.Response:
            return web.json_response(
                {
                    "upstreams": {n: b.healthy_targets() for n, b in self.balancers.items()},
                    "note": "svc-gateway: local development gateway, not Kong",
                },
                headers={"Server": SERVER},
            )

        app.router.add_get("/metrics", metrics)
        app.router.add_get("/status", status)
        return app


def raw_path(request: web.Request) -> str:
    """The request path exactly as the client sent it (percent-encoded), without the query."""
    return quote(request.raw_path.partition("?")[0], safe=URL_SAFE)


def unread_body_expected(request: web.Request) -> bool:
    """An ``Expect: 100-continue`` request whose body has not been read to its end."""
    return expects_continue(request) and not request.content.is_eof()


def expects_continue(request: web.Request) -> bool:
    """HTTP/1.1 with ``Expect: 100-continue`` and a body to come."""
    return (
        request.version == aiohttp.HttpVersion11
        and request.headers.get("Expect", "").strip().lower() == "100-continue"
        and request.body_exists
    )


async def _no_expect(request: web.Request) -> None:
    """Replaces aiohttp's default expect handler, which sends ``100 Continue`` before the
    handler runs: Kong's request-size-limiting answers 417 before any body is asked for
    (shared/kong.md §4), so the gateway sends 100 itself once the plugins have passed."""


def is_websocket(request: web.Request) -> bool:
    return (
        request.method == "GET"
        and request.headers.get("Upgrade", "").lower() == "websocket"
        and "upgrade" in request.headers.get("Connection", "").lower()
    )


async def relay(
    downstream: web.WebSocketResponse, upstream: aiohttp.ClientWebSocketResponse
) -> None:
    """Copy frames both ways until either side closes; the close code crosses over."""

    async def pump(source: Any, sink: Any) -> None:
        async for message in source:
            if message.type == aiohttp.WSMsgType.TEXT:
                await sink.send_str(message.data)
            elif message.type == aiohttp.WSMsgType.BINARY:
                await sink.send_bytes(message.data)
            else:
                break
        code = source.close_code or aiohttp.WSCloseCode.OK
        with contextlib.suppress(ConnectionError, RuntimeError):
            await sink.close(code=code)

    tasks = [
        asyncio.create_task(pump(downstream, upstream)),
        asyncio.create_task(pump(upstream, downstream)),
    ]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, ConnectionError, RuntimeError):
                await task
