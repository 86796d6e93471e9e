"""Back up and restore the platform's data: MongoDB, Redis and file storage, where the tools exist.

    nox -s backup                              # backup, then restore into scratch and verify
    nox -s backup -- backup --out backups      # backups/<UTC timestamp>/ only
    nox -s backup -- verify backups/<stamp>    # restore into scratch (a redis-server of its own,
                                               # a temporary directory) and check
    nox -s backup -- restore backups/<stamp> --redis-url redis://admin@host:6379/7 \\
        --redis-source-db 0 --files-root /srv/files --mongo-url mongodb://admin@host/

Sources come from the services' own variables: MONGO_URL (an account that may read every
database, e.g. the admin/backup user), REDIS_URL + REDIS_PASSWORD (Redis's ``admin`` user:
``redis-cli --rdb`` needs SYNC), FILES_STORAGE, FILES_LOCAL_ROOT, FILES_S3_* (the file
service's settings). Each part says what it did, how long it took, or why it was skipped:

- MongoDB: ``mongodump --gzip --archive`` (``--oplog`` on a replica set), restored with
  ``mongorestore --drop``; skipped without the MongoDB Database Tools or a mongodb:// URL.
- Redis: ``redis-cli --rdb``: a consistent snapshot of every database. It is restored (and
  verified) by starting a redis-server of its own on a copy of the file; ``restore`` then
  copies one database's keys into a target (DUMP/RESTORE with their TTLs) and refuses a
  non-empty target unless ``--replace``. It never flushes anything. Files are refused where
  the target already holds other bytes under the same name, unless ``--replace``. A
  whole-server restore in production replaces the data files instead (docs/operations.md).
- Files: the local root copied file by file with a SHA-256 of each (checked on restore), or
  every object under the S3 prefix (botocore, which the file service already installs).

Restore order and what a restore loses: docs/operations.md ("Backup and restore").
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import redis

MANIFEST = "manifest.json"


class Skipped(Exception):
    """A part that cannot run here; the message says why."""


def say(message: str) -> None:
    print(message, flush=True)


def timed(label: str, step: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    started = time.perf_counter()
    say(f"{label}: ...")
    try:
        result = {"status": "done", **step()}
    except Skipped as exc:
        result = {"status": "skipped", "reason": str(exc)}
    result["seconds"] = round(time.perf_counter() - started, 3)
    detail = result.get("reason") or ", ".join(
        f"{k}={v}" for k, v in result.items() if k not in ("status", "seconds")
    )
    say(f"{label}: {result['status'].upper()} in {result['seconds']:.2f}s ({detail})")
    return result


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def inside(root: Path, relative: str) -> Path:
    """``root / relative``, refused when ``relative`` (from a listing or an S3 key, i.e. not
    ours to trust) is absolute or climbs out of ``root``."""
    path = Path(relative)
    if not relative or path.is_absolute() or ".." in path.parts:
        raise RuntimeError(f"{relative!r}: not a path inside {root} (refused)")
    return root / path


# ------------------------------------------------------------------------------ MongoDB
@contextlib.contextmanager
def mongo_tool_config(url: str) -> Iterator[str]:
    """A ``--config`` file (mode 0600) holding the URI: its password stays out of argv (``ps``)
    and out of any error that shows the command line."""
    with tempfile.TemporaryDirectory(prefix="svc-mongo-tool-") as scratch:
        config = Path(scratch) / "config.yaml"
        config.touch(mode=0o600)
        config.write_text(f"uri: {json.dumps(url)}\n")
        yield f"--config={config}"


def run_tool(args: list[str]) -> None:
    """Run a MongoDB tool; a failure names the tool and its exit status only."""
    try:
        subprocess.run(args, check=True)  # noqa: S603 (no shell; the URI is in --config)
    except subprocess.CalledProcessError as exc:
        raise RuntimeError(f"{Path(args[0]).name} failed (exit status {exc.returncode})") from None


def mongo_backup(env: dict[str, str], out: Path) -> dict[str, Any]:
    tool = shutil.which("mongodump")
    if tool is None:
        raise Skipped("mongodump is not on the PATH (install the MongoDB Database Tools)")
    url = env.get("MONGO_URL", "")
    if not url.startswith(("mongodb://", "mongodb+srv://")):
        raise Skipped("MONGO_URL names no MongoDB server (nothing to dump)")
    archive = out / "mongo.archive.gz"
    with mongo_tool_config(url) as config:
        args = [tool, config, "--gzip", f"--archive={archive}"]
        if "replicaSet=" in url:
            args.append("--oplog")  # a consistent point in time on a replica set
        run_tool(args)
    return {"file": archive.name, "bytes": archive.stat().st_size}


def mongo_restore(directory: Path, url: str | None) -> dict[str, Any]:
    archive = directory / "mongo.archive.gz"
    if not archive.exists():
        raise Skipped("the backup has no MongoDB archive")
    if not url:
        raise Skipped("no --mongo-url to restore into")
    tool = shutil.which("mongorestore")
    if tool is None:
        raise Skipped("mongorestore is not on the PATH (install the MongoDB Database Tools)")
    manifest = json.loads((directory / MANIFEST).read_text())
    with mongo_tool_config(url) as config:
        args = [tool, config, "--gzip", f"--archive={archive}", "--drop"]
        if "replicaSet=" in manifest.get("mongo_url", ""):
            args.append("--oplogReplay")
        run_tool(args)
    return {"from": archive.name}


# -------------------------------------------------------------------------------- Redis
def redis_cli_args(url: str, password: str) -> tuple[list[str], dict[str, str]]:
    """redis-cli's arguments for ``url``; the password goes in REDISCLI_AUTH, never argv."""
    parts = urlsplit(url)
    args = ["-h", parts.hostname or "127.0.0.1", "-p", str(parts.port or 6379)]
    if parts.username:
        args += ["--user", parts.username]
    if parts.scheme == "rediss":
        args.append("--tls")
    env = dict(os.environ)
    secret = parts.password or password
    if secret:
        env["REDISCLI_AUTH"] = secret
    return args, env


