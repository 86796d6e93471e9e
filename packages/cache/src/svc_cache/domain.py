"""The rules of a cache entry: which keys are valid, how values are encoded and measured, and how
a remaining lifetime is reported."""

from __future__ import annotations

import json
from typing import Any

from svc_core import Conflict, PayloadTooLarge, ValidationFailed

MAX_VALUE_BYTES = 65_536
MAX_TTL_SECONDS = 2_592_000  # 30 days
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


class ValueTooLarge(PayloadTooLarge):
    code = "value_too_large"

    def default_detail(self) -> str:
        return f"The value is larger than {MAX_VALUE_BYTES} bytes as compact UTF-8 JSON."


class NotAnInteger(Conflict):
    code = "not_an_integer"


# "." and ".." reach us only percent-encoded (literal ones are dot segments the URL parser
# removes); they stay invalid so no proxy or client can read a key as a path step.
KEY_MESSAGE = "Must be 1-200 of A-Z a-z 0-9 : _ . - and not '.' or '..'."


def encode_value(value: Any) -> str:
    """The value as compact JSON text: what is stored, measured and sent back verbatim.

    422 for what JSON cannot carry (non-finite numbers, lone surrogates, absurd nesting); then
    413 when it is over :data:`MAX_VALUE_BYTES` as UTF-8.
    """
    try:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:
        message = "Strings must not contain lone surrogates."
        raise ValidationFailed.single("value", message) from None
    except ValueError:
        raise ValidationFailed.single("value", "Numbers must be finite.") from None
    except RecursionError:
        raise ValidationFailed.single("value", "The value is nested too deeply.") from None
    if size > MAX_VALUE_BYTES:
        raise ValueTooLarge()
    return text


def remaining_seconds(pttl_ms: int) -> int | None:
    """Redis PTTL (milliseconds; -1 for no expiry) as whole seconds rounded up, or None."""
    if pttl_ms < 0:
        return None
    # A key Redis still returns is alive, so it never reports 0 seconds left.
    return max(1, -(-pttl_ms // 1000))


def render_entry(key: str, value_json: str, ttl_seconds: int | None) -> bytes:
    """The entry ``{"key", "value", "ttl_seconds"}`` with the stored JSON text spliced in as is,
    so a value is never decoded and re-encoded on the way out."""
    ttl = "null" if ttl_seconds is None else str(ttl_seconds)
    return f'{{"key":{json.dumps(key)},"value":{value_json},"ttl_seconds":{ttl}}}'.encode()
