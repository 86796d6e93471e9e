"""The local gateway's HTTP server: nginx's client limits, which Kong runs with (DEVELOPMENT TOOL).

Kong sets none of these directives (K:kong/templates/nginx_kong.lua, kong_defaults.lua), so
nginx's defaults apply, and api.md's "HTTP limits" row states them:

- ``client_header_timeout 60s``: the whole request head must arrive within 60 s, counted from
  the accept for a connection's first request and from the first byte of a later one. nginx
  then closes the connection without an answer (408 is only logged).
- ``client_body_timeout 60s``: at most 60 s between two successive reads of the body while
  the gateway reads it; then the connection is closed (``NGX_HTTP_REQUEST_TIME_OUT``
  terminates the request without a response).
- ``keepalive_timeout 75s``: an idle keep-alive connection closes 75 s after its last response.
- ``large_client_header_buffers 4 8k``: a request line or header line must fit in 8 KiB
  (a longer request target: 414 ``URI too long``; a longer header line: 400
  ``Request header or cookie too large``, nginx's 494 as Kong's error handler answers it,
  K:kong/error_handlers.lua), and the whole head in 4 x 8 KiB (the same 400).

aiohttp 3.14 has only ``keepalive_timeout`` (its timer also runs from the accept, and it closes
a connection whose next head is not complete when it fires) and per-line limits
(``max_line_size``, ``max_field_size``, counted without the ": " and CRLF). What it lacks is
added here: a :class:`~aiohttp.web_protocol.RequestHandler` subclass with the head timer and the
head size count, wired in through :class:`GatewayApplication` so that every runner serving the
gateway's app (``svc-gateway run``, the dev stack, the tests) gets it. The body timer is in the
proxy (``Gateway._body``), the only place that reads request bodies. Parse errors are answered
with Kong's JSON error body, never echoing the request, and logged without its bytes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import re
import secrets
import uuid
import warnings
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import LineTooLong
from aiohttp.streams import StreamReader
from aiohttp.web_protocol import RequestHandler

from svc_gateway.plugins import error_response

log = logging.getLogger("svc_gateway.server")
# A request head ends at its first empty line (CRLF or bare LF).
_HEAD_END = re.compile(rb"\r?\n\r?\n")
# After refusing a head, read and drop what the client still sends for this long before
# closing, so that the close does not reset the connection under the answer (nginx lingers).
LINGER = 2.0


@dataclasses.dataclass(frozen=True)
class ClientLimits:
    """nginx's defaults, in seconds and bytes; tests shorten the timeouts."""

    client_header_timeout: float = 60.0
    client_body_timeout: float = 60.0
    keepalive_timeout: float = 75.0
    header_buffer_size: int = 8192
    header_buffers: int = 4

    @property
    def head_limit(self) -> int:
        return self.header_buffers * self.header_buffer_size

    def handler_args(self) -> dict[str, Any]:
        """aiohttp's own per-line limits and keep-alive timer, set to nginx's values."""
        return {
            "keepalive_timeout": self.keepalive_timeout,
            # GatewayConnection measures lines and the head itself (aiohttp 3.14's C parser
            # loses a header name's size), so aiohttp's own limits sit above it.
            "max_line_size": self.head_limit,
            "max_field_size": self.head_limit,
            # no count limit in nginx; the head size limit bounds it
            "max_headers": self.head_limit // 4,
            # Kong forwards request bodies byte for byte, never decoding Content-Encoding
            "auto_decompress": False,
        }


LIMITS: web.AppKey[ClientLimits] = web.AppKey("svc_gateway_client_limits", ClientLimits)


def kong_error(status: int, reason: str, message: str) -> bytes:
    """A complete ``Connection: close`` response with Kong's error body (3.5+ template)."""
    body = json.dumps(
        {"message": message, "request_id": secrets.token_hex(16)}, separators=(",", ":")
    ).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\n"
        "Content-Type: application/json; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"X-Request-ID: {uuid.uuid4()}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    return head + body


