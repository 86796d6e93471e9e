"""compose's Redis least privilege, for real: the ACL file make_secrets.py writes is loaded by a
redis-server of this test's own (``--aclfile``, as compose's redis does) and every service logs
in with exactly the URL and password file compose gives it."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis
from redis.exceptions import AuthenticationError, NoPermissionError

from svc_core import redis_acl
from tests.deploy.test_policies import ours


def test_every_service_logs_in_to_redis_as_its_own_user(compose: dict[str, Any]) -> None:
    redis_block = compose["services"]["redis"]
    command = redis_block["command"]
    acl_target = command[command.index("--aclfile") + 1]
    assert acl_target in {s["target"] for s in redis_block["secrets"]}
    from svc_core import Redis, discover

    manifests = discover()
    for name, block in ours(compose).items():
        if not manifests[name].uses_resource(Redis):
            assert "REDIS_URL" not in block["environment"], f"{name} uses no Redis"
            continue
        env = block["environment"]
        url = urlsplit(env["REDIS_URL"])
        assert url.username == name, f"{name}: REDIS_URL logs in as {url.username}"
        assert url.password is None, f"{name}: a password in REDIS_URL (use the file)"
        assert name in redis_acl.USERS, name
        mounted = {s["target"]: s["source"] for s in block["secrets"]}
        assert env["REDIS_PASSWORD_FILE"] == "/run/secrets/redis-password"
        assert mounted["/run/secrets/redis-password"] == f"redis-password-{name}", name


def test_the_generated_acl_file_admits_each_service_with_its_secret(
    acl_redis: tuple[int, Path],
) -> None:
    port, secrets = acl_redis
    for user in redis_acl.USERS:
        password = (secrets / f"redis-password-{user}").read_text().strip()
        client = redis.Redis(port=port, username=user, password=password)
        assert client.ping()
        with pytest.raises(NoPermissionError):
            client.keys("*")
        client.close()
        with pytest.raises(AuthenticationError):
            redis.Redis(port=port, username=user, password="not-it").ping()
    anonymous = redis.Redis(port=port)
    with pytest.raises(AuthenticationError):  # the default user is off: Kong logs in too
        anonymous.get("ratelimit:r:s:id:0:minute")
    anonymous.close()
