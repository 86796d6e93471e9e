"""Redis least privilege: the ONE table of what each service may do in Redis.

Every Redis user of the platform is a row here: the key patterns it owns, the pub/sub channels
it uses, and the commands it sends (its own, plus those of the chassis features it uses). From
this table come

- the ACL file compose and Kubernetes load with ``redis-server --aclfile``
  (``deploy/make_secrets.py`` writes it with each user's password hash),
- the ACL users the test plugin creates when ``SVC_TEST_REDIS_USER`` names a service, so a
  service's whole test suite runs as that service's user (``nox -s redis-acl``).

No row has ``@admin``/``@dangerous`` commands, ``KEYS``, ``FLUSHDB`` or ``CONFIG``: nothing the
services run is an administrator. A key, channel or command outside a row fails with NOPERM.
"""

from __future__ import annotations

import dataclasses
import hashlib


@dataclasses.dataclass(frozen=True)
class Access:
    keys: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()
    commands: tuple[str, ...] = ()

    def __add__(self, other: Access) -> Access:
        def merged(a: tuple[str, ...], b: tuple[str, ...]) -> tuple[str, ...]:
            return tuple(dict.fromkeys((*a, *b)))

        return Access(
            merged(self.keys, other.keys),
            merged(self.channels, other.channels),
            merged(self.commands, other.commands),
        )


# What every client sends: the health check, SELECT for a database in the URL, MULTI/EXEC of a
# transactional pipeline, the Lua scripts' loading (register_script: EVALSHA, then SCRIPT LOAD
# or EVAL when the script cache is empty). CLIENT SETINFO (redis-py's library name) is refused
# and redis-py ignores that.
CONNECTION = Access(
    commands=(
        "ping",
        "select",
        "echo",
        "multi",
        "exec",
        "discard",
        "evalsha",
        "eval",
        "script|load",
        "script|exists",
    ),
)
# svc_core.auth.revocations: the revocation list, its epoch and cut-off, and their channel.
AUTH = Access(
    keys=("auth:revoked", "auth:epoch", "auth:not-before"),
    channels=("auth:revocations",),
    commands=(
        *("get", "set", "time", "zscore", "zadd", "zrangebyscore", "zremrangebyscore"),
        *("publish", "subscribe", "unsubscribe"),
    ),
)
# svc_core.events: publish to a stream, read it through a consumer group, park dead letters.
EVENTS_COMMANDS = (
    "xadd", "xgroup|create", "xreadgroup", "xautoclaim", "xpending", "xack",
    # read-only views of its own streams (operators, the tests)
    "xlen", "xrange", "xinfo|groups", "xinfo|stream",
)  # fmt: skip


def streams(*names: str) -> Access:
    """Access to these event streams and their dead-letter streams (``<stream>:dead``)."""
    return Access(keys=(*names, *(f"{n}:dead" for n in names)), commands=EVENTS_COMMANDS)


USERS: dict[str, Access] = {
    "customer": CONNECTION
    + AUTH
    + Access(
        keys=("customer:*",),
        commands=(
            "get",
            "set",
            "del",
            "exists",
            "hset",
            "hmget",
            "hgetall",
            "pexpire",
            "pttl",
            "zadd",
            "zrem",
            "zcard",
            "zrangebyscore",
            "zremrangebyscore",
        ),
    ),
    "cache": CONNECTION
    + AUTH
    + Access(
        keys=("cache:*",),
        commands=("get", "set", "del", "exists", "pttl", "incrby"),
    ),
    "chat": CONNECTION
    + AUTH
    + Access(
        keys=("chat:*",),
        channels=("chat:*",),
        commands=(
            *("zadd", "zrem", "zrangebyscore", "zremrangebyscore", "expire"),
            *("publish", "subscribe", "unsubscribe"),
        ),
    ),
    "order": CONNECTION + AUTH + streams("events:orders", "events:payments"),
    "payment": CONNECTION + AUTH + streams("events:payments", "events:orders"),
    "files": CONNECTION + AUTH,
    # Kong's rate-limiting plugin (policy redis) and svc-gateway's stand-in for it: counters
    # ratelimit:<route>:<service>:<identifier>:<period start>:<period>. Kong 3.9.1
    # (kong/plugins/rate-limiting/policies/init.lua) sends AUTH, SELECT and EVAL: its usage
    # script runs INCR + EXPIRE, its sync_rate script EXISTS + INCRBY + EXPIREAT (Lua's
    # redis.call is held to the same rights); svc-gateway runs MGET, INCRBY, EXPIRE.
    # tests/deploy/test_kong_redis.py runs Kong's own scripts as this user.
    "gateway": CONNECTION
    + Access(
        keys=("ratelimit:*",),
        commands=("mget", "exists", "incr", "incrby", "expire", "expireat"),
    ),
}


def rules(service: str) -> str:
    """The ``ACL SETUSER`` rules of ``service`` (without its name, ``on`` and password)."""
    access = USERS[service]
    parts = ["resetkeys", "resetchannels", "-@all"]
    parts += [f"~{k}" for k in access.keys]
    parts += [f"&{c}" for c in access.channels]
    parts += [f"+{c}" for c in access.commands]
    return " ".join(parts)


def acl_line(user: str, service: str, password: str) -> str:
    """One line of an ACL file: ``user NAME on #<sha256 of password> <rules>``."""
    digest = hashlib.sha256(password.encode()).hexdigest()
    return f"user {user} on #{digest} {rules(service)}"


# The ACL file's fixed lines: a health-check user that can only PING, an operator account
# (backups: BGSAVE, BGREWRITEAOF, redis-cli --rdb) with its own password, and the default
# (anonymous) user: off (compose: Kong logs in as ``gateway``), or, with ``anonymous``, held to
# that row's rights (for a client that cannot send credentials).
def fixed_lines(admin_password: str, anonymous: str | None = None) -> list[str]:
    digest = hashlib.sha256(admin_password.encode()).hexdigest()
    default = "user default off resetkeys resetchannels -@all"
    if anonymous is not None:
        default = f"user default on nopass {rules(anonymous)}"
    return [
        default,
        "user healthcheck on nopass resetkeys resetchannels -@all +ping",
        f"user admin on #{digest} ~* &* +@all",
    ]


def acl_file(passwords: dict[str, str], admin_password: str, anonymous: str | None = None) -> str:
    """The whole ACL file, one user per service named after it (``passwords[service]``)."""
    lines = fixed_lines(admin_password, anonymous)
    lines += [acl_line(name, name, passwords[name]) for name in USERS]
    return "\n".join(lines) + "\n"
