"""JSON logs with the request id on every line about a request.

The request id lives in a context variable set by the request-id middleware, so any logger call
made while serving a request (in the handler, the repository, the HTTP client) carries it.
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
from json.encoder import encode_basestring as _quote
from typing import Any, TextIO

REQUEST_ID_MAX = 128

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "svc_request_id", default=None
)
# The service a log line is about, where one process hosts several (the dev stack, tests); set
# per request by the chassis and at each app's startup, so background tasks inherit it.
service_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "svc_service", default=None
)

_RESERVED = set(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}


_ID_PREFIX = secrets.token_hex(8)
_ID_COUNTER = itertools.count(1)


def new_request_id() -> str:
    """A unique id for a request that came without one: a random per-process prefix and a
    counter (Kong's ``uuid#counter`` idea), ~10x cheaper than ``uuid4()`` on the hot path."""
    return f"{_ID_PREFIX}-{next(_ID_COUNTER):x}"


def log_request_id(value: str) -> str:
    """A request id as logs carry it: at most 128 characters (JSON escaping does the rest).

    Responses echo a client's id verbatim (api.md; Kong's correlation-id does the same)."""
    return value[:REQUEST_ID_MAX]


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
            payload["request_id"] = log_request_id(rid)
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
    """One JSON line per request, buffered and written in batches.

    The access log runs on every request; written through the logging module, one syscall per
    line, it cost about a third of a request's time in the chassis (bench/). So lines are built
    directly (same JSON shape as :class:`JSONFormatter`, strings escaped by the json module's C
    escaper) and flushed every ``flush_interval`` seconds, every ``max_lines`` lines, and at
    shutdown. A crash can lose at most the last ``flush_interval`` of access lines; error and
    application logs are not buffered. ``ACCESS_LOG=false`` turns it off.
    """

    def __init__(
        self,
        service: str,
        stream: TextIO | None = None,
        *,
        flush_interval: float = 0.1,
        max_lines: int = 256,
    ) -> None:
        self.stream = stream
        self.flush_interval = flush_interval
        self.max_lines = max_lines
        self._prefix = '"level": "info", "service": ' + _quote(service)
        self._prefix += ', "logger": "svc_core.access", "message": "request", "request_id": '
        self._lines: list[tuple[float, str, str, str, str, int, float]] = []
        self._timer: asyncio.TimerHandle | None = None

    def write(
        self,
        request_id: str,
        method: str,
        path: str,
        route: str,
        status: int,
        duration_ms: float,
    ) -> None:
        # Keep the raw values; lines are formatted in one go at flush time.
        self._lines.append(
            (time.time(), log_request_id(request_id), method, path, route, status, duration_ms)
        )
        if len(self._lines) >= self.max_lines:
            self.flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.flush_interval, self.flush)

    def _format(self) -> str:
        prefix, quote, out = self._prefix, _quote, []
        stamp_second, stamp = -1, ""
        for now, request_id, method, path, route, status, duration_ms in self._lines:
            second = int(now)
            if second != stamp_second:
                stamp_second = second
                stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            out.append(
                f'{{"time": "{stamp}.{int((now - second) * 1000):03d}Z", {prefix}'
                f'{quote(request_id)}, "method": {quote(method)}, "path": {quote(path)}, '
                f'"route": {quote(route)}, "status": {status}, "duration_ms": {duration_ms}}}\n'
            )
        return "".join(out)

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._lines:
            return
        chunk = self._format()
        self._lines.clear()
        stream = self.stream or sys.stderr
        try:
            stream.write(chunk)
            stream.flush()
        except (OSError, ValueError):  # a closed or broken log stream must not fail requests
            pass
