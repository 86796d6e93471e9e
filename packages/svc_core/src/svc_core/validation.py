"""Load a request's body or query string through the schemas its route declared.

Checks, in order: a body must be JSON (400 for another content type or malformed JSON), then the
schema (422 with dotted paths). A route that declares no body accepts an empty body or ``{}``;
a route that declares no query schema accepts no query parameters.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from svc_core.errors import BadRequest, MalformedJSON, PayloadTooLarge, ValidationFailed
from svc_core.routing import route_spec
from svc_core.schema import load

_JSON_TYPES = ("application/json",)


def _spec_schema(request: web.Request, which: str) -> Any:
    spec = route_spec(request.match_info.handler)
    if spec is None:
        raise RuntimeError(
            f"{request.match_info.handler!r} is not declared through a RouteTable; "
            "pass the schema explicitly"
        )
    return spec.schema_instance(which)


async def read_json(request: web.Request) -> Any:
    """The parsed JSON body; ``{}`` when the body is empty. 400 when it is not JSON."""
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise PayloadTooLarge("The request body is too large.") from None
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


async def body(
    request: web.Request, schema: Any = None, *, partial: bool = False
) -> dict[str, Any]:
    """Validate the JSON body against ``schema`` (default: the route's declared ``body``)."""
    data = await read_json(request)
    schema = schema if schema is not None else _spec_schema(request, "body")
    if schema is None:
        if data == {}:
            return {}
        if isinstance(data, dict):
            raise ValidationFailed({key: ["Unknown field."] for key in data})
        raise ValidationFailed({"_schema": ["This route takes no body."]})
    if isinstance(schema, type):
        schema = schema()
    return load(schema, data, partial=partial)


def query(request: web.Request, schema: Any = None) -> dict[str, Any]:
    """Validate the query string against ``schema`` (default: the route's declared ``query``)."""
    params = request.query
    flat: dict[str, str] = {}
    repeated: dict[str, list[str]] = {}
    for key, value in params.items():
        if key in flat:
            repeated[key] = ["Given more than once."]
        flat[key] = value
    if repeated:
        raise ValidationFailed(repeated)
    schema = schema if schema is not None else _spec_schema(request, "query")
    if schema is None:
        if flat:
            raise ValidationFailed({key: ["Unknown query parameter."] for key in flat})
        return {}
    if isinstance(schema, type):
        schema = schema()
    return load(schema, flat)
