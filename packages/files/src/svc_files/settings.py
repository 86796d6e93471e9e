"""The file service's settings: the chassis' for MongoDB and auth, plus storage and limits."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from svc_core import AuditSettings, AuthSettings, MongoSettings, SettingsError, env
from svc_files.encryption import Keyring, MalformedKeys, parse_keys

MIB = 1024 * 1024


class FilesSettings(MongoSettings, AuthSettings, AuditSettings):
    max_size: int = env("FILES_MAX_SIZE", 50 * MIB, help="largest file in bytes (413 past it)")
    storage: str = env("FILES_STORAGE", "local", help="where bytes live: local or s3")
    local_root: Path = env(
        "FILES_LOCAL_ROOT", Path("var/files"), help="root directory of the local backend"
    )
    s3_bucket: str = env("FILES_S3_BUCKET", "", help="bucket of the s3 backend")
    s3_prefix: str = env("FILES_S3_PREFIX", "files/", help="key prefix inside the bucket")
    s3_endpoint_url: str = env(
        "FILES_S3_ENDPOINT_URL", "", help="S3-compatible endpoint (MinIO, Ceph); empty: AWS"
    )
    s3_region: str = env("FILES_S3_REGION", "us-east-1")
    s3_access_key_id: str = env("FILES_S3_ACCESS_KEY_ID", "", help="empty: the AWS default chain")
    s3_secret_access_key: str = env("FILES_S3_SECRET_ACCESS_KEY", "", secret=True)
    s3_part_size: int = env(
        "FILES_S3_PART_SIZE", 8 * MIB, help="multipart part size in bytes (at least 5 MiB)"
    )
    expiry_interval: float = env(
        "FILES_UPLOAD_EXPIRY_INTERVAL",
        300.0,
        help="seconds between sweeps of unfinished resumable uploads past their expiry and of "
        "what a crash left (older than FILES_SWEEP_GRACE)",
    )
    encryption_keys: str = env(
        "FILES_ENCRYPTION_KEYS",
        "",
        masked=True,
        help="master keys for encryption at rest: key-id:base64 (32 bytes) entries, "
        "comma-separated; every key that still wraps a stored file's data key",
    )
    encryption_keys_file: Path | None = env(
        "FILES_ENCRYPTION_KEYS_FILE",
        None,
        help="a file of key-id:base64 lines (a mounted secret), added to FILES_ENCRYPTION_KEYS",
    )
    encryption_key_id: str = env(
        "FILES_ENCRYPTION_KEY_ID",
        "",
        help="the master key new files are encrypted with; empty: new files stored unencrypted",
    )
    sweep_grace: float = env(
        "FILES_SWEEP_GRACE",
        24 * 3600.0,
        help="seconds after its last write an unfinished upload is taken as left by a crash",
    )

    def keyring(self) -> Keyring:
        """The master keys (read from the file too) and the active one; raises
        :class:`SettingsError` naming the variable, never showing key material."""
        text = self.encryption_keys
        where = "FILES_ENCRYPTION_KEYS"
        try:
            keys = parse_keys(text)
            if self.encryption_keys_file is not None:
                where = "FILES_ENCRYPTION_KEYS_FILE"
                try:
                    text = self.encryption_keys_file.read_text()
                except OSError as exc:
                    raise MalformedKeys(
                        f"cannot read {self.encryption_keys_file}: {exc.strerror}"
                    ) from None
                more = parse_keys(text)
                if twice := sorted(set(keys) & set(more)):
                    raise MalformedKeys(f"key {twice[0]!r} also in FILES_ENCRYPTION_KEYS")
                keys |= more
        except MalformedKeys as exc:
            raise SettingsError(f"{where}: {exc}") from None
        active = self.encryption_key_id or None
        if active is not None and active not in keys:
            raise SettingsError(
                f"FILES_ENCRYPTION_KEY_ID: {active!r} is not a key id of FILES_ENCRYPTION_KEYS"
                + (f" (listed: {', '.join(sorted(keys))})" if keys else " (none listed)")
            )
        return Keyring(keys, active)

    def check(self) -> None:
        self.keyring()
        if self.storage not in ("local", "s3"):
            raise SettingsError("FILES_STORAGE: expected local or s3")
        if self.max_size < 1:
            raise SettingsError("FILES_MAX_SIZE: expected a positive number of bytes")
        if self.storage == "s3" and not self.s3_bucket:
            raise SettingsError("FILES_S3_BUCKET: required with FILES_STORAGE=s3")
        # An empty S3 secret means "the default credential chain" (IAM roles), which the
        # chassis' placeholder check would refuse outside development.
        # Checked with a stand-in for the unset value (a marker, not a credential).
        unset = not self.s3_secret_access_key
        stand_in = dataclasses.replace(self, s3_secret_access_key="default-chain")  # noqa: S106
        super(FilesSettings, stand_in if unset else self).check()
