"""MongoDB through PyMongo's ``AsyncMongoClient`` (Motor's successor), or an in-process stand-in.

``MONGO_URL=memory://`` (the development default and the tests) gives a mongomock-based database
that enforces unique indexes. ``memory://NAME`` shares one such database between every app in
the process that names it, so two instances of a service can run side by side in tests.
Services use only operations that behave the same on both (see the README's dependency notes).
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Sequence
from typing import Any, TypeAlias

from pymongo import AsyncMongoClient, ReadPreference
from pymongo.asynchronous.database import AsyncDatabase

Database: TypeAlias = AsyncDatabase[dict[str, Any]]

_MEMORY: dict[str, Any] = {}

#: ``MONGO_READ_PREFERENCE``'s values (the connection-string spelling) and PyMongo's modes
READ_PREFERENCES: dict[str, Any] = {
    "primary": ReadPreference.PRIMARY,
    "primaryPreferred": ReadPreference.PRIMARY_PREFERRED,
    "secondaryPreferred": ReadPreference.SECONDARY_PREFERRED,
    "secondary": ReadPreference.SECONDARY,
    "nearest": ReadPreference.NEAREST,
}


@dataclasses.dataclass(frozen=True)
class Index:
    """An index a service declares; applied at startup, idempotently."""

    collection: str
    keys: Sequence[tuple[str, int]]
    unique: bool = False
    name: str | None = None
    expire_after_seconds: int | None = None
    partial_filter: dict[str, Any] | None = None

    def options(self) -> dict[str, Any]:
        opts: dict[str, Any] = {"unique": self.unique}
        if self.name:
            opts["name"] = self.name
        if self.expire_after_seconds is not None:
            opts["expireAfterSeconds"] = self.expire_after_seconds
        if self.partial_filter is not None:
            opts["partialFilterExpression"] = self.partial_filter
        return opts


def is_memory(url: str) -> bool:
    return url.startswith("memory://")


def open_client(url: str, *, timeout_ms: int = 2000, **options: Any) -> Any:
    """A client for ``url``; no I/O happens until the first operation. ``options`` go to
    ``AsyncMongoClient`` (``username``, ``password``, ``authSource``: MongoSettings)."""
    if is_memory(url):
        try:
            from mongomock_motor import AsyncMongoMockClient
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise RuntimeError(
                "MONGO_URL=memory:// needs the embedded extra: pip install 'svc-core[embedded]'"
            ) from exc
        name = url.removeprefix("memory://")
        if name:
            if name not in _MEMORY:
                _MEMORY[name] = AsyncMongoMockClient()
            return _MEMORY[name]
        return AsyncMongoMockClient()
    return AsyncMongoClient(
        url,
        serverSelectionTimeoutMS=timeout_ms,
        connectTimeoutMS=timeout_ms,
        tz_aware=True,
        uuidRepresentation="standard",
        **options,
    )


def with_read_preference(db: Database, preference: str) -> Database:
    """``db`` whose reads go where ``preference`` (a :data:`READ_PREFERENCES` name) says, through
    PyMongo's ``with_options``; the in-memory stand-in keeps one store, so the mode is recorded
    (``read_preference``) and reads see every write."""
    mode = READ_PREFERENCES[preference]
    if _is_memory_database(db):
        # its with_options hands back mongomock's synchronous database: wrap that again
        from mongomock_motor import AsyncMongoMockDatabase

        mock: Any = db
        wrapped: Any = AsyncMongoMockDatabase(
            mock.client, mock.delegate.with_options(read_preference=mode)
        )
        return typing.cast(Database, wrapped)  # the stand-in stands for the Database it mimics
    return db.with_options(read_preference=mode)


def _is_memory_database(db: Any) -> bool:
    try:
        from mongomock_motor import AsyncMongoMockDatabase
    except ImportError:  # pragma: no cover - depends on the install
        return False
    return isinstance(db, AsyncMongoMockDatabase)


async def close_client(client: Any, url: str) -> None:
    if is_memory(url):
        return
    await client.close()


async def apply_indexes(db: Database, indexes: Sequence[Index]) -> None:
    for index in indexes:
        await db[index.collection].create_index(list(index.keys), **index.options())


async def ping(db: Database) -> None:
    await db.command("ping")
