"""Request and response shapes. No public shape has a field for a hash or a stored token form,
so neither can leak. Strict string fields turn ``{"username": {"$ne": null}}`` into a 422."""

from __future__ import annotations

import hmac
from typing import Any

from marshmallow import ValidationError, validates_schema

from svc_core import Email, Id, Pattern, Schema, Str, Timestamp, fields, validate

USERNAME = Pattern("[A-Za-z0-9_.-]+", error="Only letters A-Z, digits and _ . - are allowed.")
PASSWORD_LENGTH = validate.Length(min=8, max=128)  # code points, every one significant


def _email(**kwargs: Any) -> Email:
    return Email(validate=validate.Length(max=254), **kwargs)


class RegisterIn(Schema):
    username = Str(
        required=True,
        validate=[
            validate.Length(min=3, max=32),
            USERNAME,
        ],
    )
    email = _email(required=True)
    password = Str(required=True, validate=PASSWORD_LENGTH)


class LoginIn(Schema):
    username = Str(required=True, validate=validate.Length(min=1, max=254))  # or the email
    password = Str(required=True, validate=validate.Length(min=1, max=128))


class RefreshIn(Schema):
    refresh_token = Str(required=True, validate=validate.Length(min=1, max=512))


class ProfileUpdate(Schema):
    email = _email(required=True)


class PasswordChange(Schema):
    current_password = Str(required=True, validate=validate.Length(min=1, max=128))
    new_password = Str(required=True, validate=PASSWORD_LENGTH)

    @validates_schema
    def _must_differ(self, data: dict[str, Any], **kwargs: Any) -> None:
        current = data["current_password"].encode("utf-8")
        if hmac.compare_digest(current, data["new_password"].encode("utf-8")):
            raise ValidationError(
                "The new password must differ from the current one.", "new_password"
            )


class ProfileOut(Schema):
    id = Id(required=True)
    username = fields.String(required=True)
    email = fields.String(required=True)
    created_at = Timestamp(required=True)


class TokenPairOut(Schema):
    access_token = fields.String(required=True)
    refresh_token = fields.String(required=True)
    token_type = fields.String(required=True, metadata={"enum": ["Bearer"]})
    expires_in = fields.Integer(required=True)


class JwkOut(Schema):
    kty = fields.String(required=True)
    kid = fields.String(required=True)
    alg = fields.String(required=True)
    use = fields.String(required=True)
    n = fields.String(required=True)
    e = fields.String(required=True)


class JwksOut(Schema):
    keys = fields.List(fields.Nested(JwkOut), required=True)
