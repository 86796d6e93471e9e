"""The audit log (svc_core.audit): one record per event with the fields security.md names, no
secrets in it, an outage that never reaches the user's request, and `svc-core audit`."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import uuid
from typing import Any

import pytest
from pymongo.errors import OperationFailure, ServerSelectionTimeoutError

from svc_core import Audit, AuditSettings, Mongo, MongoSettings, RouteTable, Service, audit, keys
from svc_core import cli as svc_cli
from svc_core.settings import SettingsError
from tests.svc_core.audited import AuditedSettings, service

REFERENCE = "tests.svc_core.audited:service"
SECRET = "hunter2-Tr0ub4dor&3-4111111111111111"


@pytest.fixture
def mongo_url() -> str:
    return f"memory://audit-{uuid.uuid4().hex}"


@pytest.fixture
def start(aiohttp_client, make_settings, mongo_url):
    async def run(**overrides: Any) -> Any:
        settings = make_settings(AuditedSettings, mongo_url=mongo_url, **overrides)
        return await aiohttp_client(service.create_app(settings))

    return run


async def records(client: Any, **where: Any) -> list[dict[str, Any]]:
    collection = client.app[keys.MONGO_DB][audit.COLLECTION]
    return await collection.find(where).sort("_id", 1).to_list(None)


async def metric(client: Any, name: str, **labels: str) -> float:
    text = await (await client.get("/metrics")).text()
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


# --- one record per event, with its fields ---------------------------------------------------


async def test_a_success_is_one_record_with_every_field(start):
    client = await start()
    resp = await client.post("/signin", json={"username": "ann", "password": "right"})
    assert resp.status == 204
    (record,) = await records(client)
    assert record["service"] == "audited"
    assert record["action"] == "auth.login"
    assert record["outcome"] == "success"
    assert record["actor"] == {"type": "customer", "id": "cust-ann", "ip": "127.0.0.1"}
    assert record["target"] == {"type": "customer", "id": "cust-ann"}
    assert record["request_id"] == resp.headers["X-Request-ID"]
    assert record["trace_id"] is None  # tracing is off
    assert isinstance(record["time"], dt.datetime)
    assert record["detail"] == {}
    assert await metric(client, "svc_audit_records_total", action="auth.login") == 1


async def test_a_refusal_is_a_failure_by_an_anonymous_actor_with_the_problems_code(start):
    client = await start()
    resp = await client.post(
        "/signin", json={"username": "ann", "password": "wrong"}, headers={"X-Request-ID": "r-1"}
    )
    assert resp.status == 401
    (record,) = await records(client)
    assert record["outcome"] == "failure"
    assert record["actor"] == {"type": "anonymous", "id": None, "ip": "127.0.0.1"}
    assert record["detail"] == {"reason": "invalid_credentials"}
    assert record["request_id"] == "r-1"


async def test_the_actor_of_an_authenticated_request_is_its_tokens_subject(start, alice):
    client = await start()
    resp = await client.post("/things", json={"name": "kettle"}, headers=alice)
    assert resp.status == 201
    thing = (await resp.json())["id"]
    resp = await client.post("/things", json={"name": "taken"}, headers=alice)
    assert resp.status == 409
    done, refused = await records(client)
    assert done["actor"]["id"] == refused["actor"]["id"] == "cust-alice"
    assert done["actor"]["type"] == "customer"
    assert (done["outcome"], done["target"]) == ("success", {"type": "thing", "id": thing})
    assert (refused["outcome"], refused["detail"]) == ("failure", {"reason": "thing_taken"})


async def test_a_policy_refusal_is_denied_and_the_handler_may_say_otherwise(start, alice):
    client = await start()
    assert (await client.post("/things", json={"name": "forbidden"}, headers=alice)).status == 403
    assert (await client.post("/things", json={"name": "declined"}, headers=alice)).status == 429
    forbidden, declined = await records(client)
    assert (forbidden["outcome"], forbidden["detail"]) == ("denied", {"reason": "not_yours"})
    assert (declined["outcome"], declined["detail"]) == ("failure", {"reason": "declined_anyway"})


async def test_requests_the_chassis_refuses_and_routes_that_do_not_audit_leave_no_record(start):
    client = await start()
    assert (await client.get("/plain")).status == 200
    assert (await client.post("/things", json={"name": "x"})).status == 401  # no token
    assert (await client.post("/signin", json={"username": "ann"})).status == 422
    assert await records(client) == []


async def test_the_client_ip_is_kongs_x_real_ip_only_from_a_trusted_proxy(start):
    trusting = await start()
    await trusting.post(
        "/signin",
        json={"username": "ann", "password": "right"},
        headers={"X-Real-IP": "203.0.113.9"},
    )
    await trusting.post(
        "/signin",
        json={"username": "ann", "password": "right"},
        headers={"X-Real-IP": "not-an-ip; DROP"},
    )
    forwarded, garbage = await records(trusting)
    assert forwarded["actor"]["ip"] == "203.0.113.9"
    assert garbage["actor"]["ip"] == "127.0.0.1"

    untrusting = await start(audit_trusted_proxies=("10.0.0.0/8",))
    await untrusting.post(
        "/signin",
        json={"username": "bob", "password": "right"},
        headers={"X-Real-IP": "203.0.113.9"},
    )
    (spoofed,) = await records(untrusting, **{"actor.id": "cust-bob"})
    assert spoofed["actor"]["ip"] == "127.0.0.1"


async def test_the_trace_id_is_the_requests_when_tracing_is_on(start):
    from svc_core import tracing

    tracing.memory_exporter().clear()
    client = await start(otel_traces="memory")
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    resp = await client.post(
        "/signin",
        json={"username": "ann", "password": "right"},
        headers={"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"},
    )
    assert resp.status == 204
    (record,) = await records(client)
    assert record["trace_id"] == trace_id
    tracing.memory_exporter().clear()


# --- never a secret --------------------------------------------------------------------------


async def test_no_secret_reaches_a_record_even_when_code_hands_one_over(start, caplog):
    client = await start()
    caplog.set_level(logging.WARNING, logger="svc_core.audit")
    resp = await client.post("/leaky", json={"username": "ann", "password": SECRET})
    assert resp.status == 204
    (record,) = await records(client)
    assert record["detail"] == {"user": "ann", "size": 3}
    assert SECRET not in json.dumps(record, default=str)
    assert SECRET not in caplog.text
    dropped = {r.field for r in caplog.records if hasattr(r, "field")}
    assert dropped == {"password", "refresh_token", "card_number", "cvc", "api_key"}


def test_scrub_keeps_short_scalars_under_harmless_names() -> None:
    long = "x" * 500
    assert audit.scrub({"reason": "ok", "n": 1, "big": long, "obj": {"a": 1}}) == {
        "reason": "ok",
        "n": 1,
        "big": "x" * 200,
        "obj": "{'a': 1}",
    }
    assert audit.scrub({"Authorization": "Bearer x", "session_cookie": "y", "CVV": "1"}) == {}


# --- an outage of the audit store ------------------------------------------------------------


class BrokenCollection:
    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error
        self.calls = 0

    async def insert_one(self, doc: dict[str, Any]) -> None:
        self.calls += 1
        if self.error is not None:
            raise self.error
        await asyncio.Event().wait()  # hangs: a store that never answers


async def test_a_failing_store_leaves_the_request_alone_and_is_counted_and_logged(
    start, caplog, alice
):
    client = await start()
    broken = BrokenCollection(ServerSelectionTimeoutError("mongo-audit:27017 down"))
    client.app[keys.AUDIT].collection = broken
    caplog.set_level(logging.ERROR, logger="svc_core.audit")
    resp = await client.post("/signin", json={"username": "ann", "password": SECRET})
    assert resp.status == 401  # the answer it would have got anyway
    resp = await client.post("/things", json={"name": "kettle"}, headers=alice)
    assert resp.status == 201
    assert broken.calls == 2
    assert (
        await metric(client, "svc_audit_failures_total", action="auth.login", reason="error") == 1
    )
    assert (
        await metric(client, "svc_audit_failures_total", action="thing.create", reason="error") == 1
    )
    failures = [r for r in caplog.records if r.getMessage() == "audit record not stored"]
    assert [(r.audit_action, r.error) for r in failures] == [
        ("auth.login", "ServerSelectionTimeoutError"),
        ("thing.create", "ServerSelectionTimeoutError"),
    ]
    assert failures[1].audit_request_id == resp.headers["X-Request-ID"]
    assert SECRET not in caplog.text


async def test_a_store_that_hangs_delays_a_request_by_the_write_timeout_at_most(start, caplog):
    client = await start(audit_write_timeout=0.05)
    hanging = BrokenCollection()
    client.app[keys.AUDIT].collection = hanging
    caplog.set_level(logging.ERROR, logger="svc_core.audit")
    resp = await client.post("/signin", json={"username": "ann", "password": "right"})
    assert resp.status == 204
    assert hanging.calls == 1
    assert (
        await metric(client, "svc_audit_failures_total", action="auth.login", reason="timeout") == 1
    )
    assert [r.reason for r in caplog.records if r.name == "svc_core.audit"] == ["timeout"]


class SwitchableCollection:
    """A store that fails, hangs or works, as the test says; counts what it was asked."""

    def __init__(self) -> None:
        self.mode = "fail"
        self.calls = 0
        self.stored: list[dict[str, Any]] = []

    async def insert_one(self, doc: dict[str, Any]) -> None:
        self.calls += 1
        if self.mode == "fail":
            raise ServerSelectionTimeoutError("mongo-audit:27017 down")
        if self.mode == "hang":
            await asyncio.Event().wait()
        self.stored.append(doc)


async def test_once_the_store_is_down_requests_stop_waiting_until_a_write_succeeds(caplog):
    store = SwitchableCollection()
    # a long write timeout: a request that waited for it could not return within the guard
    log = audit.AuditLog(store, "toy", timeout=30.0, max_pending=2)
    caplog.set_level(logging.ERROR, logger="svc_core.audit")
    guard = 5.0  # guards against a hang; not a latency assertion

    async def one(action: str) -> None:
        await asyncio.wait_for(log.record(None, action, outcome="success"), guard)

    await one("a.fail")  # the store fails: it is down from now on
    assert log.store_down
    store.mode = "hang"
    await one("b.hang")  # not awaited: returns at once though the write hangs
    await one("c.hang")
    assert store.calls == 3
    assert len(log._pending) == 2  # both writes still running, in the background
    await one("d.dropped")  # past max_pending: dropped, never attempted
    assert store.calls == 3
    assert log.failures == {("a.fail", "error"): 1, ("d.dropped", "dropped"): 1}
    assert [r.getMessage() for r in caplog.records] == [
        "audit record not stored",
        "audit record dropped",
    ]
    for task in list(log._pending):  # the hanging writes give up (the driver's own timeout)
        task.cancel()
    await asyncio.sleep(0)
    store.mode = "work"
    await one("e.works")  # still down: not awaited, but it succeeds and the store is back
    await asyncio.sleep(0)
    assert not log.store_down
    await one("f.waited")  # awaited again: stored before record() returns
    assert [d["action"] for d in store.stored] == ["e.works", "f.waited"]


# --- retention and settings ------------------------------------------------------------------


async def test_records_expire_through_a_ttl_index_of_the_retention_setting(start):
    client = await start(audit_retention_days=30)
    info = await client.app[keys.MONGO_DB][audit.COLLECTION].index_information()
    assert info["audit_ttl"]["expireAfterSeconds"] == 30 * 86400
    assert info["audit_ttl"]["key"] == [("time", 1)]


async def test_a_changed_retention_updates_the_existing_ttl_index():
    class Collection:
        async def create_index(self, keys: Any, **options: Any) -> None:
            if "expireAfterSeconds" in options:
                raise OperationFailure("IndexOptionsConflict", code=85)

    class Database:
        def __init__(self) -> None:
            self.commands: list[tuple[Any, ...]] = []

        def __getitem__(self, name: str) -> Collection:
            return Collection()

        async def command(self, *args: Any, **kwargs: Any) -> None:
            self.commands.append((*args, kwargs))

    db = Database()
    await audit.apply_indexes(db, 7)  # type: ignore[arg-type]
    assert db.commands == [
        ("collMod", "audit", {"index": {"name": "audit_ttl", "expireAfterSeconds": 7 * 86400}})
    ]


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("AUDIT_RETENTION_DAYS", "0", "AUDIT_RETENTION_DAYS"),
        ("AUDIT_WRITE_TIMEOUT", "0", "AUDIT_WRITE_TIMEOUT"),
        ("AUDIT_TRUSTED_PROXIES", "10.0.0.0/8,kong", "AUDIT_TRUSTED_PROXIES"),
    ],
)
def test_bad_audit_settings_are_refused_by_name(variable, value, message) -> None:
    with pytest.raises(SettingsError, match=message):
        AuditedSettings.from_env({variable: value})


def test_a_manifest_with_audit_needs_the_audit_settings() -> None:
    with pytest.raises(TypeError, match="AuditSettings"):
        Service(name="noaudit", port=3996, settings=MongoSettings, routes=RouteTable(),
                uses=[Audit()])  # fmt: skip
    made = Service(name="withaudit", port=3995, settings=AuditedSettings, routes=RouteTable(),
                   uses=[Audit()])  # fmt: skip
    assert [type(r) for r in made.resources] == [Mongo, Audit]
    assert issubclass(AuditedSettings, AuditSettings)


# --- svc-core audit --------------------------------------------------------------------------


def run_cli(capsys: Any, *argv: str, environ: dict[str, str]) -> tuple[int, list[Any], str]:
    code = svc_cli.main(["audit", *argv], environ={"SVC_EXTRA_SERVICES": REFERENCE, **environ})
    out, err = capsys.readouterr()
    lines = [json.loads(line) for line in out.splitlines()] if "--format" not in argv else out
    return code, lines, err  # type: ignore[return-value]


@pytest.fixture
async def seeded(start, alice, bob):
    """Four records: ann in, a wrong password from 203.0.113.9, alice's and bob's things.
    (No access log: its buffered lines would reach the CLI tests' captured stderr.)"""
    client = await start(access_log=False)
    await client.post("/signin", json={"username": "ann", "password": "right"})
    await client.post(
        "/signin",
        json={"username": "ann", "password": "wrong"},
        headers={"X-Real-IP": "203.0.113.9"},
    )
    await client.post("/things", json={"name": "a"}, headers=alice)
    await client.post("/things", json={"name": "taken"}, headers=bob)
    assert len(await records(client)) == 4
    return client


async def test_the_cli_reads_and_filters_the_records(seeded, mongo_url, capsys, tmp_path):
    env = {"MONGO_URL": mongo_url}

    def cli(*argv: str) -> tuple[int, list[Any], str]:
        return run_cli(capsys, "--service", "audited", *argv, environ=env)

    code, everything, err = await asyncio.to_thread(cli)
    assert (code, err) == (0, "")
    assert [r["action"] for r in everything] == [
        "thing.create",
        "thing.create",
        "auth.login",
        "auth.login",
    ]  # newest first
    first = everything[-1]
    assert set(first) == {
        "id", "time", "service", "action", "outcome", "actor", "target", "request_id",
        "trace_id", "detail",
    }  # fmt: skip
    assert first["time"].endswith("Z")

    _, logins, _ = await asyncio.to_thread(cli, "--action", "auth.login")
    assert [r["outcome"] for r in logins] == ["failure", "success"]
    _, under, _ = await asyncio.to_thread(cli, "--action", "thing.*")
    assert {r["actor"]["id"] for r in under} == {"cust-alice", "cust-bob"}
    _, by_alice, _ = await asyncio.to_thread(cli, "--actor", "cust-alice")
    assert [r["action"] for r in by_alice] == ["thing.create"]
    _, by_ip, _ = await asyncio.to_thread(cli, "--actor", "203.0.113.9")
    assert [r["outcome"] for r in by_ip] == ["failure"]
    _, failed, _ = await asyncio.to_thread(cli, "--outcome", "failure")
    assert [r["actor"]["id"] for r in failed] == ["cust-bob", None]
    _, about_ann, _ = await asyncio.to_thread(cli, "--target", "cust-ann")
    assert len(about_ann) == 2
    secret_file = tmp_path / "mongo-url"
    secret_file.write_text(mongo_url + "\n")
    from_file = await asyncio.to_thread(
        run_cli, capsys, "--service", "audited", environ={"MONGO_URL_FILE": str(secret_file)}
    )
    assert from_file == (0, everything, "")
    _, newest, _ = await asyncio.to_thread(cli, "--limit", "1")
    assert newest == everything[:1]
    _, recent, _ = await asyncio.to_thread(cli, "--since", "1h", "--action", "auth.login")
    assert len(recent) == 2
    _, future, _ = await asyncio.to_thread(cli, "--since", "2999-01-01")
    assert future == []
    _, past, _ = await asyncio.to_thread(cli, "--until", "2000-01-01T00:00:00Z")
    assert past == []

    code, table, _ = await asyncio.to_thread(cli, "--format", "table", "--actor", "cust-bob")
    header, row = str(table).splitlines()
    assert header.split() == ["time", "action", "outcome", "actor", "ip", "target", "request_id"]
    assert row.split()[1:4] == ["thing.create", "failure", "cust-bob"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--since", "yesterday"], "argument --since: expected an RFC 3339 time"),
        (["--since", "2026-13-45"], "argument --since: expected an RFC 3339 time"),
        (["--until", "5 minutes"], "argument --until: expected an RFC 3339 time"),
        (["--limit", "0"], "argument --limit: expected a whole number"),
        (["--outcome", "maybe"], "argument --outcome: invalid choice"),
    ],
)
def test_bad_cli_input_is_a_clear_error_without_a_traceback(argv, message, capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        svc_cli.main(["audit", "--service", "audited", *argv], environ={})
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("argv", "environ", "message"),
    [
        (["--service", "nosuch"], {"MONGO_URL": "memory://x"}, "--service nosuch: not a service"),
        (["--service", "audited"], {}, "MONGO_URL: not set"),
        (["--service", "audited"], {"MONGO_URL_FILE": "/nonexistent/x"}, "MONGO_URL_FILE: cannot"),
        (["--service", "audited"], {"MONGO_URL": "memory://"}, "a store of its own process"),
        (
            ["--service", "audited", "--since", "1h", "--until", "2h"],
            {"MONGO_URL": "memory://x"},
            "--since must be before --until",
        ),
    ],
)
def test_the_cli_refuses_what_it_cannot_read_with_a_reason(argv, environ, message, capsys):
    code = svc_cli.main(["audit", *argv], environ={"SVC_EXTRA_SERVICES": REFERENCE, **environ})
    err = capsys.readouterr().err
    assert code == 2
    assert message in err
    assert "Traceback" not in err


