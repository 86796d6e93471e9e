"""jwt (priority 1450), K:kong/plugins/jwt/{handler,jwt_parser}.lua (3.9.1).

Every failure is a 401 from ``kong.response.exit`` (no request_id in the body) with
``WWW-Authenticate: Bearer`` when no token was found and ``Bearer error="invalid_token"``
otherwise (3.8+). The checks run in Kong's order: collect tokens, decode, find the credential
by ``key_claim_name`` (payload first, then the JOSE header), compare ``alg``, verify the
signature, then ``claims_to_verify`` and ``maximum_expiration``. On success the consumer
headers are set upstream and client-sent copies are cleared.
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections import OrderedDict
from typing import Any

from aiohttp import web
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from svc_gateway.config import ConfigError, Credential
from svc_gateway.plugins import Context, GatewayPlugin, exit_response

# Algorithms Kong 3.7+ decodes; anything else is "invalid alg" (the credential decides the rest).
KNOWN_ALGORITHMS = frozenset(
    {
        "HS256",
        "HS384",
        "HS512",
        "RS256",
        "RS384",
        "RS512",
        "ES256",
        "ES384",
        "ES512",
        "PS256",
        "PS384",
        "PS512",
        "EdDSA",
    }
)
HASHES: dict[str, type[hashes.SHA256 | hashes.SHA384 | hashes.SHA512]] = {
    "RS256": hashes.SHA256,
    "RS384": hashes.SHA384,
    "RS512": hashes.SHA512,
}
VERIFIED_CACHE_SIZE = 10_000
BEARER = re.compile(r"\s*[Bb]earer\s+(.+)")
CONSUMER_HEADERS = (
    "X-Consumer-ID",
    "X-Consumer-Custom-ID",
    "X-Consumer-Username",
    "X-Credential-Identifier",
    "X-Anonymous-Consumer",
)


class JwtFailure(Exception):
    def __init__(self, body: dict[str, Any], *, token_found: bool = True) -> None:
        super().__init__(body)
        self.body = body
        self.token_found = token_found


BASE64URL = re.compile(r"[A-Za-z0-9_-]*")


def _b64url(segment: str) -> bytes | None:
    """jwt_parser.lua ``base64_decode``: pad to a multiple of 4, then nginx's
    ``ngx_decode_base64url``, which stops at the first ``=``, refuses any other character
    outside the alphabet and a length of 1 (mod 4), and ignores unused trailing bits."""
    data = segment.split("=", 1)[0]
    if not BASE64URL.fullmatch(data) or len(data) % 4 == 1:
        return None
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


def _json_segment(segment: str) -> dict[str, Any]:
    raw = _b64url(segment)
    if raw is None:
        raise JwtFailure({"message": "Bad token; invalid JSON"})
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise JwtFailure({"message": "Bad token; invalid JSON"}) from None
    if not isinstance(value, dict):
        raise JwtFailure({"message": "Bad token; invalid JSON"})
    return value


def _number(value: Any) -> float | None:
    """The value when it is a JSON number (Lua ``type(v) == "number"``), else None."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


