"""The only module that knows the ``customers`` collection and its indexes.

Uniqueness is the indexes' job, not a check-then-insert: ``username_key`` (the username
lower-cased) and ``email`` (stored lower-cased) are unique, so of two simultaneous
registrations of one name exactly one is stored.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo.errors import DuplicateKeyError

from svc_core import Index
from svc_core.mongo import Database

COLLECTION = "customers"

INDEXES = [
    Index(COLLECTION, [("username_key", 1)], unique=True, name="username_key_unique"),
    Index(COLLECTION, [("email", 1)], unique=True, name="email_unique"),
]

Customer = dict[str, Any]


class DuplicateField(Exception):
    """A unique index refused the write; ``field`` is ``username`` or ``email``."""

    def __init__(self, field: str) -> None:
        super().__init__(field)
        self.field = field


def username_key(username: str) -> str:
    return username.lower()


def normalise_email(email: str) -> str:
    return email.lower()


def _duplicate_field(exc: DuplicateKeyError) -> str | None:
    pattern = (exc.details or {}).get("keyPattern") or {}
    if "username_key" in pattern:
        return "username"
    if "email" in pattern:
        return "email"
    return None


class CustomerRepository:
    def __init__(self, db: Database) -> None:
        self.customers = db[COLLECTION]

    async def insert(
        self, *, customer_id: str, username: str, email: str, password_hash: str, now: datetime
    ) -> Customer:
        doc: Customer = {
            "_id": customer_id,
            "username": username,
            "username_key": username_key(username),
            "email": email,
            "password_hash": password_hash,
            "created_at": now,
            "updated_at": now,
        }
        try:
            await self.customers.insert_one(doc)
        except DuplicateKeyError as exc:
            field = _duplicate_field(exc) or await self._which_is_taken(username, email)
            raise DuplicateField(field) from None
        return doc

    async def _which_is_taken(self, username: str, email: str) -> str:
        if await self.customers.find_one({"username_key": username_key(username)}, {"_id": 1}):
            return "username"
        return "email"

    async def get(self, customer_id: str) -> Customer | None:
        return await self.customers.find_one({"_id": customer_id})

    async def find_by_identifier(self, identifier: str) -> Customer | None:
        """By email when the identifier has an ``@`` (usernames cannot), else by username."""
        if "@" in identifier:
            return await self.customers.find_one({"email": normalise_email(identifier)})
        return await self.customers.find_one({"username_key": username_key(identifier)})

    async def set_email(self, customer_id: str, email: str, *, now: datetime) -> Customer | None:
        try:
            await self.customers.update_one(
                {"_id": customer_id}, {"$set": {"email": email, "updated_at": now}}
            )
        except DuplicateKeyError:
            raise DuplicateField("email") from None
        return await self.get(customer_id)

    async def set_password_hash(
        self, customer_id: str, password_hash: str, *, now: datetime
    ) -> None:
        await self.customers.update_one(
            {"_id": customer_id}, {"$set": {"password_hash": password_hash, "updated_at": now}}
        )
