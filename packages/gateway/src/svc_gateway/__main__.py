"""``svc-gateway``: render kong.yml, check it, or run the local development gateway.

    svc-gateway render [--template deploy/kong/kong.yml] --out .dev/kong.yml
    svc-gateway check .dev/kong.yml
    svc-gateway run --config .dev/kong.yml [--port 8000] [--status-port 8100]

``run`` is a DEVELOPMENT TOOL: production runs Kong with the same rendered file.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path

from svc_core.logs import configure_logging
from svc_core.runner import serve
from svc_gateway.checks import problems
from svc_gateway.config import ConfigError, load
from svc_gateway.gateway import Gateway
from svc_gateway.render import RenderError, render_file
from svc_gateway.server import ClientLimits

log = logging.getLogger("svc_gateway")
DEFAULT_TEMPLATE = Path("deploy/kong/kong.yml")


async def run_gateway(args: argparse.Namespace) -> None:
    config = load(args.config)
    limits = ClientLimits(
        client_header_timeout=args.client_header_timeout,
        client_body_timeout=args.client_body_timeout,
        keepalive_timeout=args.keepalive_timeout,
    )
    gateway = Gateway(config, redis_override=args.redis_url, limits=limits)
    runners = [await serve(gateway.app(), args.host, args.port)]
    if args.status_port:
        runners.append(await serve(gateway.status_app(), args.host, args.status_port))
    log.warning(
        "local development gateway listening (a development tool, not Kong)",
        extra={"port": args.port, "config": str(args.config)},
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    import signal

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for runner in reversed(runners):
        await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="svc-gateway",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    render = sub.add_parser("render", help="fill the template's ${VAR} from the environment")
    render.add_argument("--template", type=Path, default=DEFAULT_TEMPLATE)
    render.add_argument("--out", type=Path, required=True)
    check = sub.add_parser("check", help="the project's checks on a rendered kong.yml")
    check.add_argument("config", type=Path)
    run = sub.add_parser("run", help="serve the local development gateway")
    run.add_argument("--config", type=Path, required=True)
    run.add_argument("--host", default=os.environ.get("GATEWAY_HOST", "127.0.0.1"))
    run.add_argument("--port", type=int, default=int(os.environ.get("GATEWAY_PORT", "8000")))
    run.add_argument("--status-port", type=int, default=0)
    run.add_argument(
        "--redis-url",
        default=os.environ.get("GATEWAY_REDIS_URL") or None,
        help="count rate limits here instead of the redis block (memory://NAME)",
    )
    defaults = ClientLimits()
    for option, default in (
        ("client-header-timeout", defaults.client_header_timeout),
        ("client-body-timeout", defaults.client_body_timeout),
        ("keepalive-timeout", defaults.keepalive_timeout),
    ):
        env = "GATEWAY_" + option.upper().replace("-", "_")
        run.add_argument(
            f"--{option}",
            type=float,
            default=float(os.environ.get(env, default)),
            help=f"seconds, nginx's {option.replace('-', '_')} (default {default:g}; env {env})",
        )
    args = parser.parse_args(argv)
    try:
        if args.command == "render":
            render_file(args.template, args.out, os.environ)
            print(f"rendered {args.template} -> {args.out}")
        elif args.command == "check":
            found = problems(args.config)
            for problem in found:
                print(f"{args.config}: {problem}", file=sys.stderr)
            if found:
                raise SystemExit(1)
            print(f"{args.config}: ok")
        else:
            configure_logging("gateway", os.environ.get("LOG_LEVEL", "INFO"))
            asyncio.run(run_gateway(args))
    except (ConfigError, RenderError) as exc:
        raise SystemExit(f"svc-gateway: {exc}") from None


if __name__ == "__main__":
    main()
