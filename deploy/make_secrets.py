"""One-time generation of the secrets deploy/compose.yaml mounts (compose ``secrets:``).

    python deploy/make_secrets.py            # deploy/secrets/*, keeping files that exist
    python deploy/make_secrets.py --force    # regenerate everything (logs every user out)
    python deploy/make_secrets.py --dir DIR  # elsewhere

Standard library plus ``openssl`` (for the RSA signing key and Kong's self-signed TLS
certificate). What it writes, and who reads it:

| file | read by |
| --- | --- |
| jwt-private.pem | customer (JWT_PRIVATE_KEY_FILE): signs access tokens |
| jwt-public.pem | every service (JWT_PUBLIC_KEYS_FILE), kong-config (one jwt credential per key) |
| password-pepper | customer (PASSWORD_PEPPER_FILE) |
| idempotency-secret | payment (IDEMPOTENCY_SECRET_FILE) |
| minio-root-user, minio-root-password | MinIO, the bucket job, files (AWS_*_FILE) |
| kong-tls.crt, kong-tls.key | Kong's HTTPS listener on 8443 (self-signed for localhost) |
| redis-password-<user> | that service (REDIS_PASSWORD_FILE): its Redis ACL user's password |
| redis-password-admin | operators only (backups): Redis's admin account |
| redis-users.acl | Redis (--aclfile): every user of svc_core.redis_acl (rewritten on change) |
| mongo-password-<user> | that service (MONGO_PASSWORD_FILE) and mongo-init: its MongoDB user |
| mongo-root-password | MongoDB's root user (the mongo image creates it), mongo-init, operators |
| mongo-keyfile | MongoDB (--keyFile): replica-set member authentication, needed with auth |
| files-encryption-keys | files (FILES_ENCRYPTION_KEYS_FILE): master keys of encryption at rest |

Replace kong-tls.crt / kong-tls.key with a real certificate and key under the same names.

The directory is made 0700 (only you read it on the host); the files are 0644 because compose
bind-mounts file secrets with their host permissions, and the containers run as other users
(the services as uid 10001, Kong as kong). Nothing here is committed (deploy/secrets/.gitignore).
"""

from __future__ import annotations

import argparse
import base64
import importlib.util
import json
import secrets
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DEFAULT_DIR = HERE / "secrets"
TOKENS = {
    "password-pepper": 48,
    "idempotency-secret": 48,
    "minio-root-password": 32,
    "mongo-root-password": 32,
}
MONGO_USERS_SCRIPT = HERE / "mongo" / "create-users.js"


def redis_acl_table() -> object:
    """svc_core.redis_acl, the one table of Redis rights (standard library only, so loaded from
    its file without installing svc_core)."""
    path = HERE.parent / "packages" / "svc_core" / "src" / "svc_core" / "redis_acl.py"
    spec = importlib.util.spec_from_file_location("svc_redis_acl", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"secrets: cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def mongo_users(script: Path = MONGO_USERS_SCRIPT) -> list[dict[str, Any]]:
    """The USERS table of deploy/mongo/create-users.js (JSON between its markers): one MongoDB
    user per service that uses MongoDB."""
    text = script.read_text()
    start = text.index("// BEGIN USERS")
    block = text[start : text.index("// END USERS", start)]
    table = block[block.index("[") : block.rindex("]") + 1]
    users: list[dict[str, Any]] = json.loads(table)
    return users


def openssl(*args: str) -> None:
    binary = shutil.which("openssl")
    if binary is None:
        raise SystemExit("secrets: openssl is needed for the RSA key and the TLS certificate")
    subprocess.run([binary, *args], check=True, capture_output=True)  # noqa: S603 (fixed args)


def generate(directory: Path, force: bool = False) -> list[str]:
    """Write every missing secret (all of them with ``force``); return the names written."""
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    written: list[str] = []

    def wanted(*names: str) -> bool:
        return force or not all((directory / n).exists() for n in names)

    if wanted("jwt-private.pem", "jwt-public.pem"):
        private, public = directory / "jwt-private.pem", directory / "jwt-public.pem"
        openssl(
            "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
            "-out", str(private),
        )  # fmt: skip
        openssl("pkey", "-in", str(private), "-pubout", "-out", str(public))
        written += ["jwt-private.pem", "jwt-public.pem"]
    if wanted("kong-tls.crt", "kong-tls.key"):
        openssl(
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "365",
            "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout", str(directory / "kong-tls.key"), "-out", str(directory / "kong-tls.crt"),
        )  # fmt: skip
        written += ["kong-tls.crt", "kong-tls.key"]
    if wanted("minio-root-user"):
        (directory / "minio-root-user").write_text("svc-minio\n")
        written.append("minio-root-user")
    for name, size in TOKENS.items():
        if wanted(name):
            (directory / name).write_text(secrets.token_urlsafe(size) + "\n")
            written.append(name)
    for user in mongo_users():
        name = f"mongo-password-{user['user']}"
        if wanted(name):
            (directory / name).write_text(secrets.token_hex(32) + "\n")
            written.append(name)
    if wanted("files-encryption-keys"):
        # the file service's master key (AES-256) as its settings read it: key id k1, which
        # compose and Kubernetes make the active one (FILES_ENCRYPTION_KEY_ID). Rotation adds
        # a line and changes the active id (docs/operations.md); never --force this file while
        # stored files are wrapped by its keys.
        key = base64.b64encode(secrets.token_bytes(32)).decode()
        (directory / "files-encryption-keys").write_text(f"k1:{key}\n")
        written.append("files-encryption-keys")
    if wanted("mongo-keyfile"):
        # 6 to 1024 characters of the base64 alphabet (mongod's rule): 756 random bytes.
        key = base64.b64encode(secrets.token_bytes(756)).decode()
        (directory / "mongo-keyfile").write_text(key + "\n")
        written.append("mongo-keyfile")
    table: Any = redis_acl_table()
    redis_users = [*table.USERS, "admin"]
    for user in redis_users:
        name = f"redis-password-{user}"
        if wanted(name):
            (directory / name).write_text(secrets.token_hex(32) + "\n")
            written.append(name)
    passwords = {
        user: (directory / f"redis-password-{user}").read_text().strip() for user in table.USERS
    }
    admin = (directory / "redis-password-admin").read_text().strip()
    # Rewritten whenever it differs: a new row in the table reaches Redis at its next start.
    # Kong logs in as the gateway user (kong.yml's rate-limiting redis username/password), so
    # the default (anonymous) user is off.
    acl = table.acl_file(passwords, admin)
    acl_path = directory / "redis-users.acl"
    if not acl_path.exists() or acl_path.read_text() != acl:
        acl_path.write_text(acl)
        written.append("redis-users.acl")
    for path in directory.iterdir():
        if path.name != ".gitignore":
            path.chmod(0o644)
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--force", action="store_true", help="regenerate existing files too")
    args = parser.parse_args(argv)
    written = generate(args.dir, args.force)
    kept = sorted({p.name for p in args.dir.iterdir()} - set(written) - {".gitignore"})
    print(f"{args.dir}: wrote {', '.join(written) or 'nothing'}; kept {', '.join(kept) or 'none'}")


if __name__ == "__main__":
    main()