def keyspace(client: redis.Redis) -> dict[str, int]:
    info = client.info("keyspace")
    return {db.removeprefix("db"): int(v["keys"]) for db, v in info.items()}


def redis_backup(env: dict[str, str], out: Path) -> dict[str, Any]:
    url = env.get("REDIS_URL") or "redis://127.0.0.1:6379"
    if not url.startswith(("redis://", "rediss://")):
        raise Skipped(f"REDIS_URL {url.split(':', 1)[0]}:// is not a Redis server")
    tool = shutil.which("redis-cli")
    if tool is None:
        raise Skipped("redis-cli is not on the PATH (apt-get install redis-tools)")
    password = env.get("REDIS_PASSWORD", "")
    client = redis.Redis.from_url(url, password=password or None)
    try:
        before = keyspace(client)
    finally:
        client.close()
    args, cli_env = redis_cli_args(url, password)
    target = out / "redis.rdb"
    subprocess.run(  # noqa: S603 (fixed tool, parsed URL)
        [tool, *args, "--rdb", str(target)], check=True, env=cli_env, capture_output=True
    )
    return {"file": target.name, "bytes": target.stat().st_size, "keys_before": before}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def snapshot_server(rdb: Path) -> Iterator[redis.Redis]:
    """A redis-server of our own on a copy of ``rdb`` (loopback, no persistence): the
    restored snapshot, readable with no credentials."""
    server = shutil.which("redis-server")
    if server is None:
        raise Skipped("redis-server is not on the PATH: cannot load the snapshot here")
    with tempfile.TemporaryDirectory(prefix="svc-restore-") as scratch:
        shutil.copy2(rdb, Path(scratch) / "dump.rdb")
        port = free_port()
        process = subprocess.Popen(  # noqa: S603
            [
                server, "--port", str(port), "--bind", "127.0.0.1", "--dir", scratch,
                "--dbfilename", "dump.rdb", "--appendonly", "no", "--save", "",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis.Redis(port=port)
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if client.ping() and client.info("persistence")["loading"] == 0:
                        break
                except redis.ConnectionError:
                    pass
                except redis.BusyLoadingError:
                    pass
                if process.poll() is not None:
                    raise RuntimeError(f"redis-server could not load {rdb}")
                if time.monotonic() > deadline:
                    raise RuntimeError("redis-server did not start")
                time.sleep(0.05)
            yield client
        finally:
            client.close()
            process.terminate()
            process.wait(10)


def copy_database(source: redis.Redis, target: redis.Redis, replace: bool) -> int:
    """Every key of ``source``'s database into ``target``'s (DUMP/RESTORE, TTLs kept)."""
    if not replace and target.dbsize():
        raise RuntimeError("the target database is not empty (use --replace to overwrite keys)")
    copied = 0
    for key in source.scan_iter(count=1000):
        dumped = source.dump(key)
        if dumped is None:  # expired meanwhile
            continue
        ttl = max(int(source.pttl(key)), 0)
        target.restore(key, ttl, dumped, replace=replace)
        copied += 1
    return copied


def redis_restore(
    directory: Path, url: str | None, password: str, source_db: int, replace: bool
) -> dict[str, Any]:
    rdb = directory / "redis.rdb"
    if not rdb.exists():
        raise Skipped("the backup has no Redis snapshot")
    manifest = json.loads((directory / MANIFEST).read_text())
    with snapshot_server(rdb) as snapshot:
        loaded = keyspace(snapshot)
        result: dict[str, Any] = {"keys_loaded": loaded}
        recorded = manifest["parts"]["redis"].get("keys_before", {})
        if set(loaded) != set(recorded):
            say(f"  note: databases {sorted(recorded)} before the backup, {sorted(loaded)} in it")
        if url:
            snapshot.select(source_db)
            target = redis.Redis.from_url(url, password=password or None)
            try:
                result["copied"] = copy_database(snapshot, target, replace)
            finally:
                target.close()
            parts = urlsplit(url)  # shown without credentials
            result["into"] = f"{parts.hostname}:{parts.port or 6379}{parts.path or '/0'}"
    return result


# -------------------------------------------------------------------------------- files
def s3_client(env: dict[str, str]) -> Any:
    try:
        import botocore.session
    except ImportError:
        raise Skipped("botocore is not installed (pip install botocore)") from None
    session = botocore.session.get_session()
    return session.create_client(
        "s3",
        region_name=env.get("FILES_S3_REGION") or "us-east-1",
        endpoint_url=env.get("FILES_S3_ENDPOINT_URL") or None,
        aws_access_key_id=env.get("FILES_S3_ACCESS_KEY_ID") or None,
        aws_secret_access_key=env.get("FILES_S3_SECRET_ACCESS_KEY") or None,
    )


def files_backup(env: dict[str, str], out: Path) -> dict[str, Any]:
    target = out / "files"
    checksums: dict[str, str] = {}
    if env.get("FILES_STORAGE", "local") == "s3":
        bucket, prefix = env.get("FILES_S3_BUCKET", ""), env.get("FILES_S3_PREFIX", "files/")
        if not bucket:
            raise Skipped("FILES_STORAGE=s3 without FILES_S3_BUCKET")
        client = s3_client(env)
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                relative = item["Key"].removeprefix(prefix)
                path = inside(target, relative)
                path.parent.mkdir(parents=True, exist_ok=True)
                body = client.get_object(Bucket=bucket, Key=item["Key"])["Body"]
                with path.open("wb") as f:
                    shutil.copyfileobj(body, f)
                checksums[relative] = sha256(path)
        source = f"s3://{bucket}/{prefix}"
    else:
        root = Path(env.get("FILES_LOCAL_ROOT") or "var/files")
        if not root.is_dir():
            raise Skipped(f"FILES_LOCAL_ROOT {root} does not exist (no local files to copy)")
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            relative = path.relative_to(root).as_posix()
            copy = target / relative
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, copy)
            checksums[relative] = sha256(copy)
        source = str(root)
    (out / "files.sha256.json").write_text(json.dumps(checksums, indent=1, sort_keys=True))
    size = sum(p.stat().st_size for p in target.rglob("*") if p.is_file()) if checksums else 0
    return {"from": source, "files": len(checksums), "bytes": size}


def files_restore(directory: Path, root: Path, replace: bool = False) -> dict[str, Any]:
    """Copy the backup's files into ``root``; a file already there with other bytes is refused
    (before anything is copied) unless ``replace``."""
    listing = directory / "files.sha256.json"
    if not listing.exists():
        raise Skipped("the backup has no files")
    checksums: dict[str, str] = json.loads(listing.read_text())
    for relative, digest in checksums.items():
        inside(directory / "files", relative)
        existing = inside(root, relative)
        if not replace and existing.exists() and sha256(existing) != digest:
            raise RuntimeError(
                f"{existing} exists with other bytes (use --replace to overwrite files)"
            )
    for relative, digest in checksums.items():
        source = inside(directory / "files", relative)
        if sha256(source) != digest:
            raise RuntimeError(f"files/{relative}: checksum mismatch in the backup")
        target = inside(root, relative)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
        if sha256(target) != digest:
            raise RuntimeError(f"{target}: checksum mismatch after the copy")
    return {"into": str(root), "files": len(checksums), "verified": "sha256"}


# ---------------------------------------------------------------------------- commands
def backup(out_root: Path, env: dict[str, str]) -> Path:
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    out = out_root / stamp
    out.mkdir(parents=True, exist_ok=False)
    say(f"backup into {out}")
    # MongoDB first, files after it (every metadata record then has its bytes), Redis last.
    parts = {
        "mongodb": timed("[1/3] mongodb", lambda: mongo_backup(env, out)),
        "files": timed("[2/3] files", lambda: files_backup(env, out)),
        "redis": timed("[3/3] redis", lambda: redis_backup(env, out)),
    }
    manifest = {
        "created": stamp,
        "mongo_url": urlsplit(env.get("MONGO_URL", ""))._replace(netloc="").geturl(),
        "parts": parts,
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True))
    summary(parts)
    return out


