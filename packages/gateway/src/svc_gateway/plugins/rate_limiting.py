"""rate-limiting (priority 910), K:kong/plugins/rate-limiting/{handler,policies/init}.lua (3.9.1).

Fixed windows per period (the period's calendar start in UTC). The counter key is Kong's:
``ratelimit:<route>:<service>:<identifier>:<period_start_ms>:<period>`` where route and service
are the *plugin's* scope (a global instance counts every route together). The request is
refused when the stored usage already reached the limit (so refusals are not counted); otherwise
the counter is incremented. Headers per configured period plus ``RateLimit-*`` for the most
restrictive one; over the limit ``kong.response.error(429, "API rate limit exceeded")`` with
``Retry-After``. ``policy: cluster`` is invalid in DB-less Kong and refused here too.
"""

from __future__ import annotations

import calendar
import logging
import math
import os
import re
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from aiohttp import web
from multidict import CIMultiDict
from redis.asyncio import Redis
from redis.exceptions import RedisError

from svc_gateway.config import ConfigError, Plugin
from svc_gateway.plugins import Context, GatewayPlugin, error_response, exit_response

log = logging.getLogger("svc_gateway.rate_limiting")

# Window length per period (Kong's EXPIRATION table).
PERIODS = {
    "second": 1,
    "minute": 60,
    "hour": 3600,
    "day": 86400,
    "month": 2592000,
    "year": 31536000,
}
EMPTY_UUID = "00000000-0000-0000-0000-000000000000"
LIMIT_BY = ("consumer", "credential", "ip", "header", "service")


def period_starts(now: float) -> dict[str, int]:
    """The start of each period's current window, in epoch milliseconds (UTC calendar)."""
    t = datetime.fromtimestamp(int(now), UTC)
    starts = {
        "second": t,
        "minute": t.replace(second=0),
        "hour": t.replace(minute=0, second=0),
        "day": t.replace(hour=0, minute=0, second=0),
        "month": t.replace(day=1, hour=0, minute=0, second=0),
        "year": t.replace(month=1, day=1, hour=0, minute=0, second=0),
    }
    return {name: calendar.timegm(dt.timetuple()) * 1000 for name, dt in starts.items()}


ENV_REFERENCE = re.compile(r"\{vault://env/([A-Za-z0-9_-]+)\}")


def resolve_reference(value: str, environ: Mapping[str, str] | None = None) -> str:
    """A Kong vault reference to the env vault, ``{vault://env/some-name}``, read as Kong reads
    it: the variable ``SOME_NAME`` (upper case, ``-`` → ``_``). Other values are kept; other
    vaults are refused (Kong-only)."""
    if not value.startswith("{vault://"):
        return value
    match = ENV_REFERENCE.fullmatch(value)
    if match is None:
        raise ConfigError(f"{value}: only {{vault://env/NAME}} references are supported locally")
    name = match.group(1).upper().replace("-", "_")
    resolved = (os.environ if environ is None else environ).get(name)
    if not resolved:
        raise ConfigError(f"{value}: the environment variable {name} is not set")
    return resolved


def redis_url(redis: dict[str, Any], environ: Mapping[str, str] | None = None) -> str:
    """Kong's AUTH rule: credentials only with a password (then with the username if set)."""
    auth = ""
    password = resolve_reference(str(redis.get("password") or ""), environ)
    if password:
        username = resolve_reference(str(redis.get("username") or ""), environ)
        auth = f"{quote(username, safe='')}:{quote(password, safe='')}@"
    return f"redis://{auth}{redis['host']}:{redis['port']}/{redis['database']}"


