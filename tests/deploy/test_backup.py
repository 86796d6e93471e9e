"""``nox -s backup`` (deploy/backup.py) for real where the tools exist: a redis-server of the
test's own as the source, keys in two databases with TTLs, a local file store; the backup is
restored into another redis-server's database and a fresh directory and compared. MongoDB is
skipped here (no mongodump), and says so."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from svc_core.embedded import free_port
from tests.deploy.conftest import load_script

pytestmark = pytest.mark.skipif(
    shutil.which("redis-server") is None or shutil.which("redis-cli") is None,
    reason="needs redis-server and redis-cli",
)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[object]:
    """``start()`` → the port of a fresh redis-server (no persistence), stopped afterwards."""
    processes: list[subprocess.Popen[bytes]] = []

    def start() -> int:
        port = free_port()
        directory = tmp_path / f"redis-{port}"
        directory.mkdir()
        process = subprocess.Popen(
            [
                "redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", str(directory),
                # redis-cli --rdb is a replica's sync: no 5 s wait for other replicas here
                "--repl-diskless-sync-delay", "0",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        processes.append(process)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                return port
            except OSError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)

    yield start
    for process in processes:
        process.terminate()
        process.wait(10)


def seed_files(root: Path) -> dict[str, bytes]:
    contents = {"ab/cd/file-1": b"first file", "ef/file-2": bytes(range(256)) * 1000}
    for relative, data in contents.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_bytes(data)
    return contents


def test_backup_then_restore_into_another_redis_and_directory(
    server: object,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    backup = load_script("deploy/backup.py")
    source_port = server()  # type: ignore[operator]
    source = redis.Redis(port=source_port)
    source.set("customer:session:s1", "alice", ex=3600)
    source.hset("customer:profile:c1", mapping={"name": "Alice"})
    source.xadd("events:orders", {"type": "order.created", "id": "o1"})
    source.zadd("auth:revoked", {"s0": 1.0})
    source.select(3)
    source.set("cache:other-db", "x")
    source.close()
    files_root = tmp_path / "store"
    contents = seed_files(files_root)
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{source_port}/0")
    monkeypatch.setenv("FILES_LOCAL_ROOT", str(files_root))
    monkeypatch.setenv("FILES_STORAGE", "local")
    monkeypatch.delenv("MONGO_URL", raising=False)

    assert backup.main(["backup", "--out", str(tmp_path / "backups")]) == 0
    (directory,) = (tmp_path / "backups").iterdir()
    manifest = json.loads((directory / "manifest.json").read_text())
    parts = manifest["parts"]
    assert parts["redis"]["status"] == "done"
    assert parts["redis"]["keys_before"] == {"0": 4, "3": 1}
    assert parts["files"]["status"] == "done"
    assert parts["files"]["files"] == 2
    assert parts["mongodb"]["status"] == "skipped"
    assert "mongodump" in parts["mongodb"]["reason"] or "MONGO_URL" in parts["mongodb"]["reason"]
    out = capsys.readouterr().out
    assert "SKIPPED: mongodb (" in out

    target_port = server()  # type: ignore[operator]
    restored_root = tmp_path / "restored"
    backup.main([
        "restore", str(directory), "--redis-url", f"redis://127.0.0.1:{target_port}/5",
        "--redis-source-db", "0", "--files-root", str(restored_root),
    ])  # fmt: skip
    target = redis.Redis(port=target_port, db=5)
    try:
        assert target.get("customer:session:s1") == b"alice"
        assert 3500 < target.ttl("customer:session:s1") <= 3600  # the TTL came along
        assert target.hgetall("customer:profile:c1") == {b"name": b"Alice"}
        assert target.xrange("events:orders")[0][1] == {b"type": b"order.created", b"id": b"o1"}
        assert target.zscore("auth:revoked", "s0") == 1.0
        assert target.dbsize() == 4  # db 3's key stayed in db 3 of the snapshot
        # a second restore into the now non-empty database is refused, nothing is flushed
        with pytest.raises(RuntimeError, match="not empty"):
            backup.main([
                "restore", str(directory), "--redis-url", f"redis://127.0.0.1:{target_port}/5",
                "--files-root", str(tmp_path / "again"),
            ])  # fmt: skip
        assert target.dbsize() == 4
    finally:
        target.close()
    for relative, data in contents.items():
        assert (restored_root / relative).read_bytes() == data


def test_a_damaged_backup_fails_verification(
    server: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backup = load_script("deploy/backup.py")
    port = server()  # type: ignore[operator]
    files_root = tmp_path / "store"
    seed_files(files_root)
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{port}/0")
    monkeypatch.setenv("FILES_LOCAL_ROOT", str(files_root))
    monkeypatch.setenv("FILES_STORAGE", "local")
    directory = backup.backup(tmp_path / "backups", backup.os.environ)
    assert backup.main(["verify", str(directory)]) == 0
    (directory / "files" / "ef" / "file-2").write_bytes(b"tampered")
    with pytest.raises(RuntimeError, match="checksum mismatch"):
        backup.main(["verify", str(directory)])


def write_listing(directory: Path, files: dict[str, bytes]) -> None:
    """A backup directory holding ``files`` and their listing, as files_backup writes them."""
    checksums = {}
    for relative, data in files.items():
        path = directory / "files" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        checksums[relative] = hashlib.sha256(data).hexdigest()
    (directory / "files.sha256.json").write_text(json.dumps(checksums))


@pytest.mark.parametrize("relative", ["../escaped", "a/../../escaped", "/tmp/escaped-abs"])
def test_a_restore_writes_nothing_outside_its_root(tmp_path: Path, relative: str) -> None:
    backup = load_script("deploy/backup.py")
    source = tmp_path / "backup"
    write_listing(source, {"ok/file": b"fine"})
    listing = json.loads((source / "files.sha256.json").read_text())
    listing[relative] = hashlib.sha256(b"evil").hexdigest()  # a listing someone edited
    if not relative.startswith("/"):
        evil = source / "files" / relative
        evil.parent.mkdir(parents=True, exist_ok=True)
        evil.write_bytes(b"evil")
    (source / "files.sha256.json").write_text(json.dumps(listing))
    root = tmp_path / "root" / "store"
    with pytest.raises(RuntimeError, match="not a path inside"):
        backup.files_restore(source, root)
    assert not (tmp_path / "root" / "escaped").exists()
    assert not Path("/tmp/escaped-abs").exists()
    assert not root.exists()  # refused before anything was copied


def test_a_restore_overwrites_other_files_only_when_told(tmp_path: Path) -> None:
    backup = load_script("deploy/backup.py")
    source = tmp_path / "backup"
    write_listing(source, {"ab/file-1": b"from the backup", "ab/file-2": b"same"})
    root = tmp_path / "store"
    (root / "ab").mkdir(parents=True)
    (root / "ab" / "file-1").write_bytes(b"newer bytes")
    (root / "ab" / "file-2").write_bytes(b"same")
    with pytest.raises(RuntimeError, match="--replace"):
        backup.files_restore(source, root)
    assert (root / "ab" / "file-1").read_bytes() == b"newer bytes"
    backup.files_restore(source, root, replace=True)
    assert (root / "ab" / "file-1").read_bytes() == b"from the backup"


def test_a_failing_mongo_tool_never_shows_the_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    backup = load_script("deploy/backup.py")
    password = "s3cr3t-M0ngo-pw"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    seen = tmp_path / "seen"
    tool = bin_dir / "mongodump"
    tool.write_text(
        "#!/bin/sh\n"
        f'echo "$@" > {seen}.argv\n'
        'for a in "$@"; do case "$a" in --config=*) cat "${a#--config=}" > '
        f"{seen}.config;; esac; done\n"
        "exit 3\n"
    )
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    url = f"mongodb://backup:{password}@db.internal:27017/?authSource=admin"
    with pytest.raises(RuntimeError) as failure:
        backup.mongo_backup({"MONGO_URL": url}, tmp_path)
    assert str(failure.value) == "mongodump failed (exit status 3)"
    assert password not in Path(f"{seen}.argv").read_text()  # never in argv (ps shows it)
    assert password in Path(f"{seen}.config").read_text()  # the tool still gets it
    assert password not in capsys.readouterr().out