def restore(
    directory: Path,
    *,
    mongo_url: str | None,
    redis_url: str | None,
    redis_password: str,
    redis_source_db: int,
    replace: bool,
    files_root: Path,
) -> dict[str, Any]:
    say(f"restore from {directory}")
    # MongoDB, then files, then Redis (docs/operations.md: restore order).
    parts = {
        "mongodb": timed("[1/3] mongodb", lambda: mongo_restore(directory, mongo_url)),
        "files": timed("[2/3] files", lambda: files_restore(directory, files_root, replace)),
        "redis": timed(
            "[3/3] redis",
            lambda: redis_restore(directory, redis_url, redis_password, redis_source_db, replace),
        ),
    }
    summary(parts)
    return parts


def summary(parts: dict[str, dict[str, Any]]) -> None:
    done = [n for n, p in parts.items() if p["status"] == "done"]
    skipped = [f"{n} ({p['reason']})" for n, p in parts.items() if p["status"] == "skipped"]
    say(f"done: {', '.join(done) or 'nothing'}")
    if skipped:
        say(f"SKIPPED: {'; '.join(skipped)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command")
    run = sub.add_parser("run", help="backup, then restore into scratch and verify (default)")
    run.add_argument("--out", type=Path, default=Path("backups"))
    make = sub.add_parser("backup", help="a backup into OUT/<UTC timestamp>/")
    make.add_argument("--out", type=Path, default=Path("backups"))
    verify = sub.add_parser("verify", help="restore a backup into scratch and check it")
    verify.add_argument("directory", type=Path)
    back = sub.add_parser("restore", help="restore a backup into the given targets")
    back.add_argument("directory", type=Path)
    back.add_argument("--mongo-url")
    back.add_argument("--redis-url", help="copy one snapshot database into this URL's database")
    back.add_argument("--redis-source-db", type=int, default=0)
    back.add_argument("--replace", action="store_true", help="overwrite existing keys and files")
    back.add_argument("--files-root", type=Path, required=True)
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv or ["run"])
    env = dict(os.environ)
    started = time.perf_counter()
    directory = backup(args.out, env) if args.command in ("run", "backup") else args.directory
    if args.command in ("run", "verify"):
        with tempfile.TemporaryDirectory(prefix="svc-restore-files-") as scratch:
            restore(
                directory, mongo_url=None, redis_url=None, redis_password="",
                redis_source_db=0, replace=False, files_root=Path(scratch),
            )  # fmt: skip
    elif args.command == "restore":
        restore(
            directory, mongo_url=args.mongo_url, redis_url=args.redis_url,
            redis_password=env.get("REDIS_PASSWORD", ""), redis_source_db=args.redis_source_db,
            replace=args.replace, files_root=args.files_root,
        )  # fmt: skip
    say(f"total {time.perf_counter() - started:.2f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
