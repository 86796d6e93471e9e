"""The error model: handlers raise :class:`Problem` subclasses; the request pipeline renders
every error as ``application/problem+json`` (RFC 9457) with the fields api.md names.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any, ClassVar

PROBLEM_CONTENT_TYPE = "application/problem+json"


class Problem(Exception):
    """An error a client may see. Subclasses fix ``status`` and ``code``; ``detail`` varies."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"
    title: ClassVar[str | None] = None

    def __init__(
        self,
        detail: str | None = None,
        *,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
        status: int | None = None,
    ) -> None:
        self.detail = detail or self.default_detail()
        self.instance_code = code or self.code
        self.instance_status = status or self.status
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})
        super().__init__(self.detail)

    def default_detail(self) -> str:
        return HTTPStatus(self.status).description or HTTPStatus(self.status).phrase

    def body(self, request_id: str) -> dict[str, Any]:
        status = self.instance_status
        title = self.title or HTTPStatus(status).phrase
        body: dict[str, Any] = {
            "type": f"https://errors.svc.example/{self.instance_code}",
            "title": title,
            "status": status,
            "detail": self.detail,
            "code": self.instance_code,
            "request_id": request_id,
        }
        body.update(self.extra)
        return body


class BadRequest(Problem):
    status = 400
    code = "bad_request"


class MalformedJSON(BadRequest):
    code = "malformed_json"


class Unauthorized(Problem):
    status = 401
    code = "unauthorized"

    def __init__(self, detail: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"WWW-Authenticate": 'Bearer error="invalid_token"'})
        super().__init__(detail, **kwargs)


class SessionRevoked(Unauthorized):
    code = "session_revoked"

    def default_detail(self) -> str:
        return "This session has been revoked; log in again."


class PaymentRequired(Problem):
    status = 402
    code = "payment_required"


class Forbidden(Problem):
    status = 403
    code = "forbidden"


class NotFound(Problem):
    status = 404
    code = "not_found"

    def default_detail(self) -> str:
        return "The requested resource does not exist."


class MethodNotAllowed(Problem):
    status = 405
    code = "method_not_allowed"


class Conflict(Problem):
    status = 409
    code = "conflict"


class PayloadTooLarge(Problem):
    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(Problem):
    status = 415
    code = "unsupported_media_type"


class RangeNotSatisfiable(Problem):
    status = 416
    code = "range_not_satisfiable"


class ValidationFailed(Problem):
    """422 with ``errors``: ``{"dotted.path": ["message", ...]}``."""

    status = 422
    code = "validation_failed"

    def __init__(self, errors: Mapping[str, Sequence[str]], detail: str | None = None) -> None:
        self.errors = {path: list(messages) for path, messages in errors.items()}
        super().__init__(detail or "The request is not valid.", extra={"errors": self.errors})

    @classmethod
    def single(cls, path: str, message: str) -> ValidationFailed:
        return cls({path: [message]})


class TooManyRequests(Problem):
    status = 429
    code = "too_many_requests"

    def __init__(self, detail: str | None = None, *, retry_after: int, **kwargs: Any) -> None:
        headers = dict(kwargs.pop("headers", {}) or {})
        headers["Retry-After"] = str(max(1, int(retry_after)))
        super().__init__(detail, headers=headers, **kwargs)


class ServiceUnavailable(Problem):
    status = 503
    code = "service_unavailable"


class DependencyUnavailable(ServiceUnavailable):
    """A dependency (MongoDB, Redis, another service) did not answer in time."""

    code = "dependency_unavailable"


class InternalError(Problem):
    status = 500
    code = "internal_error"

    def default_detail(self) -> str:
        return "An unexpected error occurred. Quote the request_id when reporting it."


def flatten_errors(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """Turn marshmallow's nested error dict into ``{"items.0.quantity": [...]}``."""
    flat: dict[str, list[str]] = {}
    if isinstance(messages, Mapping):
        for key, value in messages.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            if key == "_schema":
                path = prefix or "_schema"
            for sub_path, sub_messages in flatten_errors(value, path).items():
                flat.setdefault(sub_path, []).extend(sub_messages)
    elif isinstance(messages, list | tuple):
        if all(isinstance(m, str) for m in messages):
            flat[prefix or "_schema"] = [str(m) for m in messages]
        else:
            for item in messages:
                for sub_path, sub_messages in flatten_errors(item, prefix).items():
                    flat.setdefault(sub_path, []).extend(sub_messages)
    else:
        flat[prefix or "_schema"] = [str(messages)]
    return flat
