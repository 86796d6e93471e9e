"""``/openapi.json``: an OpenAPI 3.1 document built from the same schemas that validate requests."""

from __future__ import annotations

import re
from http import HTTPStatus
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from svc_core.routing import RouteSpec

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
        params = [
            {"in": "path", "name": name, "required": True, "schema": {"type": "string"}}
            for name in _PARAM.findall(route.path)
        ]
        if route.query is not None:
            params.append({"in": "query", "schema": route.query})
        if params:
            operation["parameters"] = params
        if route.body is not None:
            operation["requestBody"] = {
                "required": True,
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
        errors = set(route.errors)
        if not route.public:
            errors.add(401)
            operation["security"] = [{"bearer": []}]
        if route.body is not None or route.query is not None:
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
