"""The only module that knows the ``files`` collection, the upload journal, and their indexes.

``intake`` journals every upload in progress (its id and when it started) before the first byte
is stored, and forgets it once the file's metadata is written or the upload discarded: after a
crash, the journal names exactly the uploads whose bytes may be orphans (see ``domain.sweep``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pymongo import ReturnDocument

from svc_core import Index, find_page
from svc_core.mongo import Database

FILES = "files"
JOURNAL = "upload_journal"

INDEXES = [
    # GET /files: the caller's files, newest first (find_page's keyset)
    Index(FILES, [("owner", 1), ("created_at", -1), ("_id", -1)]),
    Index(JOURNAL, [("started_at", 1)]),
]

File = dict[str, Any]


class FileRepository:
    def __init__(self, db: Database, *, reads: Database | None = None) -> None:
        self.files = db[FILES]
        # the list may come from a secondary (MONGO_READ_PREFERENCE); by-id reads stay on the
        # primary, so a file just uploaded is always found
        self.listed = (reads if reads is not None else db)[FILES]
        self.journal = db[JOURNAL]

    async def insert(self, file: File) -> None:
        await self.files.insert_one(file)

    async def get(self, file_id: str, *, owner: str) -> File | None:
        """The file if it exists and is the owner's: someone else's is simply not found."""
        return await self.files.find_one({"_id": file_id, "owner": owner})

    async def exists(self, file_id: str) -> bool:
        return await self.files.find_one({"_id": file_id}, {"_id": 1}) is not None

    async def page(self, *, owner: str, limit: int, cursor: str | None) -> dict[str, Any]:
        return await find_page(self.listed, {"owner": owner}, limit=limit, cursor=cursor)

    async def delete(self, file_id: str, *, owner: str) -> bool:
        result = await self.files.delete_one({"_id": file_id, "owner": owner})
        return bool(result.deleted_count)

    # --- the upload journal ---------------------------------------------------------------

    async def journal_begin(self, file_id: str, *, now: dt.datetime) -> None:
        await self.journal.insert_one({"_id": file_id, "started_at": now})

    async def journal_end(self, file_id: str) -> None:
        await self.journal.delete_one({"_id": file_id})

    async def journal_before(self, cutoff: dt.datetime) -> list[str]:
        docs = await self.journal.find({"started_at": {"$lte": cutoff}}, {"_id": 1}).to_list(None)
        return [doc["_id"] for doc in docs]


UPLOADS = "uploads"
INDEXES.append(Index(UPLOADS, [("expires_at", 1)]))

Upload = dict[str, Any]


class UploadRepository:
    """Resumable uploads' state: offset, length, owner, expiry, display name, the early type
    check's state, and a lease (``lock``) held by the one request writing to it."""

    def __init__(self, db: Database) -> None:
        self.uploads = db[UPLOADS]

    async def insert(self, upload: Upload) -> None:
        await self.uploads.insert_one(upload)

    async def get(self, upload_id: str, *, owner: str) -> Upload | None:
        return await self.uploads.find_one({"_id": upload_id, "owner": owner})

    async def acquire(
        self, upload_id: str, *, owner: str, offset: int, token: str, now: dt.datetime, lease: float
    ) -> Upload | None:
        """Take the lease if the upload is unfinished, at ``offset``, unexpired and not being
        written by another request (or that request's lease ran out): one conditional update,
        so of two racing writers exactly one wins."""
        return await self.uploads.find_one_and_update(
            {
                "_id": upload_id,
                "owner": owner,
                "complete": False,
                "offset": offset,
                "expires_at": {"$gt": now},
                "$or": [{"lock": None}, {"lock.until": {"$lte": now}}],
            },
            {"$set": {"lock": {"token": token, "until": now + dt.timedelta(seconds=lease)}}},
            return_document=ReturnDocument.AFTER,
        )

    async def renew(self, upload_id: str, *, token: str, until: dt.datetime) -> bool:
        """Extend the lease; False when it is no longer this writer's."""
        result = await self.uploads.update_one(
            {"_id": upload_id, "lock.token": token}, {"$set": {"lock.until": until}}
        )
        return bool(result.matched_count)

    async def release(self, upload_id: str, *, token: str, fields: dict[str, Any]) -> bool:
        result = await self.uploads.update_one(
            {"_id": upload_id, "lock.token": token}, {"$set": {**fields, "lock": None}}
        )
        return bool(result.modified_count)

    async def delete(self, upload_id: str) -> None:
        await self.uploads.delete_one({"_id": upload_id})

    async def claim_finish(self, upload_id: str, *, token: str) -> bool:
        """Mark the upload as being made a file by the lease holder: from here a termination
        is refused (the upload is complete) until the lease ends. False: the lease is lost
        (terminated, or taken over after a stall)."""
        result = await self.uploads.update_one(
            {"_id": upload_id, "lock.token": token}, {"$set": {"finishing": True}}
        )
        return bool(result.matched_count)

    async def delete_unfinished(self, upload_id: str, *, owner: str, now: dt.datetime) -> bool:
        """Delete the upload unless it is finished or its last byte's writer is making it a file
        (its lease still live: a crashed finisher does not block a termination for ever)."""
        result = await self.uploads.delete_one(
            {
                "_id": upload_id,
                "owner": owner,
                "complete": False,
                "$or": [
                    {"finishing": {"$ne": True}},
                    {"lock": None},
                    {"lock.until": {"$lte": now}},
                ],
            }
        )
        return bool(result.deleted_count)

    async def expired(self, now: dt.datetime) -> list[str]:
        docs = await self.uploads.find(
            {
                "complete": False,
                "expires_at": {"$lte": now},
                "$or": [{"lock": None}, {"lock.until": {"$lte": now}}],
            },
            {"_id": 1},
        ).to_list(None)
        return [doc["_id"] for doc in docs]
