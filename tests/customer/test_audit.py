"""The customer service's audit log (svc_core.audit): one record per security event, through
real HTTP, and never a password or token in it (docs/security.md, "Audit log")."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from typing import Any

import jwt
import pytest
from pymongo.errors import AutoReconnect

from svc_core import audit, keys
from svc_core import cli as svc_cli
from tests.customer.conftest import PASSWORD, bearer, problem, register

NEW_PASSWORD = "a different battery staple"


async def records(client: Any, **where: Any) -> list[dict[str, Any]]:
    collection = client.app[keys.MONGO_DB][audit.COLLECTION]
    return await collection.find(where).sort("_id", 1).to_list(None)


def sid_of(pair: dict[str, Any]) -> str:
    claims = jwt.decode(pair["access_token"], options={"verify_signature": False})
    return str(claims["sid"])


def assert_common(record: dict[str, Any], resp: Any) -> None:
    assert record["service"] == "customer"
    assert record["request_id"] == resp.headers["X-Request-ID"]
    assert record["trace_id"] is None
    assert record["actor"]["ip"] == "127.0.0.1"


async def test_registration_is_one_record_and_a_taken_name_another(client):
    resp = await client.post(
        "/auth/register",
        json={"username": "audit_ann", "email": "ann@example.com", "password": PASSWORD},
    )
    assert resp.status == 201
    customer_id = (await resp.json())["id"]
    (record,) = await records(client)
    assert_common(record, resp)
    assert (record["action"], record["outcome"]) == ("auth.register", "success")
    assert record["actor"] == {"type": "anonymous", "id": None, "ip": "127.0.0.1"}
    assert record["target"] == {"type": "customer", "id": customer_id}

    again = await client.post(
        "/auth/register",
        json={"username": "audit_ann", "email": "other@example.com", "password": PASSWORD},
    )
    await problem(again, 409, "username_taken")
    _, taken = await records(client)
    assert (taken["action"], taken["outcome"]) == ("auth.register", "failure")
    assert taken["detail"] == {"reason": "username_taken"}
    assert taken["target"] is None


async def test_login_success_and_failures_are_one_record_each(client):
    account = await register(client)
    resp = await client.post(
        "/auth/login", json={"username": account.username, "password": PASSWORD}
    )
    assert resp.status == 200
    wrong = await client.post(
        "/auth/login", json={"username": account.email, "password": "wrong password"}
    )
    await problem(wrong, 401, "invalid_credentials")
    # a password typed into the username field is never recorded
    unknown = await client.post("/auth/login", json={"username": PASSWORD, "password": "x"})
    await problem(unknown, 401, "invalid_credentials")

    ok, failed, nobody = await records(client, action="auth.login")
    assert_common(ok, resp)
    assert ok["outcome"] == "success"
    assert ok["actor"] == {"type": "customer", "id": account.id, "ip": "127.0.0.1"}
    assert ok["target"] == {"type": "customer", "id": account.id}
    assert_common(failed, wrong)
    assert failed["outcome"] == "failure"
    assert failed["actor"] == {"type": "anonymous", "id": None, "ip": "127.0.0.1"}
    assert failed["target"] == {"type": "customer", "id": account.id}
    assert failed["detail"] == {"reason": "invalid_credentials"}
    assert nobody["target"] == {"type": "customer", "id": None}
    assert PASSWORD not in json.dumps(nobody, default=str)


async def test_a_login_lockout_is_recorded_as_throttled(start):
    client = await start(login_throttle_limit=2)
    account = await register(client)
    for _ in range(2):
        resp = await client.post(
            "/auth/login", json={"username": account.username, "password": "nope"}
        )
        assert resp.status == 401
    locked = await client.post(
        "/auth/login", json={"username": account.username, "password": PASSWORD}
    )
    await problem(locked, 429, "login_throttled")
    everything = await records(client)
    assert [(r["action"], r["outcome"]) for r in everything] == [
        ("auth.register", "success"),
        ("auth.login", "failure"),
        ("auth.login", "failure"),
        ("auth.throttled", "denied"),
    ]
    throttled = everything[-1]
    assert_common(throttled, locked)
    assert throttled["target"] == {"type": "customer", "id": account.id}
    assert throttled["detail"]["kind"] == "login"
    assert throttled["detail"]["reason"] == "login_throttled"
    assert throttled["detail"]["retry_after"] == int(locked.headers["Retry-After"])


async def test_refresh_token_reuse_is_recorded_once_and_a_plain_refresh_not_at_all(client):
    account = await register(client)
    pair = await account.login()
    resp = await client.post("/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert resp.status == 200
    reused = await client.post("/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    await problem(reused, 401, "refresh_token_reused")
    again = await client.post("/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    await problem(again, 401, "session_revoked")  # the session is gone: no second reuse
    (record,) = await records(client, action="auth.refresh_reused")
    assert_common(record, reused)
    assert record["outcome"] == "denied"
    assert record["actor"]["type"] == "anonymous"
    assert record["target"] == {"type": "customer", "id": account.id}
    assert record["detail"] == {"session": sid_of(pair), "reason": "refresh_token_reused"}
    assert [r["action"] for r in await records(client)] == [
        "auth.register",
        "auth.login",
        "auth.refresh_reused",
    ]


async def test_logout_is_one_record_about_the_session(client):
    account = await register(client)
    pair = await account.login()
    resp = await client.post("/auth/logout", headers=bearer(pair))
    assert resp.status == 204
    (record,) = await records(client, action="auth.logout")
    assert_common(record, resp)
    assert record["outcome"] == "success"
    assert record["actor"] == {"type": "customer", "id": account.id, "ip": "127.0.0.1"}
    assert record["target"] == {"type": "session", "id": sid_of(pair)}


async def test_password_changes_right_wrong_and_throttled_are_one_record_each(start):
    client = await start(login_throttle_limit=2)
    account = await register(client)
    pair = await account.login()
    other = await account.login()  # a second session, revoked by the change
    headers = bearer(pair)
    path = "/customers/me/password"
    resp = await client.post(
        path, json={"current_password": PASSWORD, "new_password": NEW_PASSWORD}, headers=headers
    )
    assert resp.status == 204
    wrong = await client.post(
        path, json={"current_password": "not it", "new_password": PASSWORD}, headers=headers
    )
    await problem(wrong, 403, "invalid_current_password")
    await client.post(
        path, json={"current_password": "not it", "new_password": PASSWORD}, headers=headers
    )
    throttled = await client.post(
        path, json={"current_password": NEW_PASSWORD, "new_password": PASSWORD}, headers=headers
    )
    await problem(throttled, 429, "password_change_throttled")

    changed, failed, _, refused = await records(
        client, action={"$in": ["auth.password_change", "auth.throttled"]}
    )
    assert_common(changed, resp)
    assert (changed["action"], changed["outcome"]) == ("auth.password_change", "success")
    assert changed["actor"] == {"type": "customer", "id": account.id, "ip": "127.0.0.1"}
    assert changed["target"] == {"type": "customer", "id": account.id}
    assert changed["detail"] == {"sessions_revoked": 1}
    assert sid_of(other) != sid_of(pair)
    assert (failed["outcome"], failed["detail"]) == (
        "failure",
        {"reason": "invalid_current_password"},
    )
    assert_common(refused, throttled)
    assert (refused["action"], refused["outcome"]) == ("auth.throttled", "denied")
    assert refused["detail"]["kind"] == "password_change"


async def test_no_password_or_token_reaches_the_audit_log(client):
    account = await register(client, username=f"u_{uuid.uuid4().hex[:8]}")
    pair = await account.login()
    refreshed = await (
        await client.post("/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    ).json()
    await client.post("/auth/refresh", json={"refresh_token": pair["refresh_token"]})  # reuse
    second = await account.login()
    await client.post(
        "/customers/me/password",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=bearer(second),
    )
    await client.post("/auth/logout", headers=bearer(second))
    await client.post("/auth/login", json={"username": account.username, "password": "guess-1"})
    stored = json.dumps(await records(client), default=str)
    assert len(await records(client)) == 7
    secrets = [
        PASSWORD,
        NEW_PASSWORD,
        "guess-1",
        pair["access_token"],
        pair["refresh_token"],
        refreshed["refresh_token"],
        refreshed["access_token"],
        second["access_token"],
        second["refresh_token"],
    ]
    for secret in secrets:
        assert secret not in stored
        # nor any long piece of one (a token cut short is still a leak)
        assert all(secret[i : i + 16] not in stored for i in range(0, len(secret) - 16, 8))


async def test_an_audit_store_outage_leaves_login_working(client, caplog):
    account = await register(client)

    class Down:
        async def insert_one(self, doc: dict[str, Any]) -> None:
            raise AutoReconnect("audit store down")

    client.app[keys.AUDIT].collection = Down()
    caplog.set_level(logging.ERROR, logger="svc_core.audit")
    resp = await client.post(
        "/auth/login", json={"username": account.username, "password": PASSWORD}
    )
    assert resp.status == 200
    assert (await resp.json())["access_token"]
    metrics = await (await client.get("/metrics")).text()
    assert (
        'svc_audit_failures_total{action="auth.login",reason="error",service="customer"} 1.0'
        in metrics
    )
    assert [r.audit_action for r in caplog.records] == ["auth.login"]
    assert PASSWORD not in caplog.text


async def test_svc_core_audit_reads_the_customer_services_records(start, capsys):
    mongo_url = f"memory://customer-audit-{uuid.uuid4().hex}"
    client = await start(mongo_url=mongo_url)
    account = await register(client)
    await account.login()
    await client.post("/auth/login", json={"username": account.username, "password": "no"})

    def cli(*argv: str) -> list[dict[str, Any]]:
        code = svc_cli.main(
            ["audit", "--service", "customer", *argv], environ={"MONGO_URL": mongo_url}
        )
        out, err = capsys.readouterr()
        assert (code, err) == (0, "")
        return [json.loads(line) for line in out.splitlines()]

    by_customer = await asyncio.to_thread(cli, "--actor", account.id)
    assert [r["action"] for r in by_customer] == ["auth.login"]
    failures = await asyncio.to_thread(cli, "--action", "auth.login", "--outcome", "failure")
    assert [r["target"]["id"] for r in failures] == [account.id]
    assert len(await asyncio.to_thread(cli, "--since", "10m")) == 3


@pytest.mark.parametrize("since", ["last tuesday", "2026-02-30"])
def test_svc_core_audit_refuses_a_bad_since_clearly(since, capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        svc_cli.main(["audit", "--service", "customer", "--since", since], environ={})
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "--since: expected an RFC 3339 time" in err
    assert "Traceback" not in err