class Jwt(GatewayPlugin):
    name = "jwt"
    priority = 1450

    def __init__(
        self, config: dict[str, Any], where: str, credentials: dict[str, Credential]
    ) -> None:
        super().__init__(config, where)
        self.credentials = credentials
        self.uri_params: list[str] = list(config["uri_param_names"] or [])
        self.cookies: list[str] = list(config["cookie_names"] or [])
        self.header_names: list[str] = list(config["header_names"] or [])
        self.key_claim: str = config["key_claim_name"]
        self.claims_to_verify: list[str] = list(config["claims_to_verify"] or [])
        if not set(self.claims_to_verify) <= {"exp", "nbf"}:
            raise ConfigError(f"jwt at {where}: claims_to_verify may hold only exp and nbf")
        self.maximum_expiration = int(config["maximum_expiration"])
        if self.maximum_expiration and "exp" not in self.claims_to_verify:
            raise ConfigError(f"jwt at {where}: maximum_expiration needs exp in claims_to_verify")
        if config["anonymous"]:
            raise ConfigError(f"jwt at {where}: anonymous is not supported by the local gateway")
        if config["secret_is_base64"]:
            raise ConfigError(f"jwt at {where}: secret_is_base64 (HS*) is not supported")
        self.run_on_preflight = bool(config["run_on_preflight"])
        # token -> (credential, claims) once its signature verified: every earlier step is a
        # pure function of the token and the config, so only the time-dependent claim checks
        # run again on a hit (an RS256 verification costs more than the rest of the proxy).
        self._verified: OrderedDict[str, tuple[Credential, dict[str, Any]]] = OrderedDict()
        self.realm: str | None = config["realm"]

    def _www_authenticate(self, token_found: bool) -> str:
        realm = f' realm="{self.realm}"' if self.realm else ""
        return f'Bearer{realm} error="invalid_token"' if token_found else f"Bearer{realm}"

    def _tokens(self, ctx: Context) -> list[str]:
        request = ctx.request
        found: list[str] = []
        for name in self.uri_params:
            found += [v for v in request.query.getall(name, []) if v]
        for name in self.cookies:
            value = request.cookies.get(name)
            if value:
                found.append(value)
        for name in self.header_names:
            value = ctx.request_headers.get(name)
            if value:
                match = BEARER.search(value)
                if match:
                    found.append(match.group(1))
        return list(dict.fromkeys(found))  # duplicates removed, first-seen order kept

    def _verify(self, token: str) -> Credential:
        hit = self._verified.get(token)
        if hit is not None:
            self._check_claims(hit[1])
            return hit[0]
        # jwt_parser.lua tokenize(token, ".", 3): the third part is the REST of the token,
        # further dots included (which the decoder then refuses, unless after a "=").
        segments = token.split(".", 2)
        if len(segments) < 3:
            raise JwtFailure({"message": "Bad token; invalid JSON"})
        header_64, claims_64, signature_64 = segments
        header = _json_segment(header_64)
        claims = _json_segment(claims_64)
        signature = _b64url(signature_64)
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in KNOWN_ALGORITHMS:
            raise JwtFailure({"message": "Bad token; invalid alg"})
        if signature is None:
            raise JwtFailure({"message": "Bad token; invalid signature"})
        key = claims.get(self.key_claim) or header.get(self.key_claim)
        if key is None or key is False:
            raise JwtFailure({"message": f"No mandatory '{self.key_claim}' in claims"})
        if key == "":
            raise JwtFailure({"message": f"Invalid '{self.key_claim}' in claims"})
        credential = self.credentials.get(key) if isinstance(key, str) else None
        if credential is None:
            raise JwtFailure({"message": f"No credentials found for given '{self.key_claim}'"})
        if alg != credential.algorithm:
            raise JwtFailure({"message": "Invalid algorithm"})
        try:
            credential.public_key.verify(
                signature,
                f"{header_64}.{claims_64}".encode(),
                padding.PKCS1v15(),
                HASHES[credential.algorithm](),
            )
        except InvalidSignature:
            raise JwtFailure({"message": "Invalid signature"}) from None
        self._verified[token] = (credential, claims)
        if len(self._verified) > VERIFIED_CACHE_SIZE:
            self._verified.popitem(last=False)
        self._check_claims(claims)
        return credential

    def _check_claims(self, claims: dict[str, Any]) -> None:
        now = time.time()
        errors: dict[str, str] = {}
        for name in self.claims_to_verify:
            value = _number(claims.get(name))
            if value is None:
                errors[name] = "must be a number"
            elif name == "exp" and value <= now:
                errors[name] = "token expired"
            elif name == "nbf" and value > now:
                errors[name] = "token not valid yet"
        if errors:
            raise JwtFailure(errors)
        if self.maximum_expiration > 0:
            exp = _number(claims.get("exp"))
            if exp is None or exp - now > self.maximum_expiration:
                raise JwtFailure({"exp": "exceeds maximum allowed expiration"})

    async def access(self, ctx: Context) -> web.StreamResponse | None:
        if not self.run_on_preflight and ctx.request.method == "OPTIONS":
            return None
        try:
            tokens = self._tokens(ctx)
            if not tokens:
                raise JwtFailure({"message": "Unauthorized"}, token_found=False)
            if len(tokens) > 1:
                raise JwtFailure({"message": "Multiple tokens provided"})
            credential = self._verify(tokens[0])
        except JwtFailure as failure:
            return exit_response(
                401,
                failure.body,
                {"WWW-Authenticate": self._www_authenticate(failure.token_found)},
            )
        consumer = credential.consumer
        ctx.consumer, ctx.credential = consumer, credential
        headers = ctx.upstream_headers
        for name in CONSUMER_HEADERS:
            headers.popall(name, None)
        headers["X-Consumer-ID"] = consumer.id
        if consumer.custom_id:
            headers["X-Consumer-Custom-ID"] = consumer.custom_id
        if consumer.username:
            headers["X-Consumer-Username"] = consumer.username
        headers["X-Credential-Identifier"] = credential.key
        return None
