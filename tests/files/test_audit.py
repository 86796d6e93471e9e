"""The file service's audit log (svc_core.audit): one record per upload (multipart, or the tus
request that completes an upload) and per delete, through real HTTP; a store outage changes
nothing for the customer."""

from __future__ import annotations

import json
import logging
from typing import Any

from pymongo.errors import AutoReconnect

from svc_core import audit, keys
from svc_core.testing import assert_problem
from tests.files.helpers import ELF, form, upload
from tests.files.test_tus import CHUNK, b64, create

OWNER = {"type": "customer", "id": "cust-alice", "ip": "127.0.0.1"}


async def records(client: Any, **where: Any) -> list[dict[str, Any]]:
    collection = client.app[keys.MONGO_DB][audit.COLLECTION]
    return await collection.find(where).sort("_id", 1).to_list(None)


async def test_a_multipart_upload_is_one_record(client, alice):
    resp = await client.post("/files", data=form(b'{"ok": true}', filename="a.json"), headers=alice)
    assert resp.status == 201
    file = await resp.json()
    (record,) = await records(client)
    assert record["service"] == "files"
    assert (record["action"], record["outcome"]) == ("file.upload", "success")
    assert record["actor"] == OWNER
    assert record["target"] == {"type": "file", "id": file["id"]}
    assert record["detail"] == {
        "method": "multipart",
        "size": 12,
        "content_type": "application/json",
    }
    assert record["request_id"] == resp.headers["X-Request-ID"]
    assert record["trace_id"] is None


async def test_a_refused_upload_is_one_failure_record(client, alice):
    resp = await client.post(
        "/files", data=form(ELF, filename="photo.png", content_type="image/png"), headers=alice
    )
    await assert_problem(resp, 415, "unsupported_media_type")
    (record,) = await records(client)
    assert (record["action"], record["outcome"]) == ("file.upload", "failure")
    assert record["detail"] == {"method": "multipart", "reason": "unsupported_media_type"}
    assert record["target"] is None


async def test_a_tus_upload_is_one_record_when_its_last_byte_arrives(client, alice):
    location = await create(client, alice, 11, **{"Upload-Metadata": f"filename {b64('h.txt')}"})
    upload_id = location.rsplit("/", 1)[-1]
    first = await client.patch(
        location, data=b"hello ", headers={**alice, **CHUNK, "Upload-Offset": "0"}
    )
    assert first.status == 204
    assert await records(client) == []  # created and half written: no file yet
    last = await client.patch(
        location, data=b"world", headers={**alice, **CHUNK, "Upload-Offset": "6"}
    )
    assert last.status == 204
    again = await client.patch(
        location, data=b"!", headers={**alice, **CHUNK, "Upload-Offset": "11"}
    )
    assert again.status == 409
    (record,) = await records(client)
    assert (record["action"], record["outcome"]) == ("file.upload", "success")
    assert record["actor"] == OWNER
    assert record["target"] == {"type": "file", "id": upload_id}
    assert record["detail"] == {"method": "tus", "size": 11, "content_type": "text/plain"}
    assert record["request_id"] == last.headers["X-Request-ID"]


async def test_a_tus_upload_completed_by_its_creation_request_is_one_record(client, alice):
    resp = await client.post(
        "/files/uploads", data=b'{"a": 1}', headers={**alice, **CHUNK, "Upload-Length": "8"}
    )
    assert resp.status == 201
    (record,) = await records(client)
    assert record["target"] == {"type": "file", "id": resp.headers["Location"].rsplit("/", 1)[-1]}
    assert record["detail"]["method"] == "tus"
    assert record["request_id"] == resp.headers["X-Request-ID"]


async def test_a_delete_is_one_record_and_a_missing_file_none(client, alice, bob):
    file = await upload(client, alice, b"bye")
    resp = await client.delete(f"/files/{file['id']}", headers=alice)
    assert resp.status == 204
    assert (await client.delete(f"/files/{file['id']}", headers=alice)).status == 404
    assert (await client.delete(f"/files/{file['id']}", headers=bob)).status == 404
    (record,) = await records(client, action="file.delete")
    assert record["outcome"] == "success"
    assert record["actor"] == OWNER
    assert record["target"] == {"type": "file", "id": file["id"]}
    assert record["detail"] == {"size": 3, "content_type": "text/plain"}
    assert record["request_id"] == resp.headers["X-Request-ID"]


async def test_no_token_reaches_the_audit_log(client, alice):
    file = await upload(client, alice, b"secret-ish contents")
    await client.delete(f"/files/{file['id']}", headers=alice)
    token = alice["Authorization"].removeprefix("Bearer ")
    text = json.dumps(await records(client), default=str)
    assert token not in text
    assert token.split(".")[2][:20] not in text  # not even the signature's start


async def test_an_audit_store_outage_leaves_uploads_and_deletes_working(client, alice, caplog):
    class Down:
        async def insert_one(self, doc: dict[str, Any]) -> None:
            raise AutoReconnect("audit store down")

    client.app[keys.AUDIT].collection = Down()
    caplog.set_level(logging.ERROR, logger="svc_core.audit")
    file = await upload(client, alice, b"still works")
    assert (await client.delete(f"/files/{file['id']}", headers=alice)).status == 204
    metrics = await (await client.get("/metrics")).text()
    for action in ("file.upload", "file.delete"):
        assert (
            f'svc_audit_failures_total{{action="{action}",reason="error",service="files"}} 1.0'
            in metrics
        )
    assert [r.audit_action for r in caplog.records] == ["file.upload", "file.delete"]
