"""One WebSocket: a bounded outgoing queue drained by its own writer task.

Nothing that delivers to a socket ever waits for it: ``send`` only puts a frame on the queue.
A socket whose queue is full is too slow to keep up, and is closed with 1013 (try again later)
without slowing anyone else (style.md, "Real-time").
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from aiohttp import WSCloseCode, WSMessage, web

from svc_chat import domain
from svc_core import Claims, new_id

log = logging.getLogger("svc_chat.connection")

TRY_AGAIN_LATER = 1013
SESSION_ENDED = 4001
CLOSE_TIMEOUT = 5.0  # a close frame the client never answers (shutdown: queued frames go first)
CUT_OFF_TIMEOUT = 1.0  # a client that is cut off gets less


class _Close:
    def __init__(self, code: int, reason: str) -> None:
        self.code = code
        self.reason = reason


class SocketStats:
    """What this instance's sockets did, for the metrics (the hub's, one per instance)."""

    __slots__ = ("slow_closes",)

    def __init__(self) -> None:
        #: sockets closed with 1013 because their queue was full
        self.slow_closes = 0


class Connection:
    def __init__(
        self,
        ws: web.WebSocketResponse,
        claims: Claims,
        *,
        queue_size: int,
        stats: SocketStats | None = None,
    ) -> None:
        self.id = new_id()
        self.stats = stats
        self.ws = ws
        self.claims = claims
        self.queue: asyncio.Queue[str | _Close] = asyncio.Queue(maxsize=queue_size)
        self.queue_size = queue_size
        #: room id -> seq of the last message delivered to this socket in that room
        self.rooms: dict[str, int] = {}
        self.rate = domain.RateLimit()
        self.closing = False
        self._held: list[str] | None = None
        self._writer: asyncio.Task[None] | None = None
        self._close_request: asyncio.Future[tuple[int, str, float]] = (
            asyncio.get_running_loop().create_future()
        )
        self._finished = asyncio.Event()

    @property
    def customer_id(self) -> str:
        return self.claims.sub

    # --- sending ----------------------------------------------------------------------------

    def send(self, frame: str) -> None:
        """Queue one frame (already JSON); never waits. A full queue closes the socket (1013)."""
        if self.closing:
            return
        if self._held is not None:
            if len(self._held) >= self.queue_size:
                self._too_slow()
                return
            self._held.append(frame)
            return
        try:
            self.queue.put_nowait(frame)
        except asyncio.QueueFull:
            self._too_slow()

    def _too_slow(self) -> None:
        log.info("socket too slow, closing", extra={"connection": self.id})
        if self.stats is not None:
            self.stats.slow_closes += 1
        self.close_now(TRY_AGAIN_LATER, "too slow")

    def send_json(self, data: dict[str, Any]) -> None:
        self.send(json.dumps(data, ensure_ascii=False))

    def error(self, code: str, detail: str) -> None:
        self.send_json({"type": "error", "code": code, "detail": detail})

    async def send_waiting(self, frame: str) -> None:
        """Queue one frame, waiting for room (a replay: only this socket waits for itself)."""
        if not self.closing:
            await self.queue.put(frame)

    def hold(self) -> None:
        """Keep room deliveries aside (while this socket's own message is being acked)."""
        self._held = []

    def release(self, first: str | None = None) -> None:
        """Stop holding: send ``first`` (the ack), then what was held, in order."""
        held, self._held = self._held or [], None
        if first is not None:
            self.send(first)
        for frame in held:
            self.send(frame)

    # --- the writer -------------------------------------------------------------------------

    def start(self) -> None:
        self._writer = asyncio.create_task(self._write(), name=f"svc-chat-writer-{self.id}")

    async def _write(self) -> None:
        while True:
            item = await self.queue.get()
            if isinstance(item, _Close):
                self._request_close(item.code, item.reason, CLOSE_TIMEOUT)
                return
            try:
                await self.ws.send_str(item)
            except (ConnectionError, RuntimeError):
                return  # the socket is gone; the reader notices and cleans up

    # --- the reader -------------------------------------------------------------------------

    async def receive(self) -> WSMessage | None:
        """The client's next message, or None once the socket has been closed.

        The close itself is done here, by the reader: aiohttp drops the connection without
        waiting for the client's close reply when ``close()`` runs beside a ``receive()``."""
        if not self._close_request.done():
            incoming: asyncio.Future[WSMessage] = asyncio.ensure_future(self.ws.receive())
            waiting: set[asyncio.Future[Any]] = {incoming, self._close_request}
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            if incoming.done():
                return incoming.result()
            incoming.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await incoming
        code, reason, timeout = self._close_request.result()
        # Past the timeout aiohttp closes the transport: what is buffered (the close frame
        # included) still reaches a client that reads again; nobody here waits for it.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ws.close(code=code, message=reason.encode()), timeout)
        return None

    def _request_close(self, code: int, reason: str, timeout: float) -> None:
        if not self._close_request.done():
            self._close_request.set_result((code, reason, timeout))

    # --- closing ----------------------------------------------------------------------------

    def close_now(self, code: int, reason: str) -> None:
        """Close at once, dropping what is queued (too slow, session over)."""
        if self.closing:
            return
        self.closing = True
        if self._writer is not None:
            self._writer.cancel()
        self._request_close(code, reason, CUT_OFF_TIMEOUT)

    async def close_after_flush(
        self, code: int = WSCloseCode.GOING_AWAY, reason: str = "shutting down"
    ) -> None:
        """Send what is queued, then close (shutdown). Bounded by CLOSE_TIMEOUT."""
        if not self.closing:
            self.release()
            self.closing = True
            try:
                self.queue.put_nowait(_Close(code, reason))
            except asyncio.QueueFull:
                self.closing = False
                self.close_now(code, reason)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._finished.wait(), CLOSE_TIMEOUT * 2)

    async def stop(self) -> None:
        """The socket is finished (its handler is returning): stop the writer."""
        self.closing = True
        if self._writer is not None and not self._writer.done():
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._writer
        self._finished.set()