def test_an_unreachable_database_is_reported_without_credentials_or_traceback(capsys) -> None:
    code = svc_cli.main(
        ["audit", "--service", "audited"],
        environ={
            "SVC_EXTRA_SERVICES": REFERENCE,
            "MONGO_URL": "mongodb://auditor:s3cret-pw@audit-db.invalid:27017/",
        },
    )
    err = capsys.readouterr().err
    assert code == 1
    assert "could not read the audit log" in err
    assert "s3cret-pw" not in err
    assert "Traceback" not in err


def test_since_takes_times_and_ages() -> None:
    now = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)
    assert svc_cli.parse_time("90m", now=now) == now - dt.timedelta(minutes=90)
    assert svc_cli.parse_time("7d", now=now) == now - dt.timedelta(days=7)
    assert svc_cli.parse_time("2026-11-25") == dt.datetime(2026, 11, 25, tzinfo=dt.UTC)
    assert svc_cli.parse_time("2026-11-25T13:00:00+01:00") == now


@pytest.mark.parametrize(
    ("peer", "header", "expected"),
    [
        ("::ffff:10.1.2.3", "203.0.113.9", "203.0.113.9"),  # Kong on a dual-stack listener
        ("::ffff:198.51.100.7", "203.0.113.9", "198.51.100.7"),  # a public peer: its own address
        ("::ffff:198.51.100.7", None, "198.51.100.7"),
        ("2001:db8::1", "203.0.113.9", "2001:db8::1"),
        ("fd00::5", "2001:db8::9", "2001:db8::9"),
        ("10.0.0.2", "::ffff:203.0.113.9", "203.0.113.9"),
        ("10.0.0.2", "203.0.113.9, 10.0.0.1", "10.0.0.2"),  # a list is no address
        ("10.0.0.2", "9" * 10000, "10.0.0.2"),
    ],
)
def test_the_client_ip_of_ipv6_and_ipv4_mapped_peers(peer, header, expected) -> None:
    from unittest import mock

    from aiohttp.test_utils import make_mocked_request

    transport = mock.Mock()
    transport.get_extra_info.side_effect = lambda name, default=None: (
        (peer, 443) if name == "peername" else default
    )
    headers = {} if header is None else {"X-Real-IP": header}
    request = make_mocked_request("POST", "/signin", headers=headers, transport=transport)
    trusted = AuditSettings(audit_trusted_proxies=audit._PRIVATE_NETWORKS).trusted_networks()
    log = audit.AuditLog(None, "toy", trusted=trusted)
    assert log.client_ip(request) == expected
