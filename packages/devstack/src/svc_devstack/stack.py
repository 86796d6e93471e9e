"""``svc-dev`` (``nox -s dev``): the whole stack on one machine, in one process. DEVELOPMENT TOOL.

On a fresh machine (Python 3.11+, nothing else) it:

1. picks Redis and MongoDB: ``REDIS_URL`` / ``MONGO_URL`` when set; otherwise a ``redis-server``
   from the PATH on a free port (stopped at exit), else in-memory Redis shared in-process
   (``memory://devstack``); in-memory MongoDB per service (``memory://<service>``);
2. generates development signing keys into ``.dev/keys/`` unless ``JWT_PRIVATE_KEY_FILE`` is set
   (the customer service gets the private key, every other service the public one);
3. renders deploy/kong/kong.yml into ``.dev/kong.yml`` (targets = the instances started here);
4. starts every service instance and the local gateway, waits until each ``/ready`` is green,
   prints the URLs and a curl walkthrough, and stops everything on Ctrl-C / SIGTERM.

The services are the installed packages that register a manifest (``svc_core.discover()``: the
``svc.services`` entry points, plus ``SVC_EXTRA_SERVICES``); each manifest says its port, whether
it signs tokens and which services it calls, so nothing here names a service.

Every port and URL is a setting: ``--port order=3003,3013`` runs two order instances behind the
gateway, ``--url order=http://host:3003`` uses one running elsewhere instead of starting it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import signal
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from svc_core.auth import public_pem
from svc_core.logs import configure_logging
from svc_core.runner import serve
from svc_core.service import Service, discover
from svc_core.settings import mask_url
from svc_devstack.consistency import routing_problems
from svc_gateway.config import load
from svc_gateway.gateway import Gateway
from svc_gateway.render import render_file

GATEWAY_PORT = 8000
MEMORY_REDIS = "memory://devstack"


def services() -> dict[str, Service[Any]]:
    """The services the stack runs: every registered manifest, in port order."""
    return discover()


@dataclasses.dataclass
class StackOptions:
    host: str = "127.0.0.1"
    gateway_port: int = GATEWAY_PORT
    status_port: int = 0
    #: the ports of each service's instances; a service not named runs one on its own port
    ports: dict[str, list[int]] = dataclasses.field(default_factory=dict)
    urls: dict[str, str] = dataclasses.field(default_factory=dict)  # run elsewhere, not here
    root: Path = dataclasses.field(default_factory=Path.cwd)
    environ: Mapping[str, str] = dataclasses.field(default_factory=lambda: dict(os.environ))
    service_env: dict[str, str] = dataclasses.field(default_factory=dict)  # e.g. BCRYPT_ROUNDS
    ready_timeout: float = 60.0
    dev_dir: Path | None = None  # keys and the rendered kong.yml; default <root>/.dev

    @property
    def work_dir(self) -> Path:
        return self.dev_dir or self.root / ".dev"


def ensure_dev_keys(keys_dir: Path) -> tuple[Path, Path]:
    """(private, public) PEM files of a development key pair, generated on first use."""
    private, public = keys_dir / "jwt-private.pem", keys_dir / "jwt-public.pem"
    if not private.exists():
        keys_dir.mkdir(parents=True, exist_ok=True)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        private.touch(mode=0o600)
        private.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    if not public.exists():
        public.write_text(public_pem_of(private))
    return private, public


def public_pem_of(private: Path) -> str:
    """The public key PEM of the RSA private key in ``private`` (the chassis' serialisation)."""
    key = serialization.load_pem_private_key(private.read_bytes(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError(f"{private}: not an RSA private key (tokens are RS256)")
    return public_pem(key)


class Stack:
    """The running stack; ``await start()`` then ``await stop()`` (also used by tests/e2e)."""

    def __init__(self, options: StackOptions) -> None:
        self.options = options
        self.services = services()
        unknown = (options.ports.keys() | options.urls.keys()) - self.services.keys()
        if unknown:
            raise ValueError(
                f"no such service: {', '.join(sorted(unknown))} "
                f"(registered: {', '.join(self.services)})"
            )
        self.choices: list[str] = []
        self.urls: dict[str, list[str]] = {}
        self.runners: list[web.AppRunner] = []
        self._redis_server: Any = None
        self.redis_url = ""
        self.gateway: Gateway | None = None

    @property
    def gateway_url(self) -> str:
        return f"http://{self.options.host}:{self.options.gateway_port}"

    def _pick_redis(self) -> None:
        configured = self.options.environ.get("REDIS_URL")
        if configured and not configured.startswith("memory://"):
            self.redis_url = configured
            self.choices.append(f"Redis: {mask_url(configured)} (REDIS_URL)")
            return
        from svc_core.embedded import RedisServer

        if not configured and RedisServer.available():
            self._redis_server = RedisServer().start()
            self.redis_url = self._redis_server.url
            self.choices.append(
                f"Redis: redis-server from the PATH on port {self._redis_server.port} "
                "(started here, stopped at exit)"
            )
            return
        self.redis_url = MEMORY_REDIS
        self.choices.append(
            "Redis: in-memory (fakeredis, shared in this process): no REDIS_URL, no redis-server"
        )

    def _mongo_url(self, service: str) -> str:
        configured = self.options.environ.get("MONGO_URL")
        if configured and not configured.startswith("memory://"):
            return configured
        return f"memory://{service}"

    def _keys(self) -> tuple[Path | None, Path]:
        environ = self.options.environ
        if environ.get("JWT_PRIVATE_KEY_FILE"):
            private = Path(environ["JWT_PRIVATE_KEY_FILE"])
            public = Path(environ.get("JWT_PUBLIC_KEYS_FILE") or "")
            if not public.name:
                public = self.options.work_dir / "jwt-public-from-private.pem"
                public.parent.mkdir(parents=True, exist_ok=True)
                public.write_text(public_pem_of(private))
            self.choices.append(f"Signing key: {private} (JWT_PRIVATE_KEY_FILE)")
            return private, public
        signer = next((n for n, s in self.services.items() if s.signs_tokens), None)
        if environ.get("JWT_PUBLIC_KEYS_FILE") and signer in self.options.urls:
            self.choices.append(f"Signing key: held by the external {signer} service")
            return None, Path(environ["JWT_PUBLIC_KEYS_FILE"])
        keys_dir = self.options.work_dir / "keys"
        private, public = ensure_dev_keys(keys_dir)
        self.choices.append(f"Signing key: development key pair in {keys_dir} (generated once)")
        return private, public

    def ports(self, name: str) -> list[int]:
        return self.options.ports.get(name, [self.services[name].port])

    def _targets(self) -> dict[str, str]:
        targets = {}
        for name in self.services:
            if name in self.options.urls:
                parts = urlsplit(self.options.urls[name])
                targets[name] = f"{parts.hostname}:{parts.port or 80}"
            else:
                targets[name] = ",".join(f"{self.options.host}:{p}" for p in self.ports(name))
        return targets

    def _render(self, public: Path) -> Path:
        environ = self.options.environ
        env = {k: v for k, v in environ.items() if k.startswith("GATEWAY_CORS")}
        env["JWT_PUBLIC_KEYS_FILE"] = str(public)
        env |= {f"{name.upper()}_TARGETS": t for name, t in self._targets().items()}
        if self.redis_url != MEMORY_REDIS:
            parts = urlsplit(self.redis_url)
            env |= {
                "RATE_LIMIT_REDIS_HOST": parts.hostname or "127.0.0.1",
                "RATE_LIMIT_REDIS_PORT": str(parts.port or 6379),
                "RATE_LIMIT_REDIS_DATABASE": parts.path.strip("/") or "0",
            }
        out = self.options.work_dir / "kong.yml"
        render_file(self.options.root / "deploy" / "kong" / "kong.yml", out, env)
        self.choices.append(f"Gateway config: {out} (rendered from deploy/kong/kong.yml)")
        return out

    def _service_env(
        self, service: Service[Any], port: int, private: Path | None, public: Path
    ) -> dict[str, str]:
        name = service.name
        env = {k: v for k, v in self.options.environ.items() if k != "CORS_ORIGINS"}
        env |= {
            "HOST": self.options.host,
            "PORT": str(port),
            "REDIS_URL": self.redis_url,
            "MONGO_URL": self._mongo_url(name),
            # Two instances in one process must not share an event-consumer name.
            "EVENTS_CONSUMER": f"{name}-{port}",
            # where a browser page served by a service (the web client) calls the API
            "GATEWAY_URL": self.gateway_url,
        }
        if service.signs_tokens:
            assert private is not None
            env["JWT_PRIVATE_KEY_FILE"] = str(private)
            env.pop("JWT_PUBLIC_KEYS_FILE", None)
        else:
            env["JWT_PUBLIC_KEYS_FILE"] = str(public)
        for called, variable in service.call_variables().items():
            env[variable] = self.service_url(called)
        return env | self.options.service_env

    def service_url(self, name: str) -> str:
        if name in self.options.urls:
            return self.options.urls[name]
        return f"http://{self.options.host}:{self.ports(name)[0]}"

    async def start(self) -> None:
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self._pick_redis)
        mongo = self.options.environ.get("MONGO_URL", "")
        self.choices.append(
            f"MongoDB: {mask_url(mongo)} (MONGO_URL)"
            if mongo and not mongo.startswith("memory://")
            else "MongoDB: in-memory (mongomock) per service: memory://<service>"
        )
        private, public = self._keys()
        rendered = self._render(public)
        config = load(rendered)
        problems = routing_problems(config, self.services)
        if problems:
            raise RuntimeError(
                "the gateway would not route every service:\n  " + "\n  ".join(problems)
            )
        for name, service in self.services.items():
            if name in self.options.urls:
                self.urls[name] = [self.options.urls[name]]
                continue
            for port in self.ports(name):
                settings = service.load_settings(self._service_env(service, port, private, public))
                app = service.create_app(settings)
                self.runners.append(await serve(app, self.options.host, port))
                self.urls.setdefault(name, []).append(f"http://{self.options.host}:{port}")
        override = MEMORY_REDIS if self.redis_url == MEMORY_REDIS else None
        self.gateway = Gateway(config, redis_override=override)
        self.runners.append(
            await serve(self.gateway.app(), self.options.host, self.options.gateway_port)
        )
        if self.options.status_port:
            self.runners.append(
                await serve(self.gateway.status_app(), self.options.host, self.options.status_port)
            )
        await self.wait_ready()

    async def wait_ready(self) -> None:
        """Poll every instance's /ready, then the gateway, until green or the deadline."""
        deadline = asyncio.get_running_loop().time() + self.options.ready_timeout
        checks = [f"{url}/ready" for name in self.services for url in self.urls.get(name, [])]
        checks.append(f"{self.gateway_url}/auth/jwks.json")
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3)) as session:
            for url in checks:
                last = ""
                while True:
                    try:
                        async with session.get(url) as response:
                            if response.status == 200:
                                break
                            last = f"{response.status} {await response.text()}"
                    except (aiohttp.ClientError, TimeoutError) as exc:
                        last = repr(exc)
                    if asyncio.get_running_loop().time() > deadline:
                        raise RuntimeError(f"not ready in time: {url}: {last}")
                    await asyncio.sleep(0.2)

    async def stop(self) -> None:
        for runner in reversed(self.runners):
            with contextlib.suppress(Exception):
                await runner.cleanup()
        self.runners.clear()
        if self._redis_server is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._redis_server.stop)
            self._redis_server = None

    def _web_lines(self) -> list[str]:
        """The browser client's two addresses, when the web service is part of the stack."""
        if "web" not in self.urls:
            return []
        direct = self.urls["web"][0].replace("://127.0.0.1:", "://localhost:", 1)
        return [
            "",
            f"  Web client: {direct}/app/  (cross-origin to the gateway: CORS origin {direct})",
            f"              {self.gateway_url}/app/  (through the gateway, same origin)",
        ]

    def summary(self) -> str:
        gw = self.gateway_url
        lines = [
            "svc-dev: the local stack (DEVELOPMENT TOOL: the gateway is svc-gateway reading "
            "kong.yml, not Kong)",
            *(f"  {choice}" for choice in self.choices),
            "",
            f"  gateway    {gw}",
            *(f"  {name:<10} {', '.join(urls)}" for name, urls in self.urls.items()),
            *self._web_lines(),
            "",
            "Try it:",
            f"  curl -si -X POST {gw}/auth/register -H 'Content-Type: application/json' \\",
            '       -d \'{"username":"alice","email":"alice@example.com",'
            '"password":"correct horse"}\'',
            f"  TOKEN=$(curl -s -X POST {gw}/auth/login -H 'Content-Type: application/json' \\",
            '       -d \'{"username":"alice","password":"correct horse"}\' \\',
            "       | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"access_token\"])')",
            f'  curl -si {gw}/customers/me -H "Authorization: Bearer $TOKEN"',
            f'  ORDER=$(curl -s -X POST {gw}/orders -H "Authorization: Bearer $TOKEN" '
            "-H 'Content-Type: application/json' \\",
            '       -d \'{"currency":"EUR","items":[{"sku":"tea-1","name":"Green tea",'
            '"quantity":2,"unit_price":450}]}\' \\',
            "       | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"id\"])')",
            f'  curl -si -X POST {gw}/payments -H "Authorization: Bearer $TOKEN" '
            "-H \"Idempotency-Key: $(python3 -c 'import uuid; print(uuid.uuid4())')\" \\",
            "       -H 'Content-Type: application/json' -d '{\"order_id\":\"'$ORDER'\","
            '"card":{"number":"4242424242424242","exp_month":12,"exp_year":2030,"cvc":"123"}}\'',
            f'  curl -si {gw}/orders/$ORDER -H "Authorization: Bearer $TOKEN"   # "status": "paid"',
            f'  curl -si -X PUT {gw}/cache/greeting -H "Authorization: Bearer $TOKEN" '
            '-H \'Content-Type: application/json\' -d \'{"value":"hello","ttl_seconds":60}\'',
            "",
            "Ctrl-C stops everything.",
        ]
        return "\n".join(lines)


