"""JSON logs with the request id on every line about a request.

The request id lives in a context variable set by the request pipeline, so any logger call made
while serving a request (in the handler, the repository, the HTTP client) carries it.
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import json
import logging
import secrets
import sys
import time
import traceback
from collections.abc import Callable
from json.encoder import encode_basestring as _quote
from typing import Any, TextIO

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "svc_request_id", default=None
)
# The service a log line is about, where one process hosts several (the dev stack, tests); set
# per request by the chassis and at each app's startup, so background tasks inherit it.
service_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "svc_service", default=None
)

#: set by svc_core.tracing when tracing is on: (trace id, span id) of the current span or None
trace_ids: Callable[[], tuple[str, str] | None] | None = None

_RESERVED = set(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}


_ID_PREFIX = secrets.token_hex(8)
_ID_COUNTER = itertools.count(1)


def new_request_id() -> str:
    """A unique id for a request that came without one: a random per-process prefix and a
    counter (Kong's ``uuid#counter`` idea), ~10x cheaper than ``uuid4()`` on the hot path."""
    return f"{_ID_PREFIX}-{next(_ID_COUNTER):x}"


class JSONFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id, and any ``extra``."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        created = time.gmtime(record.created)
        payload: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", created) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "service": service_var.get() or self.service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        rid = request_id_var.get()
        if rid is not None:
            payload["request_id"] = rid  # at most 200 visible ASCII (the chassis)
        if trace_ids is not None and (ids := trace_ids()) is not None:
            payload["trace_id"], payload["span_id"] = ids
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                payload[key] = value
        if record.exc_info:
            payload["exception"] = "".join(traceback.format_exception(*record.exc_info))
        return json.dumps(payload, default=str, ensure_ascii=False)


def configure_logging(service: str, level: str = "INFO") -> None:
    """Send every log record to stderr as JSON. Idempotent."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_svc_core", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JSONFormatter(service))
    handler._svc_core = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.getLogger("aiohttp.access").propagate = False


class AccessLog:
    """One JSON line per request, formatted as it is written, buffered and written in batches.

    The access log runs on every request, so it does the least it can (bench/micro.py):

    - each line is one f-string: the parts that never change (service, logger, message) are
      formatted once, each route's name is escaped once, the method is an HTTP token (never
      escaped), the request id and path through the json module's C escaper;
    - the timestamp is formatted once per millisecond (the date once per second) and reused by
      every line of that millisecond;
    - lines go to a list and are written with one ``write`` when ``max_bytes`` are buffered or
      ``flush_interval`` seconds after the first line of a batch (and at shutdown): a crash can
      lose at most that much; error and application logs are not buffered.

    Same fields and JSON shape as :class:`JSONFormatter` (``trace_id`` and ``span_id`` too, when
    tracing is on: :meth:`write_traced`). ``ACCESS_LOG=false`` turns it off.
    """

    def __init__(
        self,
        service: str,
        stream: TextIO | None = None,
        *,
        flush_interval: float = 0.1,
        max_bytes: int = 64 * 1024,
    ) -> None:
        self.stream = stream
        self.flush_interval = flush_interval
        self.max_bytes = max_bytes
        self._head = (
            '", "level": "info", "service": '
            + _quote(service)
            + ', "logger": "svc_core.access", "message": "request", "request_id": '
        )
        self._routes: dict[str, str] = {}
        self._lines: list[str] = []
        self._size = 0
        self._timer: asyncio.TimerHandle | None = None
        self._ms = -1
        self._second = -1
        self._date = ""
        self._stamp = ""

    def _stamp_of(self, ms: int) -> str:
        """``{"time": "<RFC 3339 with ms>`` for epoch millisecond ``ms``."""
        second = ms // 1000
        if second != self._second:
            self._second = second
            self._date = '{"time": "' + time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        self._ms = ms
        self._stamp = f"{self._date}.{ms % 1000:03d}Z"
        return self._stamp

    def _route(self, route: str) -> str:
        quoted = self._routes[route] = f', "route": {_quote(route)}, "status": '
        return quoted

    def write(
        self,
        request_id: str,
        method: str,
        path: str,
        route: str,
        status: int,
        seconds: float,
        trace: str = "",
    ) -> None:
        """Log one request that took ``seconds`` (written as ``duration_ms``, 2 decimals);
        ``trace`` is the ids' fragment :meth:`write_traced` puts after the request id."""
        ms = int(time.time() * 1000)
        stamp = self._stamp if ms == self._ms else self._stamp_of(ms)
        line = (
            f"{stamp}{self._head}{_quote(request_id)}, {trace}"
            f'"method": "{method}", "path": {_quote(path)}'
            f"{self._routes.get(route) or self._route(route)}{status}, "
            f'"duration_ms": {seconds * 1000:.2f}}}\n'
        )
        self._lines.append(line)
        self._size += len(line)
        if self._size >= self.max_bytes:
            self.flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.flush_interval, self.flush)

    def write_traced(
        self,
        request_id: str,
        method: str,
        path: str,
        route: str,
        status: int,
        seconds: float,
    ) -> None:
        """:meth:`write` with the current span's ``trace_id`` and ``span_id`` after the request
        id, as in application log lines. The chassis binds this method instead of :meth:`write`
        only when tracing is on, so with tracing off the access log does not even check."""
        ids = trace_ids() if trace_ids is not None else None
        if ids is None:  # no span (a sampled-out request is still a valid context)
            self.write(request_id, method, path, route, status, seconds)
            return
        # both ids are lowercase hex (svc_core.tracing.current_ids): nothing to escape
        trace = f'"trace_id": "{ids[0]}", "span_id": "{ids[1]}", '
        self.write(request_id, method, path, route, status, seconds, trace)

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._lines:
            return
        chunk = "".join(self._lines)
        self._lines.clear()
        self._size = 0
        stream = self.stream or sys.stderr
        try:
            stream.write(chunk)
            stream.flush()
        except (OSError, ValueError):  # a closed or broken log stream must not fail requests
            pass
