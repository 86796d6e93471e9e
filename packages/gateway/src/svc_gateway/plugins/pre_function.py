"""pre-function (serverless-functions, priority 1000000), K:kong/plugins/pre-function/handler.lua.

Kong runs arbitrary Lua here. The local gateway runs NO Lua: it accepts exactly the snippet that
deploy/kong/kong.yml ships (:data:`SNIPPET`) and reproduces it natively. Any other Lua, in any
phase, is a startup error: neither executed nor ignored.

The snippet runs before every other plugin (1000000 > correlation-id 100001 > jwt 1450 >
rate-limiting 910) and applies two rules of api.md's Conventions:

1. "request id": an ``X-Request-ID`` that is not 1-200 visible ASCII characters (``!`` to
   ``~``) is dropped, so correlation-id generates one, forwards it and echoes it
   (K:kong/plugins/correlation-id/handler.lua keeps and echoes ANY client value, and treats an
   absent or empty one as missing). The value is read as ``ngx.var.http_x_request_id``, which
   joins repeated headers with ", " (the reason K:kong/tools/http.lua ``get_header`` looks for
   ", "), so a repeated header is never valid and every copy goes.
2. "auth": one spelling per token. Protected routes rate-limit with ``limit_by: header``,
   ``header_name: Authorization``, keyed on the raw header text
   (K:kong/plugins/rate-limiting/handler.lua), while jwt accepts ``\\s*[Bb]earer\\s+(.+)``
   anywhere in the value (K:kong/plugins/jwt/handler.lua, unanchored), and its parser
   (K:kong/plugins/jwt/jwt_parser.lua) takes everything after the second dot as the signature
   and decodes it with nginx's base64url decoder, which ignores unused trailing bits and stops
   at the first ``=``. So ``Bearer T==``, ``Bearer T=.anything``, ``Bearer\\tT`` or a last
   signature character with other unused bits would each be the same verified token with a
   fresh budget. The snippet keeps exactly ``Bearer <token>`` (the scheme in any case, written
   ``Bearer``; one space; the token three canonical unpadded base64url segments, see
   :func:`canonical_token`) and drops any other Authorization value, so jwt answers 401
   ``Unauthorized`` on a protected route and a public route sees no credential.

Why a rewrite is seen by the later plugins: ``kong.service.request.set_header`` /
``clear_header`` call ``ngx.req.set_header`` / ``ngx.req.clear_header``
(K:kong/pdk/service/request.lua), which edit the request's ``headers_in``;
``kong.request.get_header(name)`` reads ``ngx.var["http_" .. name]`` (K:kong/tools/http.lua;
later master adds a per-request header cache, kong/header_cache_utils.lua, with a write path
for changes), and nginx's ``$http_*`` variables read ``headers_in`` at call time
(openresty/lua-nginx-module t/028-req-header.t, "set input header"). Kong was not run here, so
the snippet also checks this itself: it reads each header back after changing it and answers
(401 for Authorization, 400 for X-Request-ID) when the change is not visible, so a Kong where it
were not would refuse rather than count a spelling separately or echo a bad id (fail closed).
Locally the rewrite is always visible, so those guards never fire.
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from svc_gateway.config import ConfigError
from svc_gateway.plugins import Context, GatewayPlugin

# The exact Lua of deploy/kong/kong.yml's global pre-function (config.access[0]). Change both
# together: tests/gateway/test_pre_function.py starts the gateway from the real template.
SNIPPET = """\
-- svc: api.md "request id" and "auth" rules (deploy/kong/README.md, "The pre-function")
-- 1. X-Request-ID: 1-200 visible ASCII characters, else dropped (correlation-id makes one)
local id = ngx.var.http_x_request_id
if id and (#id > 200 or not id:find("^[!-~]+$")) then
  kong.service.request.clear_header("x-request-id")
  if kong.request.get_header("x-request-id") then
    return kong.response.exit(400, { message = "Bad request" })
  end
end
-- 2. Authorization: exactly "Bearer <token>" (one space), the token three canonical
-- base64url segments (no padding, no stray trailing bits), else dropped
local h = kong.request.get_header("authorization")
if h then
  local seg = "[A-Za-z0-9_%-]+"
  local t = h:match("^[Bb][Ee][Aa][Rr][Ee][Rr] (" .. seg .. "%." .. seg .. "%." .. seg .. ")$")
  if t then
    for s in t:gmatch("[^.]+") do
      local r = #s % 4
      if r == 1 or (r == 2 and not s:find("[AQgw]$"))
          or (r == 3 and not s:find("[AEIMQUYcgkosw048]$")) then
        t = nil
        break
      end
    end
  end
  local want = t and ("Bearer " .. t)
  if h ~= want then
    if want then
      kong.service.request.set_header("authorization", want)
    else
      kong.service.request.clear_header("authorization")
    end
    if kong.request.get_header("authorization") ~= want then
      return kong.response.exit(401, { message = "Unauthorized" })
    end
  end
end"""

PHASES = ("certificate", "rewrite", "access", "header_filter", "body_filter", "log")

_BEARER = re.compile(r"[Bb][Ee][Aa][Rr][Ee][Rr] ([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)")
# The last character of an unpadded segment whose length is 2 or 3 (mod 4) carries 4 or 2
# unused bits; canonical (RFC 4648 section 3.5) means they are zero.
_LAST_OF = {2: frozenset("AQgw"), 3: frozenset("AEIMQUYcgkosw048")}
MAX_REQUEST_ID = 200


def canonical_segment(segment: str) -> bool:
    """A base64url segment without padding that decodes and re-encodes to itself."""
    rest = len(segment) % 4
    if rest == 0:
        return True
    return rest in _LAST_OF and segment[-1] in _LAST_OF[rest]


def canonical_token(token: str) -> bool:
    """Three non-empty canonical base64url segments (the token part of the snippet)."""
    segments = token.split(".")
    return (
        len(segments) == 3
        and all(re.fullmatch(r"[A-Za-z0-9_-]+", s) for s in segments)
        and all(map(canonical_segment, segments))
    )


def canonical_authorization(value: str) -> str | None:
    """The snippet's ``want``: ``Bearer <token>`` when ``value`` is the scheme (any case), one
    space and a canonical token; None when the header must go."""
    match = _BEARER.fullmatch(value)
    if match is None or not canonical_token(match.group(1)):
        return None
    return f"Bearer {match.group(1)}"


def valid_request_id(value: str) -> bool:
    """1-200 visible ASCII characters (``!`` to ``~``), as api.md's "request id" row says."""
    return 0 < len(value) <= MAX_REQUEST_ID and all("!" <= c <= "~" for c in value)


def _same_lua(configured: Any, known: str) -> bool:
    return isinstance(configured, str) and configured.strip() == known.strip()


class PreFunction(GatewayPlugin):
    name = "pre-function"
    priority = 1000000

    def __init__(self, config: dict[str, Any], where: str) -> None:
        super().__init__(config, where)
        for phase in PHASES:
            chunks = config[phase] or []
            if phase == "access" and len(chunks) == 1 and _same_lua(chunks[0], SNIPPET):
                continue
            if chunks:
                raise ConfigError(
                    f"pre-function at {where}: {phase} Lua is not the snippet "
                    "shipped in deploy/kong/kong.yml; the local gateway runs no other Lua"
                )
        if not config["access"]:
            raise ConfigError(f"pre-function at {where}: access must hold the shipped snippet")

    async def access(self, ctx: Context) -> web.StreamResponse | None:
        # ngx.req.set_header / clear_header: one request header list, which both the later
        # plugins and the upstream request see.
        ids = ctx.request_headers.getall("X-Request-ID", [])
        if ids and not valid_request_id(", ".join(ids)):  # $http_* joins repeats with ", "
            for headers in (ctx.request_headers, ctx.upstream_headers):
                headers.popall("X-Request-ID", None)
        value = ctx.request_headers.get("Authorization")
        if value is None:
            return None
        want = canonical_authorization(value)
        if value == want and len(ctx.request_headers.getall("Authorization")) == 1:
            return None
        for headers in (ctx.request_headers, ctx.upstream_headers):
            headers.popall("Authorization", None)
            if want is not None:
                headers["Authorization"] = want
        return None
