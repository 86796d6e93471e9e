"""``/openapi.json``: an OpenAPI 3.1 document built from the same schemas that validate requests."""

from __future__ import annotations

import re
from http import HTTPStatus
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from svc_core.routing import RouteSpec

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_PARAM = re.compile(r"\{([^}:]+)(?::[^}]*)?\}")

PROBLEM = {
    "type": "object",
    "required": ["type", "title", "status", "detail", "code", "request_id"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string"},
        "request_id": {"type": "string"},
        "errors": {
            "type": "object",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
        },
    },
}


def _schema_name(schema: Any) -> str:
    cls = schema if isinstance(schema, type) else type(schema)
    return cls.__name__.removesuffix("Schema")


def build_spec(title: str, version: str, routes: list[RouteSpec]) -> dict[str, Any]:
    spec = APISpec(
        title=title,
        version=version,
        openapi_version="3.1.0",
        plugins=[MarshmallowPlugin(schema_name_resolver=_schema_name)],
    )
    spec.components.schema("Problem", PROBLEM)
    spec.components.security_scheme(
        "bearer", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    )
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        path = _PARAM.sub(r"{\1}", route.path)
        operation: dict[str, Any] = {
            "summary": route.summary,
            "operationId": route.handler.__name__,
            "responses": {},
        }
        params: list[dict[str, Any]] = (
            [{"in": "path", "schema": route.path_params}]
            if route.path_params is not None
            else [
                {"in": "path", "name": name, "required": True, "schema": {"type": "string"}}
                for name in _PARAM.findall(route.path)
            ]
        )
        if route.query is not None:
            params.append({"in": "query", "schema": route.query})
        params.extend(dict(p) for p in route.parameters)
        if params:
            operation["parameters"] = params
        if route.body is not None:
            body = route.schema_instance("body")
            operation["requestBody"] = {
                # an empty body is accepted where no field is required
                "required": any(f.required for f in body.fields.values()) if body else True,
                "content": {"application/json": {"schema": route.body}},
            }
        ok: dict[str, Any] = {"description": HTTPStatus(route.status).phrase}
        if route.response is not None:
            schema: Any = route.response
            if route.many:
                schema = {
                    "type": "object",
                    "required": ["items", "next_cursor"],
                    "properties": {
                        "items": {"type": "array", "items": route.response},
                        "next_cursor": {"type": ["string", "null"]},
                    },
                }
            ok["content"] = {route.content_type: {"schema": schema}}
        operation["responses"][str(route.status)] = ok
        # any request may be refused as not valid HTTP (a request line over 8 KiB: a long query
        # value or path id; bad header bytes): the runner's 400 (api.md "HTTP limits")
        errors = {400, *route.errors}
        if not route.public:
            errors.add(401)
            operation["security"] = [{"bearer": []}]
        takes_json = route.method in _BODY_METHODS and not route.raw_body
        if takes_json:
            # malformed JSON or another content type (400), too large (413), an unsupported
            # Content-Encoding (415), unknown fields (422): the chassis checks every body
            errors |= {413, 415, 422}
        if route.body is not None or route.query is not None or route.path_params is not None:
            errors.add(422)
        for status in sorted(errors):
            operation["responses"][str(status)] = {
                "description": HTTPStatus(status).phrase,
                "content": {
                    "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
                },
            }
        paths.setdefault(path, {})[route.method.lower()] = operation
    for path, operations in paths.items():
        spec.path(path=path, operations=operations)
    return spec.to_dict()
