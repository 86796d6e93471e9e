"""Least privilege in Redis (svc_core.redis_acl) and TLS to Redis (RedisSettings), for real:
ACL users on the shared Redis (unique ``svctest-`` names, deleted afterwards), and redis-servers
of the tests' own started with ``--aclfile`` (as compose does) or ``--tls-port``."""

from __future__ import annotations

import datetime
import ipaddress
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from redis.exceptions import AuthenticationError, NoPermissionError

from svc_core import redis_acl
from svc_core.embedded import free_port, reachable
from svc_core.redis import open_redis
from svc_core.resources import RedisSettings
from svc_core.settings import SettingsError

ADMIN = "redis://127.0.0.1:6379"
needs_server = pytest.mark.skipif(
    shutil.which("redis-server") is None, reason="no redis-server on the PATH"
)


@pytest.fixture
def acl_user() -> Iterator[object]:
    """``make(service)`` → a client logged in as a fresh ACL user with ``service``'s rights."""
    if not reachable("127.0.0.1", 6379):
        pytest.skip("no Redis at 127.0.0.1:6379")
    admin = redis.Redis.from_url(ADMIN)
    made: list[str] = []
    clients: list[redis.Redis] = []

    def make(service: str) -> redis.Redis:
        name, password = f"svctest-{service}-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
        admin.execute_command(
            "ACL", "SETUSER", name, "reset", "on", f">{password}", *redis_acl.rules(service).split()
        )
        made.append(name)
        client = redis.Redis(
            port=6379, db=13, username=name, password=password, decode_responses=True
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()
    if made:
        admin.execute_command("ACL", "DELUSER", *made)
    admin.close()


def test_every_service_and_the_gateway_have_a_row_and_no_admin_rights():
    assert {"customer", "order", "payment", "chat", "files", "cache", "gateway"} <= set(
        redis_acl.USERS
    )
    for service in redis_acl.USERS:
        rules = redis_acl.rules(service).split()
        assert rules[:3] == ["resetkeys", "resetchannels", "-@all"]
        for forbidden in (
            "~*",
            "&*",
            "+@all",
            "+flushdb",
            "+flushall",
            "+keys",
            "+config",
            "+acl",
            "+shutdown",
        ):
            assert forbidden not in rules, (service, forbidden)


def test_a_service_user_is_held_to_its_keys_channels_and_commands(acl_user):
    cache = acl_user("cache")
    cache.set("cache:{x}:k", "1", ex=5)
    assert cache.get("cache:{x}:k") == "1"
    with pytest.raises(NoPermissionError):
        cache.get("customer:session:s1")  # another service's key
    with pytest.raises(NoPermissionError):
        cache.hset("cache:{x}:h", "f", "v")  # its own prefix, a command it does not use
    with pytest.raises(NoPermissionError):
        cache.flushdb()
    with pytest.raises(NoPermissionError):
        cache.keys("*")
    with pytest.raises(NoPermissionError):
        cache.xadd("events:orders", {"a": "1"})
    with pytest.raises(NoPermissionError):
        cache.publish("chat:room:r1", "x")  # chat's channel
    assert cache.publish("auth:revocations", "{}") >= 0  # the chassis' channel: allowed

    order = acl_user("order")
    order.xadd("events:orders", {"a": "1"}, maxlen=10)
    with pytest.raises(NoPermissionError):
        order.get("cache:{x}:k")
    with pytest.raises(NoPermissionError):
        order.xadd("events:other", {"a": "1"})
    with pytest.raises(NoPermissionError):
        order.delete("events:orders")
    cleanup = redis.Redis.from_url(f"{ADMIN}/13")
    cleanup.delete("cache:{x}:k", "events:orders")
    cleanup.close()


def test_lua_scripts_are_held_to_the_users_keys(acl_user):
    customer = acl_user("customer")
    with pytest.raises(NoPermissionError):
        customer.eval("return redis.call('GET', KEYS[1])", 1, "cache:{x}:k")
    assert customer.eval("return redis.call('GET', KEYS[1])", 1, "customer:none") is None


@needs_server
def test_the_acl_file_compose_loads_admits_each_service_as_itself_and_nobody_else(tmp_path):
    passwords = {name: uuid.uuid4().hex for name in redis_acl.USERS}
    (tmp_path / "users.acl").write_text(redis_acl.acl_file(passwords, "admin-pw"))
    with _server(tmp_path, "--aclfile", str(tmp_path / "users.acl")) as port:
        anonymous = redis.Redis(port=port)
        with pytest.raises((AuthenticationError, NoPermissionError)):
            anonymous.set("cache:x", "1")  # the default user is off
        for name, password in passwords.items():
            client = redis.Redis(port=port, username=name, password=password)
            assert client.ping()
            with pytest.raises(NoPermissionError):
                client.flushall()
            client.close()
        with pytest.raises(AuthenticationError):
            redis.Redis(port=port, username="cache", password="wrong").ping()
        health = redis.Redis(port=port, username="healthcheck", password="x")
        assert health.ping()
        with pytest.raises(NoPermissionError):
            health.get("customer:session:s1")
        admin = redis.Redis(port=port, username="admin", password="admin-pw")
        assert admin.dbsize() == 0
        admin.close()


@needs_server
def test_compose_s_anonymous_user_has_the_gateway_s_rights_only(tmp_path):
    passwords = {name: uuid.uuid4().hex for name in redis_acl.USERS}
    text = redis_acl.acl_file(passwords, "admin-pw", anonymous="gateway")
    (tmp_path / "users.acl").write_text(text)
    with _server(tmp_path, "--aclfile", str(tmp_path / "users.acl")) as port:
        kong = redis.Redis(port=port)  # no credentials (compose now turns this user off)
        assert kong.incrby("ratelimit:r:s:1.2.3.4:1700000000:minute", 1) == 1
        assert kong.expire("ratelimit:r:s:1.2.3.4:1700000000:minute", 60)
        for denied in (
            lambda: kong.get("customer:session:s1"),
            lambda: kong.zadd("auth:revoked", {"s": 1}),
            lambda: kong.flushall(),
            lambda: kong.config_get("*"),
        ):
            with pytest.raises(NoPermissionError):
                denied()
        kong.close()


async def test_an_acl_user_url_and_password_reach_redis_through_the_settings(acl_user):
    acl_user("cache")  # warm-up: the fixture checks the shared Redis is there
    name, password = f"svctest-url-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    admin = redis.Redis.from_url(ADMIN)
    admin.execute_command(
        "ACL", "SETUSER", name, "reset", "on", f">{password}", *redis_acl.rules("cache").split()
    )
    try:
        settings = RedisSettings.from_env(
            {
                "REDIS_URL": f"redis://{name}@127.0.0.1:6379/13",
                "REDIS_PASSWORD": password,
            }
        )
        client = open_redis(settings.resolved_redis_url(), **settings.redis_options())
        try:
            assert await client.ping()
            with pytest.raises(NoPermissionError):
                await client.get("customer:x")
        finally:
            await client.aclose()
        inline = open_redis(f"redis://{name}:{password}@127.0.0.1:6379/13")
        assert await inline.ping()
        await inline.aclose()
    finally:
        admin.execute_command("ACL", "DELUSER", name)
        admin.close()


# --- TLS --------------------------------------------------------------------------------------


def _certificates(directory: Path) -> dict[str, Path]:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, all signed by it."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "svc test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = {"ca": directory / "ca.crt"}
    paths["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    for role, san in (("server", True), ("client", False)):
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, role)]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
        )
        if san:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False,
            )
        cert = builder.sign(ca_key, hashes.SHA256())
        paths[f"{role}_crt"] = directory / f"{role}.crt"
        paths[f"{role}_key"] = directory / f"{role}.key"
        paths[f"{role}_crt"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        paths[f"{role}_key"].write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    return paths


def _listening(port: int) -> bool:
    """The port accepts connections (a PING would need a password, or TLS)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class _server:
    """A redis-server of this test's own on a free port, with extra arguments."""

    def __init__(self, directory: Path, *args: str, tls: bool = False) -> None:
        self.port = free_port()
        port_args = (
            ["--port", "0", "--tls-port", str(self.port)] if tls else ["--port", str(self.port)]
        )
        self.args = [
            "redis-server", *port_args, "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", str(directory), *args,
        ]  # fmt: skip
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> int:
        self.process = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while not _listening(self.port):
            if self.process.poll() is not None:
                output = self.process.stdout.read().decode() if self.process.stdout else ""
                if "TLS" in output and "not" in output:
                    pytest.skip(f"redis-server without TLS support: {output[-200:]}")
                raise RuntimeError(f"redis-server exited: {output[-500:]}")
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)
        return self.port

    def __exit__(self, *exc: object) -> None:
        assert self.process is not None
        self.process.terminate()
        self.process.wait(10)
        if self.process.stdout is not None:
            self.process.stdout.close()


