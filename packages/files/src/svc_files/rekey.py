"""``python -m svc_files.rekey``: re-wrap every data key under the active master key, so an older
master key can leave ``FILES_ENCRYPTION_KEYS``.

Only the small wrapped keys in MongoDB change (files' ``encryption`` and unfinished uploads');
the stored bytes are not read or rewritten. Safe to run while the service serves and to run
again: each document is updated only if it still holds the record that was re-wrapped. Reads the
same settings as the service (``MONGO_URL``, ``FILES_ENCRYPTION_KEYS``, ``..._KEY_ID``).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Mapping

from pymongo.errors import PyMongoError

from svc_core import SettingsError, mongo
from svc_core.mongo import Database
from svc_files.encryption import Keyring, KeyUnavailable, Tampered
from svc_files.repository import FILES, UPLOADS
from svc_files.settings import FilesSettings

CONTEXTS = {FILES: "file", UPLOADS: "upload"}


async def rewrap_all(db: Database, keyring: Keyring) -> dict[str, int]:
    """Re-wrap the records not under the active key; how many per collection. Raises
    :class:`KeyUnavailable` naming a key some record needs and the keyring lacks."""
    if keyring.active is None:
        raise ValueError("FILES_ENCRYPTION_KEY_ID: set the key to re-wrap under")
    done: dict[str, int] = {}
    for collection, kind in CONTEXTS.items():
        done[collection] = 0
        query = {"encryption": {"$ne": None}, "encryption.key_id": {"$ne": keyring.active}}
        async for doc in db[collection].find(query, {"encryption": 1}):
            record = keyring.rewrap(f"{kind}/{doc['_id']}", doc["encryption"])
            result = await db[collection].update_one(
                {"_id": doc["_id"], "encryption": doc["encryption"]},
                {"$set": {"encryption": record}},
            )
            done[collection] += result.modified_count
    return done


async def _main(environ: Mapping[str, str] | None = None) -> int:
    """The command: 0 done, 1 a record could not be re-wrapped or MongoDB failed, 2 bad
    settings. One line on stderr for each error, never a traceback or a key."""
    try:
        settings = FilesSettings.from_env(environ)
        keyring = settings.keyring()
        if keyring.active is None:
            raise SettingsError("FILES_ENCRYPTION_KEY_ID: set the key to re-wrap under")
        url = settings.resolved_mongo_url()
    except SettingsError as exc:
        print(f"rekey: {exc}", file=sys.stderr)
        return 2
    name = settings.mongo_db or "files"
    client = mongo.open_client(url, **settings.mongo_options(name))  # the service's own user
    try:
        done = await rewrap_all(client[name], keyring)
    except KeyUnavailable as exc:
        print(f"rekey: master key {exc.key_id!r} is needed and not listed", file=sys.stderr)
        return 1
    except Tampered as exc:
        print(f"rekey: {exc}; nothing after it was re-wrapped", file=sys.stderr)
        return 1
    except PyMongoError as exc:
        print(f"rekey: MongoDB failed ({type(exc).__name__})", file=sys.stderr)
        return 1
    finally:
        await mongo.close_client(client, url)
    print(
        f"rekey: re-wrapped {done[FILES]} files and {done[UPLOADS]} uploads under "
        f"{settings.encryption_key_id!r}"
    )
    return 0


def main() -> None:  # pragma: no cover - a command line
    raise SystemExit(asyncio.run(_main()))


if __name__ == "__main__":  # pragma: no cover
    main()
