"""The file service's parts, built once at startup (the storage backend, swept of what a crash
left, and the repositories), and the periodic expiry of unfinished resumable uploads."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from svc_core import Parts, add_readiness_check, keys, utcnow
from svc_files import domain, uploads
from svc_files.repository import FileRepository, UploadRepository
from svc_files.settings import FilesSettings
from svc_files.storage import open_storage
from svc_files.vault import Vault

log = logging.getLogger("svc_files")


async def build(app: web.Application, settings: FilesSettings) -> AsyncIterator[domain.Parts]:
    storage = open_storage(settings)
    await storage.start()
    db = app[keys.MONGO_DB]
    parts = domain.Parts(
        settings,
        storage,
        FileRepository(db, reads=app[keys.MONGO_READS]),
        UploadRepository(db),
        Vault(storage, settings.keyring()),
    )
    if not parts.vault.keyring.encrypts and not settings.is_development:
        log.warning("files are stored unencrypted: FILES_ENCRYPTION_KEY_ID is not set")
    add_readiness_check(app, "storage", storage.ping)
    await domain.sweep(parts, grace=settings.sweep_grace, now=utcnow())
    yield parts
    await storage.close()


PARTS = Parts(build)


async def expire_uploads(app: web.Application) -> AsyncIterator[None]:
    """Background work: remove unfinished uploads past their expiry, every few minutes."""
    parts = PARTS.of(app)
    expiry = asyncio.create_task(uploads.expire_periodically(parts, parts.settings.expiry_interval))
    yield
    expiry.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await expiry
