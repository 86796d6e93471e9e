"""Kong's rate limiter logs in to Redis as its own ACL user, ``gateway``, and that user may run
exactly what Kong's rate-limiting plugin (policy redis) sends, shown with Kong's own scripts
against a real redis-server loading the ACL file make_secrets.py writes (as compose's Redis
does). The password never lands in kong.yml: the template carries a Kong env-vault reference.

Kong's scripts are quoted from Kong 3.9.1, kong/plugins/rate-limiting/policies/init.lua
(https://github.com/Kong/kong/blob/3.9.1/kong/plugins/rate-limiting/policies/init.lua): the
usage script (sync_rate -1, this project's setting) and the sync_rate > 0 increment script.
Around them Kong sends AUTH <username> <password> and SELECT <database> once per connection.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml
from redis.exceptions import NoPermissionError, ResponseError

from svc_core import redis_acl
from svc_gateway.config import ConfigError
from svc_gateway.plugins.rate_limiting import redis_url
from tests.deploy.conftest import OVERLAYS, by_kind
from tests.deploy.test_consistency import render_for

KONG_USAGE = """
        local cache_key, expiration = KEYS[1], ARGV[1]
        local result_incr = redis.call("incr", cache_key)
        if result_incr == 1 then
          redis.call("expire", cache_key, expiration)
        end

        return result_incr - 1
"""
KONG_SYNC = """
      local key, value, expiration = KEYS[1], tonumber(ARGV[1]), ARGV[2]
      local exists = redis.call("exists", key)
      redis.call("incrby", key, value)
      if not exists or exists == 0 then
        redis.call("expireat", key, expiration)
      end