class RateLimiting(GatewayPlugin):
    name = "rate-limiting"
    priority = 910

    def __init__(
        self,
        plugin: Plugin,
        open_redis: Callable[[str], Redis],
        redis_override: str | None = None,
    ) -> None:
        config, where = plugin.config, plugin.where
        super().__init__(config, where)
        self.limits = {p: int(config[p]) for p in PERIODS if config[p] is not None}
        if not self.limits:
            raise ConfigError(f"rate-limiting at {where}: set at least one limit")
        self.limit_by = config["limit_by"]
        if self.limit_by not in LIMIT_BY:
            raise ConfigError(f"rate-limiting at {where}: limit_by {self.limit_by!r} unsupported")
        self.header_name = config["header_name"]
        if self.limit_by == "header" and not self.header_name:
            raise ConfigError(f"rate-limiting at {where}: limit_by header needs header_name")
        self.policy = config["policy"]
        if self.policy == "cluster":
            raise ConfigError(
                f"rate-limiting at {where}: policy cluster is invalid in DB-less Kong"
            )
        if self.policy not in ("local", "redis"):
            raise ConfigError(f"rate-limiting at {where}: policy {self.policy!r} unknown")
        if config["sync_rate"] not in (-1, None):
            raise ConfigError(f"rate-limiting at {where}: sync_rate is not supported locally")
        self.fault_tolerant = bool(config["fault_tolerant"])
        self.hide_headers = bool(config["hide_client_headers"])
        self.error_code = int(config["error_code"])
        self.error_message = str(config["error_message"])
        self.scope = (plugin.route or EMPTY_UUID, plugin.service or EMPTY_UUID)
        self._open_redis = open_redis
        self.redis_url: str | None = None
        if self.policy == "redis":
            redis = config["redis"] or {}
            if not redis.get("host"):
                raise ConfigError(f"rate-limiting at {where}: policy redis needs redis.host")
            if redis.get("ssl"):
                raise ConfigError(f"rate-limiting at {where}: redis.ssl is not supported locally")
            self.redis_url = redis_override or redis_url(redis)
        self.redis: Redis | None = None
        self.clock: Callable[[], float] = time.time  # tests pin the window with a fixed clock
        self._local: dict[str, tuple[int, float]] = {}

    async def start(self) -> None:
        if self.redis_url is not None:
            self.redis = self._open_redis(self.redis_url)

    async def stop(self) -> None:
        if self.redis is not None:
            await self.redis.aclose()

    def identifier(self, ctx: Context) -> str:
        value: str | None = None
        if self.limit_by == "consumer":
            value = ctx.consumer.id if ctx.consumer else None
            value = value or (ctx.credential.key if ctx.credential else None)
        elif self.limit_by == "credential":
            value = ctx.credential.key if ctx.credential else None
        elif self.limit_by == "header":
            value = ctx.request_headers.get(self.header_name)
        elif self.limit_by == "service":
            value = ctx.service.name
        return value or ctx.client_ip

    def keys(self, identifier: str, starts: dict[str, int]) -> dict[str, str]:
        route, service = self.scope
        return {p: f"ratelimit:{route}:{service}:{identifier}:{starts[p]}:{p}" for p in self.limits}

    async def _usage(self, keys: dict[str, str]) -> dict[str, int]:
        if self.redis is None:
            now = time.monotonic()
            usage = {}
            for period, key in keys.items():
                count, expires = self._local.get(key, (0, 0.0))
                usage[period] = count if expires > now else 0
            return usage
        values = await self.redis.mget(list(keys.values()))
        return {p: int(v or 0) for p, v in zip(keys, values, strict=True)}

    async def _increment(self, keys: dict[str, str]) -> None:
        if self.redis is None:
            now = time.monotonic()
            for p, k in keys.items():
                count, expires = self._local.get(k, (0, 0.0))
                if expires <= now:
                    count, expires = 0, now + PERIODS[p]
                self._local[k] = (count + 1, expires)
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for p, k in keys.items():
                pipe.incrby(k, 1)
                pipe.expire(k, PERIODS[p])
            await pipe.execute()

    async def access(self, ctx: Context) -> web.StreamResponse | None:
        now = int(self.clock())
        now_ms = now * 1000
        starts = period_starts(now)
        keys = self.keys(self.identifier(ctx), starts)
        try:
            usage = await self._usage(keys)
        except (RedisError, OSError) as exc:
            log.error("failed to get usage: %s", type(exc).__name__)
            if self.fault_tolerant:
                return None
            return exit_response(500, {"message": "An unexpected error occurred"})
        stop = None
        for period, limit in self.limits.items():
            if limit - usage[period] <= 0:
                stop = period
        headers: dict[str, str] = {}
        reset = 0
        if not self.hide_headers:
            best: tuple[int, int] | None = None  # (remaining, -window) of the most restrictive
            limit_shown = 0
            for period, limit in self.limits.items():
                remaining = limit - usage[period]
                if stop is None or stop == period:
                    remaining -= 1
                remaining = max(0, remaining)
                window = PERIODS[period]
                if best is None or (remaining, -window) < best:
                    best = (remaining, -window)
                    limit_shown = limit
                    reset = max(1, window - math.floor((now_ms - starts[period]) / 1000))
                title = period.capitalize()
                headers[f"X-RateLimit-Limit-{title}"] = str(limit)
                headers[f"X-RateLimit-Remaining-{title}"] = str(remaining)
            assert best is not None
            headers["RateLimit-Limit"] = str(limit_shown)
            headers["RateLimit-Remaining"] = str(best[0])
            headers["RateLimit-Reset"] = str(reset)
        if stop is not None:
            if reset:
                headers["Retry-After"] = str(reset)
            return error_response(ctx.kong_request_id, self.error_code, self.error_message, headers)
        ctx.state[self.name] = headers
        try:
            await self._increment(keys)
        except (RedisError, OSError) as exc:
            log.error("failed to increment usage: %s", type(exc).__name__)
        return None

    def header_filter(self, ctx: Context, headers: CIMultiDict[str]) -> None:
        for name, value in ctx.state.get(self.name, {}).items():
            headers[name] = value