def _find_root(start: Path) -> Path:
    for directory in (start, *start.parents):
        if (directory / "deploy" / "kong" / "kong.yml").exists():
            return directory
    raise SystemExit("svc-dev: run it inside the repository (deploy/kong/kong.yml not found)")


def parse_options(argv: list[str] | None, environ: Mapping[str, str]) -> StackOptions:
    parser = argparse.ArgumentParser(
        prog="svc-dev", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default=environ.get("DEV_HOST", "127.0.0.1"))
    parser.add_argument(
        "--gateway-port", type=int, default=int(environ.get("GATEWAY_PORT", GATEWAY_PORT))
    )
    parser.add_argument(
        "--status-port",
        type=int,
        default=int(environ.get("STATUS_PORT", 0)),
        help="also serve the gateway's /metrics and /status here",
    )
    parser.add_argument(
        "--port",
        action="append",
        default=[],
        metavar="SERVICE=PORT[,PORT]",
        help="ports of a service's instances (env: <SERVICE>_PORTS)",
    )
    parser.add_argument(
        "--url",
        action="append",
        default=[],
        metavar="SERVICE=URL",
        help="use a service running elsewhere (env: <SERVICE>_URL)",
    )
    args = parser.parse_args(argv)
    registered = services()
    ports: dict[str, list[int]] = {}
    urls: dict[str, str] = {}
    for name in registered:
        if environ.get(f"{name.upper()}_PORTS"):
            ports[name] = [int(p) for p in environ[f"{name.upper()}_PORTS"].split(",")]
        if environ.get(f"{name.upper()}_URL"):
            urls[name] = environ[f"{name.upper()}_URL"]
    for item in args.port:
        name, _, value = item.partition("=")
        if name not in registered or not value:
            parser.error(f"--port {item}: expected one of {', '.join(registered)}=PORT[,PORT]")
        ports[name] = [int(p) for p in value.split(",")]
    for item in args.url:
        name, _, value = item.partition("=")
        if name not in registered or not value.startswith(("http://", "https://")):
            parser.error(f"--url {item}: expected SERVICE=http://host:port")
        urls[name] = value
    return StackOptions(
        host=args.host,
        gateway_port=args.gateway_port,
        status_port=args.status_port,
        ports=ports,
        urls=urls,
        root=_find_root(Path.cwd()),
        environ=environ,
    )


async def run(options: StackOptions) -> None:
    stack = Stack(options)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stack.start()
    print(stack.summary(), flush=True)
    try:
        await stop.wait()
    finally:
        print("svc-dev: stopping", flush=True)
        await stack.stop()


def main(argv: list[str] | None = None) -> None:
    options = parse_options(argv, dict(os.environ))
    configure_logging("dev", os.environ.get("LOG_LEVEL", "INFO"))
    try:
        asyncio.run(run(options))
    except (RuntimeError, ValueError) as exc:
        print(f"svc-dev: {exc}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
