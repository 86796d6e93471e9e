"""``svc-core``: the chassis' command line.

    svc-core new NAME [--port N] [--mongo] [--redis] [--events] [--dry-run]
    svc-core audit --service S [--since T] [--until T] [--actor ID|IP] [--action A]
                   [--target ID] [--outcome O] [--limit N] [--format json|table]

``new`` creates ``packages/NAME`` and ``tests/NAME`` and adds the service everywhere it must
appear (see :mod:`svc_core.scaffold` and docs/adding-a-service.md).

``audit`` prints a service's audit records (:mod:`svc_core.audit`), newest first, read from
the MongoDB its settings name (``MONGO_URL`` or ``MONGO_URL_FILE``, ``MONGO_DB``: the
environment, as the service itself reads them).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from svc_core import audit, scaffold


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="svc-core", description="The svc_core chassis' tools.")
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    new = commands.add_parser(
        "new",
        help="create a service and add it everywhere it must appear",
        description="Create packages/NAME (a first route: POST and GET /NAME/items) and "
        "tests/NAME, and add the service to the root pyproject, kong.yml, compose, Kubernetes, "
        "deploy/images.py and uv.lock.",
    )
    new.add_argument("name", metavar="NAME", help="the service name: a-z and 0-9, e.g. inventory")
    new.add_argument("--port", type=int, help="its port (default: the next free one)")
    new.add_argument("--mongo", action="store_true", help="store its items in MongoDB")
    new.add_argument("--redis", action="store_true", help="declare Redis() (items in Redis "
                     "unless --mongo; auth brings Redis either way)")  # fmt: skip
    new.add_argument("--events", action="store_true", help="publish an event per new item")
    new.add_argument("--dry-run", action="store_true", help="print the plan, write nothing")
    new.add_argument("--no-lock", action="store_true", help="do not run `uv lock` afterwards")
    new.add_argument("--root", type=Path, help="the repository (default: found from here)")
    _audit_parser(commands)
    return top


# --- svc-core audit -------------------------------------------------------------------------

_DURATION = re.compile(r"(\d{1,6})([smhd])\Z")
_CREDENTIALS = re.compile(r"://[^@/\s]+@")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_TIME_HELP = "an RFC 3339 time (2026-11-25, 2026-11-25T10:00:00Z) or an age (30m, 12h, 7d)"


def parse_time(text: str, *, now: dt.datetime | None = None) -> dt.datetime:
    """An RFC 3339 date or time (UTC unless it says otherwise), or an age back from now."""
    text = text.strip()
    duration = _DURATION.match(text)
    if duration:
        seconds = int(duration.group(1)) * _UNITS[duration.group(2)]
        return (now or dt.datetime.now(dt.UTC)) - dt.timedelta(seconds=seconds)
    try:
        value = dt.datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {_TIME_HELP}; got {text!r}") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def _limit(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 10000:
        raise argparse.ArgumentTypeError(f"expected a whole number from 1 to 10000; got {text!r}")
    return int(text)


def _audit_parser(commands: Any) -> None:
    cmd = commands.add_parser(
        "audit",
        help="read a service's audit log",
        description="Print a service's audit records, newest first, from the MongoDB its "
        "settings name (MONGO_URL and MONGO_DB from the environment, as the service reads them).",
    )
    cmd.add_argument("--service", required=True, help="the service, e.g. customer")
    cmd.add_argument("--since", type=parse_time, help=f"records from then on: {_TIME_HELP}")
    cmd.add_argument("--until", type=parse_time, help="records before then (same forms)")
    cmd.add_argument("--actor", help="the actor's customer id or client IP")
    cmd.add_argument("--action", help="e.g. auth.login; a prefix with .* (auth.*)")
    cmd.add_argument("--target", help="the target's id (a customer, payment, file, room...)")
    cmd.add_argument("--outcome", choices=audit.OUTCOMES)
    cmd.add_argument("--limit", type=_limit, default=100, help="at most N records (100)")
    cmd.add_argument("--format", choices=("json", "table"), default="json",
                     help="JSON lines (default) or a table")  # fmt: skip


class AuditRefused(Exception):
    """Bad input or a missing setting: the message says which."""


def _audit_settings(service: str, environ: Mapping[str, str] | None) -> tuple[str, str]:
    """(MONGO_URL, database) of ``service``, which must be installed and record audit events."""
    from svc_core.resources import Audit, MongoSettings
    from svc_core.service import discover

    services = discover(environ)
    recording = sorted(n for n, s in services.items() if s.uses_resource(Audit))
    if service not in services or service not in recording:
        known = ", ".join(recording) or "none installed here"
        raise AuditRefused(f"--service {service}: not a service that records audit ({known})")

    class Reader(MongoSettings):
        pass

    env = dict(os.environ if environ is None else environ)
    if not env.get("MONGO_URL") and env.get("MONGO_URL_FILE"):
        # as the image's entrypoint does for the service: NAME_FILE holds NAME's value
        try:
            env["MONGO_URL"] = Path(env["MONGO_URL_FILE"]).read_text().removesuffix("\n")
        except OSError as exc:
            raise AuditRefused(f"MONGO_URL_FILE: cannot read it ({exc.strerror})") from None
    try:
        settings = Reader.from_env(env)
    except ValueError as exc:
        raise AuditRefused(str(exc)) from None
    if not settings.mongo_url:
        raise AuditRefused("MONGO_URL: not set (the service's MongoDB, as the service reads it)")
    if settings.mongo_url == "memory://":
        raise AuditRefused("MONGO_URL=memory:// is a store of its own process; nothing to read")
    return settings.mongo_url, settings.mongo_db or service


async def _read_audit(url: str, database: str, where: dict[str, Any], limit: int) -> list[Any]:
    from svc_core import mongo

    client = mongo.open_client(url)
    try:
        return [doc async for doc in audit.read(client[database], where, limit=limit)]
    finally:
        await mongo.close_client(client, url)


def _table(records: list[dict[str, Any]]) -> str:
    columns = ("time", "action", "outcome", "actor", "ip", "target", "request_id")
    rows = [columns]
    for r in records:
        actor = r.get("actor") or {}
        target = r.get("target") or {}
        rows.append(
            (
                str(r.get("time", "")),
                str(r.get("action", "")),
                str(r.get("outcome", "")),
                str(actor.get("id") or actor.get("type") or ""),
                str(actor.get("ip") or ""),
                f"{target.get('type')}:{target.get('id')}" if target else "",
                str(r.get("request_id") or ""),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(columns))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def audit_main(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> int:
    try:
        if args.since and args.until and args.since >= args.until:
            raise AuditRefused("--since must be before --until")
        url, database = _audit_settings(args.service, environ)
        where = audit.query(
            since=args.since,
            until=args.until,
            actor=args.actor,
            action=args.action,
            target=args.target,
            outcome=args.outcome,
        )
        records = asyncio.run(_read_audit(url, database, where, args.limit))
    except AuditRefused as exc:
        print(f"svc-core audit: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # the database did not answer: say so, no traceback
        said = _CREDENTIALS.sub("://***@", str(exc))
        print(f"svc-core audit: could not read the audit log: {type(exc).__name__}: {said}",
              file=sys.stderr)  # fmt: skip
        return 1
    if args.format == "table":
        print(_table(records))
    else:
        for record in records:
            print(json.dumps(record, ensure_ascii=False, default=str, sort_keys=True))
    return 0


def main(argv: list[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "audit":
        return audit_main(args, environ)
    try:
        root = (args.root or scaffold.find_root(Path.cwd())).resolve()
        plan = scaffold.plan(
            root,
            args.name,
            port=args.port,
            mongo=args.mongo,
            redis=args.redis,
            events=args.events,
            lock=not args.no_lock,
        )
    except scaffold.Refused as exc:
        print(f"svc-core new: refused: {exc}", file=sys.stderr)
        return 2
    if args.dry_run:
        sys.stdout.write(scaffold.describe(plan))
        print("\n(dry run: nothing was written)")
        return 0
    scaffold.apply(plan)
    print(scaffold.next_steps(plan))
    return 0


if __name__ == "__main__":
    sys.exit(main())
