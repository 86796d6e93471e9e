"""Request validation through the schemas a route declares.

The chassis validates every request before its handler runs (see :mod:`svc_core.pipeline`);
a handler reads the results with :func:`body`, :func:`query` and :func:`resource`, and never
calls anything just to refuse undeclared input.

Body checks, in order: a ``Content-Encoding`` other than gzip or deflate is 415
``unsupported_content_encoding``; the decoded body past the size limit is 413; a non-empty body
must be JSON (400 for another content type or malformed JSON); then the schema (422 with dotted
paths). A route that declares no body accepts an empty body or ``{}``; a route that declares no
query schema accepts no query parameters.
"""

from __future__ import annotations

import json
import zlib
from typing import Any

from aiohttp import web
from marshmallow import Schema

from svc_core import keys
from svc_core.errors import (
    BadRequest,
    MalformedJSON,
    PayloadTooLarge,
    UnsupportedMediaType,
    ValidationFailed,
)
from svc_core.schema import load

_JSON_TYPES = ("application/json",)
_DECODERS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


# --- what handlers read ---------------------------------------------------------------------


def body(request: web.Request) -> dict[str, Any]:
    """The request's body, validated by the route's ``body`` schema (``{}`` when it has none)."""
    validated: dict[str, Any] = request.get(keys.BODY, {})
    return validated


def query(request: web.Request) -> dict[str, Any]:
    """The query parameters, validated by the route's ``query`` schema (``{}`` without one)."""
    validated: dict[str, Any] = request.get(keys.QUERY, {})
    return validated


def resource(request: web.Request) -> Any:
    """What the route's ``load`` returned for the resource named in the path."""
    return request[keys.RESOURCE]


# --- what the chassis runs ------------------------------------------------------------------


def _decode(raw: bytes, encoding: str, limit: int) -> bytes:
    """``raw`` decoded per ``Content-Encoding``, never more than ``limit`` bytes out."""
    if encoding in ("", "identity"):
        return raw
    wbits = _DECODERS.get(encoding)
    if wbits is None:
        raise UnsupportedMediaType(
            f"Content-Encoding {encoding!r} is not supported; send gzip, deflate or none.",
            code="unsupported_content_encoding",
        )
    decoder = zlib.decompressobj(wbits)
    try:
        out = decoder.decompress(raw, limit + 1)
        if len(out) > limit or decoder.unconsumed_tail:
            raise PayloadTooLarge("The request body is too large once decoded.")
        out += decoder.flush()
    except zlib.error:
        raise MalformedJSON(f"The request body is not valid {encoding} data.") from None
    if not decoder.eof or len(out) > limit:
        if len(out) > limit:
            raise PayloadTooLarge("The request body is too large once decoded.")
        raise MalformedJSON(f"The request body is not valid {encoding} data.")
    return out


async def read_json(request: web.Request) -> Any:
    """The parsed JSON body; ``{}`` when the body is empty. 400 when it is not JSON."""
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise PayloadTooLarge("The request body is too large.") from None
    encoding = request.headers.get("Content-Encoding", "").strip().lower()
    raw = _decode(raw, encoding, request.app[keys.SETTINGS].client_max_size)
    if not raw.strip():
        return {}
    ctype = request.content_type
    if ctype not in _JSON_TYPES and not ctype.endswith("+json"):
        raise BadRequest(
            f"Expected Content-Type application/json, got {ctype or 'none'}.",
            code="unsupported_content_type",
        )
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, json.JSONDecodeError, _NotJSON):
        raise MalformedJSON("The request body is not valid UTF-8 JSON.") from None
    except (ValueError, RecursionError):
        # Valid JSON beyond what is processed: nesting deeper than the parser's stack (about
        # 1000 levels) or an integer of more than 4300 digits (Python's int limit).
        raise ValidationFailed(
            {"_schema": ["The JSON is nested too deeply or has a number too long to process."]}
        ) from None


class _NotJSON(ValueError):
    pass


def _reject_constant(name: str) -> Any:
    """``NaN``, ``Infinity``, ``-Infinity``: not JSON (RFC 8259), though Python accepts them."""
    raise _NotJSON(name)


async def validate_body(request: web.Request, schema: Schema | None) -> dict[str, Any]:
    """The JSON body validated against ``schema``; without one, only empty or ``{}`` passes."""
    data = await read_json(request)
    if schema is None:
        if data == {}:
            return {}
        if isinstance(data, dict):
            raise ValidationFailed({key: ["Unknown field."] for key in data})
        raise ValidationFailed({"_schema": ["This route takes no body."]})
    return load(schema, data)


def validate_query(
    request: web.Request, schema: Schema | None, allowed: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """The query string validated against ``schema``; without one, only ``allowed`` names
    (the WebSocket route's ``jwt``) may appear."""
    params = request.query
    if not params:
        return load(schema, {}) if schema is not None else {}
    flat: dict[str, str] = {}
    repeated: dict[str, list[str]] = {}
    for key, value in params.items():
        if key in flat:
            repeated[key] = ["Given more than once."]
        flat[key] = value
    if repeated:
        raise ValidationFailed(repeated)
    declared = _names(schema) | allowed
    unknown = flat.keys() - declared
    if unknown:
        raise ValidationFailed({key: ["Unknown query parameter."] for key in sorted(unknown)})
    for name in allowed:
        flat.pop(name, None)
    return load(schema, flat) if schema is not None else {}


def _names(schema: Schema | None) -> frozenset[str]:
    if schema is None:
        return frozenset()
    names: frozenset[str] | None = getattr(schema, "_svc_names", None)
    if names is None:
        names = frozenset(f.data_key or name for name, f in schema.load_fields.items())
        schema._svc_names = names  # type: ignore[attr-defined]
    return names