class GatewayConnection(RequestHandler):
    """One client connection, with nginx's head timer and head size limit."""

    def __init__(self, manager: web.Server, *, limits: ClientLimits, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._limits = limits
        self._head_timer: asyncio.TimerHandle | None = None
        self._head = bytearray()
        self._payload: StreamReader | None = None
        self._refused = False

    # --- the head timer ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._arm()  # the first head: client_header_timeout from the accept

    def connection_lost(self, exc: BaseException | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        if self._head_timer is None:
            self._head_timer = self._loop.call_later(
                self._limits.client_header_timeout, self._head_timed_out
            )

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _awaiting_head(self) -> bool:
        """Between requests: nothing parsed and waiting, no request running, no body due."""
        return (
            not self._upgraded
            and self._payload_parser is None
            and not self._messages
            and not self._request_in_progress
            and (self._payload is None or self._payload.is_eof())
        )

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport is not None and self._awaiting_head():
            log.info("client_header_timeout: request head incomplete, connection closed")
            self.force_close()

    def _process_keepalive(self) -> None:
        # A head is on its way: client_header_timeout governs it, not keepalive_timeout.
        if self._head_timer is not None:
            self._keepalive_handle = None
            return
        super()._process_keepalive()

    # --- reading ----------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # lingering after a refusal: read and drop
        if data and self._awaiting_head():
            self._arm()  # a later head: client_header_timeout from its first byte
            refused = self._check_head(data)
            if refused is not None:
                self._refuse(*refused)
                return
        count = self._request_count
        super().data_received(data)
        if self._request_count != count:  # a head was parsed (or refused by the parser)
            if self._messages:
                self._payload = self._messages[-1][1]
            self._head = bytearray()
            self._disarm()

    def _check_head(self, data: bytes) -> tuple[int, str, str] | None:
        """nginx's large_client_header_buffers on the head received so far: every line,
        CRLF included, within one buffer (the request line: 414), the head within all."""
        tail = bytes(self._head[-3:])
        end = _HEAD_END.search(tail + data)
        self._head += data[: max(0, end.end() - len(tail))] if end else data
        size = self._limits.header_buffer_size
        lines = self._head.split(b"\n")
        if len(lines[0]) + 1 > size:
            return 414, "Request-URI Too Large", "URI too long"
        if len(self._head) > self._limits.head_limit or any(
            len(line) + 1 > size for line in lines[1:]
        ):
            return 400, "Bad Request", "Request header or cookie too large"
        return None

    def _refuse(self, status: int, reason: str, message: str) -> None:
        self._refused = True
        self._disarm()
        log.info("request head refused", extra={"status": status, "reason": message})
        if self.transport is not None:
            self.transport.write(kong_error(status, reason, message))
            if self.transport.can_write_eof():
                self.transport.write_eof()
        self._loop.call_later(LINGER, self.force_close)

    # --- answers to what the parser refused ---------------------------------------------------

    def handle_error(
        self,
        request: Any,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """Kong's error bodies instead of aiohttp's text, which echoes the offending bytes;
        logged by exception class only (a header may hold a token)."""
        if isinstance(exc, LineTooLong):
            status, text = 400, "Request header or cookie too large"
        elif status < 500:
            text = "Bad request"
        elif status == 504:
            text = "The upstream server is timing out"
        else:
            text = "An unexpected error occurred"
        if status >= 500:
            log.error("gateway error", exc_info=exc)
        else:
            log.info(
                "request refused by the HTTP parser",
                extra={"status": status, "error": type(exc).__name__},
            )
        if request.writer.output_size > 0:
            raise ConnectionError("a response was already being sent")
        response = error_response(secrets.token_hex(16), status, text)
        response.headers["X-Request-ID"] = str(uuid.uuid4())
        response.force_close()
        return response


class GatewayServer(web.Server):
    """aiohttp's Server, making :class:`GatewayConnection` protocols."""

    def __init__(self, base: web.Server, limits: ClientLimits) -> None:
        super().__init__(
            base.request_handler,
            request_factory=base.request_factory,
            handler_cancellation=base.handler_cancellation,
            loop=base._loop,
            **base._kwargs,
        )
        self.limits = limits

    def __call__(self) -> GatewayConnection:
        return GatewayConnection(self, loop=self._loop, limits=self.limits, **self._kwargs)


with warnings.catch_warnings():
    # aiohttp discourages subclassing Application (DeprecationWarning); this subclass only
    # swaps the protocol factory, which aiohttp offers no other hook for.
    warnings.simplefilter("ignore", DeprecationWarning)

    class GatewayApplication(web.Application):
        """A web.Application whose server applies :class:`ClientLimits` (``app[LIMITS]``)."""

        def _make_handler(self, *, loop: Any = None, **kwargs: Any) -> web.Server:
            base = super()._make_handler(loop=loop, **kwargs)
            return GatewayServer(base, self[LIMITS])


def application(limits: ClientLimits) -> web.Application:
    app = GatewayApplication(handler_args=limits.handler_args())
    app[LIMITS] = limits
    return app
