"""pre-function (serverless-functions, priority 1000000), K:kong/plugins/pre-function/handler.lua.

Kong runs arbitrary Lua here. The local gateway runs NO Lua: it accepts exactly the snippet that
deploy/kong/kong.yml ships (:data:`CANONICAL_AUTHORIZATION`) and reproduces it natively. Any
other Lua, in any phase, is a startup error: neither executed nor ignored.

Why the snippet exists: the protected routes rate-limit with ``limit_by: header``,
``header_name: Authorization``, and the rate-limiting handler keys the counter on the raw header
text (``kong.request.get_header(conf.header_name)``, K:kong/plugins/rate-limiting/handler.lua).
The jwt plugin takes the token from any header matching ``\\s*[Bb]earer\\s+(.+)`` anywhere in the
value (``ngx.re.gmatch``, unanchored, K:kong/plugins/jwt/handler.lua), so ``Bearer T``,
``bearer T``, ``Bearer  T`` or ``x Bearer T`` would each buy a fresh budget for the same token.
The snippet runs first (1000000 > jwt 1450 > rate-limiting 910) and leaves exactly one spelling:
``Bearer <token>``, or no Authorization header at all when the value is not a bearer credential.

Why a rewrite is seen by the later plugins: ``kong.service.request.set_header`` /
``clear_header`` call ``ngx.req.set_header`` / ``ngx.req.clear_header``
(K:kong/pdk/service/request.lua), which edit the request's ``headers_in``;
``kong.request.get_header(name)`` reads ``ngx.var["http_" .. name]`` (K:kong/pdk/request.lua
in the snapshot read, not matched to the 3.9.1 tag; later master adds a per-request header
cache, kong/header_cache_utils.lua, with a write path for changes),
and nginx's ``$http_*`` variables read ``headers_in`` at call time
(openresty/lua-nginx-module t/028-req-header.t, "set input header": a header set by
``ngx.req.set_header`` is what ``$http_foo`` returns afterwards). Kong was not run here, so the
snippet also checks this itself: it reads the header back and answers 401 when the rewrite is
not visible, so that a Kong where it were not would refuse every non-canonical spelling
(fail closed) instead of counting it separately. Locally the rewrite is always visible, so that
guard never fires.
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from svc_gateway.config import ConfigError
from svc_gateway.plugins import Context, GatewayPlugin

# The exact Lua of deploy/kong/kong.yml's global pre-function (config.access[0]). Change both
# together: tests/gateway/test_pre_function.py starts the gateway from the real template.
CANONICAL_AUTHORIZATION = """\
-- svc: one spelling of Authorization per token (rate-limiting keys on the raw header)
local h = kong.request.get_header("authorization")
if h then
  local t = h:match("^%s*[Bb][Ee][Aa][Rr][Ee][Rr]%s+(%S+)%s*$")
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

# Lua's %s is C isspace() in the C locale; %S is its complement. Python's \s is wider
# (Unicode spaces), so the class is spelled out.
_LUA_SPACE = " \t\n\v\f\r"
_BEARER = re.compile(
    rf"[{_LUA_SPACE}]*[Bb][Ee][Aa][Rr][Ee][Rr][{_LUA_SPACE}]+([^{_LUA_SPACE}]+)[{_LUA_SPACE}]*"
)


def canonical_authorization(value: str) -> str | None:
    """The snippet's ``want``: ``Bearer <token>``, or None when ``value`` is not a bearer
    credential of one whitespace-free token."""
    match = _BEARER.fullmatch(value)
    return f"Bearer {match.group(1)}" if match else None


def _same_lua(configured: Any, known: str) -> bool:
    return isinstance(configured, str) and configured.strip() == known.strip()


class PreFunction(GatewayPlugin):
    name = "pre-function"
    priority = 1000000

    def __init__(self, config: dict[str, Any], where: str) -> None:
        super().__init__(config, where)
        for phase in PHASES:
            chunks = config[phase] or []
            if (
                phase == "access"
                and len(chunks) == 1
                and _same_lua(chunks[0], CANONICAL_AUTHORIZATION)
            ):
                continue
            if chunks:
                raise ConfigError(
                    f"pre-function at {where}: {phase} Lua is not the Authorization snippet "
                    "shipped in deploy/kong/kong.yml; the local gateway runs no other Lua"
                )
        if not config["access"]:
            raise ConfigError(f"pre-function at {where}: access must hold the shipped snippet")

    async def access(self, ctx: Context) -> web.StreamResponse | None:
        value = ctx.request_headers.get("Authorization")
        if value is None:
            return None
        want = canonical_authorization(value)
        if value == want and len(ctx.request_headers.getall("Authorization")) == 1:
            return None
        # ngx.req.set_header / clear_header: one request header list, which both the later
        # plugins and the upstream request see.
        for headers in (ctx.request_headers, ctx.upstream_headers):
            headers.popall("Authorization", None)
            if want is not None:
                headers["Authorization"] = want
        return None
