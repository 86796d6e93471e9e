"""The chat service's audit log (svc_core.audit): one record per room created, through real
HTTP; a store outage changes nothing for the customer."""

from __future__ import annotations

import logging
from typing import Any

from pymongo.errors import AutoReconnect

from svc_core import audit, keys


async def records(server: Any, **where: Any) -> list[dict[str, Any]]:
    collection = server.app[keys.MONGO_DB][audit.COLLECTION]
    return await collection.find(where).sort("_id", 1).to_list(None)


async def test_creating_a_room_is_one_record(chat: Any, rest: Any, auth_header: Any) -> None:
    headers = {**auth_header(sub="cust-alice"), "X-Request-ID": "room-request-1"}
    status, room = await rest(chat, "POST", "/chat/rooms", json={"name": "Tea"}, headers=headers)
    assert status == 201
    status, _ = await rest(chat, "POST", "/chat/rooms", json={"name": ""})  # 422: no room
    assert status == 422
    status, _ = await rest(chat, "GET", "/chat/rooms")
    assert status == 200
    (record,) = await records(chat)
    assert record["service"] == "chat"
    assert (record["action"], record["outcome"]) == ("chat.room_create", "success")
    assert record["actor"] == {"type": "customer", "id": "cust-alice", "ip": "127.0.0.1"}
    assert record["target"] == {"type": "room", "id": room["id"]}
    assert record["detail"] == {"name": "Tea"}
    assert record["request_id"] == "room-request-1"
    assert record["trace_id"] is None
    token = headers["Authorization"].removeprefix("Bearer ")
    assert token not in str(record)


async def test_an_audit_store_outage_leaves_room_creation_working(
    chat: Any, rest: Any, http: Any, caplog: Any
) -> None:
    class Down:
        async def insert_one(self, doc: dict[str, Any]) -> None:
            raise AutoReconnect("audit store down")

    chat.app[keys.AUDIT].collection = Down()
    caplog.set_level(logging.ERROR, logger="svc_core.audit")
    status, room = await rest(chat, "POST", "/chat/rooms", json={"name": "Still"})
    assert status == 201
    status, rooms = await rest(chat, "GET", "/chat/rooms")
    assert [r["id"] for r in rooms["items"]] == [room["id"]]
    async with http.get(chat.make_url("/metrics")) as resp:
        metrics = await resp.text()
    assert (
        'svc_audit_failures_total{action="chat.room_create",reason="error",service="chat"} 1.0'
        in metrics
    )
    assert [r.audit_action for r in caplog.records] == ["chat.room_create"]
