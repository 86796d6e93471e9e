"""JSON logs with the request id on every line about a request.

The request id lives in a context variable set by the request-id middleware, so any logger call
made while serving a request (in the handler, the repository, the HTTP client) carries it.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import time
import traceback
from typing import Any

REQUEST_ID_MAX = 128
_UNSAFE = re.compile(r"[^\x21-\x7e]")

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "svc_request_id", default=None
)

_RESERVED = set(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}


def clean_request_id(value: str | None) -> str | None:
    """A client-sent request id fit for logs and headers: printable ASCII, at most 128 chars."""
    if not value:
        return None
    cleaned = _UNSAFE.sub("", value)[:REQUEST_ID_MAX]
    return cleaned or None


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
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        rid = request_id_var.get()
        if rid is not None:
            payload["request_id"] = rid
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