def test_tls_settings_need_a_rediss_url_and_files_that_exist(tmp_path):
    ca = tmp_path / "ca.crt"
    ca.write_text("x")
    with pytest.raises(SettingsError, match="rediss://"):
        RedisSettings.from_env({"REDIS_URL": "redis://h:6379", "REDIS_TLS_CA_FILE": str(ca)})
    with pytest.raises(SettingsError, match="no such file"):
        RedisSettings.from_env(
            {"REDIS_URL": "rediss://h:6379", "REDIS_TLS_CA_FILE": str(tmp_path / "missing")}
        )
    with pytest.raises(SettingsError, match="both or neither"):
        RedisSettings.from_env({"REDIS_URL": "rediss://h:6379", "REDIS_TLS_CERT_FILE": str(ca)})
    settings = RedisSettings.from_env(
        {"REDIS_URL": "rediss://h:6379", "REDIS_TLS_CA_FILE": str(ca)}
    )
    assert settings.redis_options() == {"ssl_cert_reqs": "required", "ssl_ca_certs": str(ca)}
    assert RedisSettings.from_env({"REDIS_URL": "redis://h:6379"}).redis_options() == {}


@needs_server
async def test_a_real_tls_connection_with_a_client_certificate(tmp_path):
    certs = _certificates(tmp_path)
    tls_args = (
        "--tls-cert-file", str(certs["server_crt"]), "--tls-key-file", str(certs["server_key"]),
        "--tls-ca-cert-file", str(certs["ca"]), "--tls-auth-clients", "yes",
    )  # fmt: skip
    with _server(tmp_path, *tls_args, tls=True) as port:
        settings = RedisSettings.from_env(
            {
                "REDIS_URL": f"rediss://127.0.0.1:{port}/0",
                "REDIS_TLS_CA_FILE": str(certs["ca"]),
                "REDIS_TLS_CERT_FILE": str(certs["client_crt"]),
                "REDIS_TLS_KEY_FILE": str(certs["client_key"]),
            }
        )
        client = open_redis(settings.resolved_redis_url(), **settings.redis_options())
        try:
            await client.set("k", "over tls")
            assert await client.get("k") == "over tls"
        finally:
            await client.aclose()

        # Plain text to the TLS port, and TLS without the client certificate, both fail.
        plain = open_redis(f"redis://127.0.0.1:{port}/0")
        with pytest.raises(redis.exceptions.ConnectionError):
            await plain.ping()
        await plain.aclose()
        no_cert = open_redis(
            f"rediss://127.0.0.1:{port}/0", ssl_ca_certs=str(certs["ca"]), ssl_cert_reqs="required"
        )
        with pytest.raises(redis.exceptions.ConnectionError):
            await no_cert.ping()
        await no_cert.aclose()
        # A server certificate from another CA is refused by the client.
        (tmp_path / "other").mkdir()
        other = _certificates(tmp_path / "other")
        untrusted = open_redis(
            f"rediss://127.0.0.1:{port}/0",
            ssl_ca_certs=str(other["ca"]),
            ssl_certfile=str(certs["client_crt"]),
            ssl_keyfile=str(certs["client_key"]),
            ssl_cert_reqs="required",
        )
        with pytest.raises(redis.exceptions.ConnectionError):
            await untrusted.ping()
        await untrusted.aclose()