"""
KONG_CONNECTION = {"select", "eval"}  # AUTH needs no right
SVC_GATEWAY = {"mget", "incrby", "expire"}  # svc_gateway.plugins.rate_limiting
REFERENCE = "{vault://env/svc-rate-limit-redis-password}"
KONG_ENV = "SVC_RATE_LIMIT_REDIS_PASSWORD"  # Kong's env vault: upper case, - -> _


def script_commands(*scripts: str) -> set[str]:
    return {m.group(1) for s in scripts for m in re.finditer(r'redis\.call\("(\w+)"', s)}


def test_the_gateway_row_is_exactly_what_kong_and_svc_gateway_send() -> None:
    row = redis_acl.USERS["gateway"]
    own = set(row.commands) - set(redis_acl.CONNECTION.commands)
    kong = KONG_CONNECTION | script_commands(KONG_USAGE, KONG_SYNC)
    assert script_commands(KONG_USAGE, KONG_SYNC) == {
        "incr",
        "expire",
        "exists",
        "incrby",
        "expireat",
    }
    assert own == (kong | SVC_GATEWAY) - set(redis_acl.CONNECTION.commands)
    assert row.keys == ("ratelimit:*",)
    assert row.channels == ()


def test_kongs_own_scripts_run_as_the_gateway_user_and_nothing_else_does(
    acl_redis: tuple[int, Path],
) -> None:
    port, secrets = acl_redis
    password = (secrets / "redis-password-gateway").read_text().strip()
    # compose's RATE_LIMIT_REDIS_DATABASE: 1 (Kong sends SELECT 1)
    kong = redis.Redis(port=port, username="gateway", password=password, db=1)
    try:
        key = "ratelimit:route-id:service-id:203.0.113.9:1767225600000:minute"
        assert kong.eval(KONG_USAGE, 1, key, 60) == 0
        assert kong.eval(KONG_USAGE, 1, key, 60) == 1
        pipe = kong.pipeline(transaction=False)  # Kong's init_pipeline/commit_pipeline
        other = "ratelimit:route-id:service-id:203.0.113.9:1767225600000:hour"
        pipe.eval(KONG_SYNC, 1, other, 5, int(time.time()) + 3600)
        pipe.eval(KONG_SYNC, 1, key, 3, int(time.time()) + 60)
        pipe.execute()
        assert kong.mget([key, other]) == [b"5", b"5"]  # svc-gateway's read
        pipe = kong.pipeline(transaction=False)  # svc-gateway's increment
        pipe.incrby(key, 1)
        pipe.expire(key, 60)
        pipe.execute()
        assert kong.mget([key]) == [b"6"]
        # Outside the row: another key (also inside Lua), a read of the server, a flush.
        with pytest.raises(ResponseError):
            kong.eval(KONG_USAGE, 1, "customer:session:s1", 60)
        with pytest.raises(NoPermissionError):
            kong.get("auth:epoch")
        with pytest.raises(NoPermissionError):
            kong.info("server")  # Kong's anonymous report: KONG_ANONYMOUS_REPORTS=off
        with pytest.raises(NoPermissionError):
            kong.flushdb()
    finally:
        kong.close()
    admin = redis.Redis(
        port=port, username="admin", password=(secrets / "redis-password-admin").read_text().strip()
    )
    try:
        admin.select(1)
        assert 0 < admin.ttl(key) <= 60  # Kong's EXPIRE ran, as the gateway user
        assert 3000 < admin.ttl(other) <= 3600  # and EXPIREAT
    finally:
        admin.close()


def test_svc_gateway_resolves_the_env_vault_reference_as_kong_does(
    acl_redis: tuple[int, Path],
) -> None:
    port, secrets = acl_redis
    password = (secrets / "redis-password-gateway").read_text().strip()
    block = {
        "host": "127.0.0.1",
        "port": port,
        "database": 1,
        "username": "gateway",
        "password": REFERENCE,
    }
    url = redis_url(block, {KONG_ENV: password})
    client = redis.Redis.from_url(url)
    try:
        assert client.ping()
        with pytest.raises(NoPermissionError):
            client.get("cache:x")
    finally:
        client.close()
    with pytest.raises(ConfigError, match=KONG_ENV):
        redis_url(block, {})
    with pytest.raises(ConfigError, match="only"):
        redis_url({**block, "password": "{vault://aws/redis}"}, {})
    # no password: no AUTH at all (Kong's rule), whatever the username
    assert redis_url({**block, "username": "default", "password": ""}, {}) == (
        f"redis://127.0.0.1:{port}/1"
    )


def rate_limit_redis_blocks(rendered: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("name") == "rate-limiting":
                found.append(node["config"]["redis"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(rendered)
    assert found
    return found


def test_compose_gives_kong_its_user_without_baking_the_password(
    compose: dict[str, Any], tmp_path: Path
) -> None:
    env = dict(compose["services"]["kong-config"]["environment"])
    assert env["RATE_LIMIT_REDIS_USERNAME"] == "gateway"
    assert env["RATE_LIMIT_REDIS_PASSWORD"] == REFERENCE
    for block in rate_limit_redis_blocks(render_for(env, tmp_path)):
        assert (block["username"], block["password"]) == ("gateway", REFERENCE)
    kong = compose["services"]["kong"]
    mounted = {s["target"]: s["source"] for s in kong["secrets"]}
    assert mounted["/run/secrets/redis-password"] == "redis-password-gateway"
    # `config --format json` keeps compose's escape: `$$` is the `$` the shell gets
    command = " ".join(kong["command"]).replace("$$", "$")
    assert f'{KONG_ENV}="$(cat /run/secrets/redis-password)"' in command
    assert f"export {KONG_ENV}" in command
    assert command.endswith("exec /docker-entrypoint.sh kong docker-start")
    assert kong["environment"]["KONG_ANONYMOUS_REPORTS"] == "off"
    assert KONG_ENV not in kong["environment"]  # from the secret, never a literal


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_k8s_gives_kong_its_user_from_a_secret(
    overlay: str, overlays: dict[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    docs = overlays[overlay]
    render_env = dict(by_kind(docs, "ConfigMap")["kong-render-env"]["data"])
    assert render_env["RATE_LIMIT_REDIS_USERNAME"] == "gateway"
    assert render_env["RATE_LIMIT_REDIS_PASSWORD"] == REFERENCE
    for block in rate_limit_redis_blocks(render_for(render_env, tmp_path)):
        assert (block["username"], block["password"]) == ("gateway", REFERENCE)
    (container,) = by_kind(docs, "Deployment")["kong"]["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert env[KONG_ENV]["valueFrom"]["secretKeyRef"] == {
        "name": "svc-gateway-redis",
        "key": "redis-password",
    }
    assert env["KONG_ANONYMOUS_REPORTS"]["value"] == "off"


def test_the_template_defaults_send_no_credentials() -> None:
    """Rendered with no RATE_LIMIT_REDIS_* credentials (the dev stack, the tests), Kong sends no
    AUTH: an empty password, and Kong's documented name for the anonymous user."""
    template = (Path(__file__).parents[2] / "deploy" / "kong" / "kong.yml").read_text()
    block = yaml.safe_load(template.split("redis: &redis", 1)[1].split("timeout:", 1)[0])
    assert block["username"] == "${RATE_LIMIT_REDIS_USERNAME:-default}"
    assert block["password"] == "${RATE_LIMIT_REDIS_PASSWORD:-}"


def test_an_explicit_empty_default_is_the_only_way_to_render_an_empty_value() -> None:
    from svc_gateway.render import RenderError, render_text

    assert yaml.safe_load(render_text("password: ${P:-}\n", {})) == {"password": ""}
    assert yaml.safe_load(render_text("password: ${P:-}\n", {"P": REFERENCE})) == {
        "password": REFERENCE
    }
    with pytest.raises(RenderError, match="P: required"):
        render_text("password: ${P}\n", {})
    with pytest.raises(RenderError, match="P: required"):
        render_text("password: ${P}\n", {"P": ""})
