"""The app factory's own endpoints, request ids and logs, settings, CORS, service client,
MongoDB stand-in, and graceful shutdown."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from pymongo.errors import DuplicateKeyError

from svc_core import Http, Redis, RedisSettings, RouteTable, Service, keys
from svc_core.client import ServiceClient
from svc_core.embedded import RedisServer
from svc_core.errors import DependencyUnavailable
from svc_core.logs import JSONFormatter, request_id_var
from svc_core.mongo import Index, apply_indexes, open_client
from svc_core.settings import SettingsError
from svc_core.testing import free_port, seed_revocation_epoch
from tests.svc_core.toy import ToySettings, create_toy_app, service

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def client(aiohttp_client, make_settings):
    return await aiohttp_client(create_toy_app(make_settings(ToySettings)))


# --- /health /ready /metrics /openapi.json --------------------------------------------------


async def test_health(client):
    resp = await client.get("/health")
    assert resp.status == 200
    assert await resp.json() == {"status": "ok"}


async def test_ready_names_each_dependency(client):
    resp = await client.get("/ready")
    assert resp.status == 200
    assert await resp.json() == {"status": "ready", "checks": {"mongodb": "ok", "redis": "ok"}}


async def test_ready_follows_redis_down_and_back_without_restart(aiohttp_client, make_settings):
    server = RedisServer().start()
    try:
        app = create_toy_app(make_settings(ToySettings, redis_url=f"{server.url}/0"))
        client = await aiohttp_client(app)
        assert (await client.get("/ready")).status == 200
        server.stop()
        resp = await client.get("/ready")
        assert resp.status == 503
        body = await resp.json()
        assert body["status"] == "not_ready"
        assert body["checks"]["mongodb"] == "ok"
        assert body["checks"]["redis"] != "ok"
        server.start()
        deadline = time.monotonic() + 10
        while (resp := await client.get("/ready")).status != 200:
            assert time.monotonic() < deadline, await resp.text()
            await asyncio.sleep(0.1)
        assert (await resp.json())["checks"] == {"mongodb": "ok", "redis": "ok"}
    finally:
        server.stop()


async def test_protected_route_answers_503_problem_while_redis_is_down(
    aiohttp_client, make_settings, auth_header
):
    server = RedisServer().start()
    seed_revocation_epoch(f"{server.url}/0")  # else a token minted at a second's end is 401
    try:
        app = create_toy_app(make_settings(ToySettings, redis_url=f"{server.url}/0"))
        client = await aiohttp_client(app)
        headers = auth_header(sub="c")
        assert (await client.get("/whoami", headers=headers)).status == 200
        server.stop()
        deadline = time.monotonic() + 5
        while (resp := await client.get("/whoami", headers=headers)).status == 200:
            assert time.monotonic() < deadline  # the mirror notices the lost feed
            await asyncio.sleep(0.05)
        assert resp.status == 503
        assert (await resp.json())["code"] == "dependency_unavailable"
    finally:
        server.stop()


async def test_metrics_count_requests_by_route_and_status(client, auth_header):
    await client.get("/notes", headers=auth_header(sub="m"))
    await client.get("/notes")
    text = await (await client.get("/metrics")).text()
    assert 'http_requests_total{method="GET",route="/notes",service="toy",status="200"} 1.0' in text
    assert 'http_requests_total{method="GET",route="/notes",service="toy",status="401"} 1.0' in text
    assert "# TYPE http_request_duration_seconds histogram" in text
    labels = 'method="GET",route="/notes",service="toy"'
    assert f"http_request_duration_seconds_count{{{labels}}} 2.0" in text
    assert f'http_request_duration_seconds_bucket{{le="+Inf",{labels}}} 2.0' in text
    assert f'http_request_duration_seconds_bucket{{le="0.001",{labels}}}' in text


async def test_openapi_is_built_from_the_route_schemas(client):
    spec = await (await client.get("/openapi.json")).json()
    assert spec["openapi"] == "3.1.0"
    post = spec["paths"]["/notes"]["post"]
    body_schema = post["requestBody"]["content"]["application/json"]["schema"]
    assert body_schema == {"$ref": "#/components/schemas/NoteIn"}
    note_in = spec["components"]["schemas"]["NoteIn"]
    assert note_in["required"] == ["title"]
    assert note_in["properties"]["title"]["maxLength"] == 100
    assert {"201", "401", "409", "422"} <= set(post["responses"])
    listing = spec["paths"]["/notes"]["get"]
    assert {p["name"] for p in listing["parameters"]} == {"limit", "cursor"}
    assert "security" not in spec["paths"]["/public/hello"]["get"]


# --- request ids and logs -------------------------------------------------------------------


async def test_request_id_is_echoed(client):
    resp = await client.get("/health", headers={"X-Request-ID": "abc-123"})
    assert resp.headers["X-Request-ID"] == "abc-123"


async def test_request_id_is_generated_when_missing(client):
    one = (await client.get("/health")).headers["X-Request-ID"]
    two = (await client.get("/health")).headers["X-Request-ID"]
    assert one
    assert one != two


@pytest.mark.parametrize("sent", ["a" * 200, "!~trace:1/2", 'log-"me'])
async def test_a_visible_ascii_request_id_of_up_to_200_is_echoed(client, capsys, sent):
    resp = await client.get("/whoami", headers={"X-Request-ID": sent})
    assert resp.headers["X-Request-ID"] == sent
    assert (await resp.json())["request_id"] == sent  # the body equals the header
    await asyncio.sleep(0.3)
    err = capsys.readouterr().err
    [line] = [json.loads(x) for x in err.splitlines() if '"svc_core.access"' in x]
    assert line["request_id"] == sent


@pytest.mark.parametrize(
    "sent",
    ["a" * 201, "café-" + "x" * 10, "has space", "tab\there", "", "x" * 8200],
    ids=["201-chars", "non-ascii", "space", "tab", "empty", "8200-chars"],
)
async def test_any_other_request_id_is_replaced_by_a_generated_one(client, capsys, sent):
    resp = await client.get("/whoami", headers={"X-Request-ID": sent.encode().decode("latin-1")})
    echoed = resp.headers["X-Request-ID"]
    assert echoed != sent
    assert re.fullmatch(r"[!-~]{1,200}", echoed)
    assert (await resp.json())["request_id"] == echoed
    await asyncio.sleep(0.3)
    err = capsys.readouterr().err
    [line] = [json.loads(x) for x in err.splitlines() if '"svc_core.access"' in x]
    assert line["request_id"] == echoed


async def test_problem_carries_the_request_id(client):
    resp = await client.get("/whoami", headers={"X-Request-ID": "trace-me"})
    assert (await resp.json())["request_id"] == "trace-me"


async def test_access_log_is_json_with_request_id_and_no_token(client, capsys, make_token):
    token = make_token()
    await client.get(
        "/notes?limit=5",
        headers={"Authorization": f"Bearer {token}", "X-Request-ID": 'log-"me'},
    )
    await asyncio.sleep(0.3)  # lines are flushed every 0.1 s
    err = capsys.readouterr().err
    assert token not in err
    lines = [json.loads(line) for line in err.splitlines() if '"svc_core.access"' in line]
    [line] = [entry for entry in lines if entry["request_id"] == 'log-"me']
    assert line["message"] == "request"
    assert line["service"] == "toy"
    assert line["status"] == 200
    assert line["method"] == "GET"
    assert line["path"] == "/notes"  # never the query string: it may carry a token
    assert line["route"] == "/notes"
    assert line["time"].endswith("Z")
    assert isinstance(line["duration_ms"], float)


async def test_access_log_can_be_turned_off(aiohttp_client, make_settings, capsys):
    client = await aiohttp_client(create_toy_app(make_settings(ToySettings, access_log=False)))
    await client.get("/health")
    await asyncio.sleep(0.3)
    assert '"svc_core.access"' not in capsys.readouterr().err


async def test_access_log_is_flushed_at_shutdown(aiohttp_client, make_settings, capsys):
    client = await aiohttp_client(create_toy_app(make_settings(ToySettings)))
    await client.get("/public/hello", headers={"X-Request-ID": "last-words"})
    await client.close()
    assert '"request_id": "last-words"' in capsys.readouterr().err


@pytest.mark.parametrize("probes", [False, True])
async def test_probes_are_access_logged_only_when_asked(
    aiohttp_client, make_settings, capsys, probes
):
    settings = make_settings(ToySettings, access_log_probes=probes)
    client = await aiohttp_client(create_toy_app(settings))
    for path in ("/health", "/ready", "/metrics", "/public/hello"):
        assert (await client.get(path)).status == 200
    await client.close()
    logged = {
        json.loads(line)["path"]
        for line in capsys.readouterr().err.splitlines()
        if '"svc_core.access"' in line
    }
    expected = {"/health", "/ready", "/metrics", "/public/hello"} if probes else {"/public/hello"}
    assert logged == expected


def test_log_lines_carry_the_request_id_of_the_request():
    record = logging.makeLogRecord({"name": "x", "msg": "hello", "levelname": "INFO"})
    reset = request_id_var.set("r-1")
    try:
        line = json.loads(JSONFormatter("svc").format(record))
    finally:
        request_id_var.reset(reset)
    assert line["request_id"] == "r-1"
    assert line["service"] == "svc"
    assert line["time"].endswith("Z")


# --- settings -------------------------------------------------------------------------------


def test_settings_parse_types():
    s = ToySettings.from_env(
        {"PORT": "4000", "ACCESS_LOG": "false", "CORS_ORIGINS": "http://a, http://b"}
    )
    assert service.listen_port(s) == 4000
    assert s.access_log is False
    assert s.cors_origins == ("http://a", "http://b")
    assert service.listen_port(ToySettings.from_env({})) == 3999


def test_settings_subclasses_are_frozen_dataclasses():
    settings = ToySettings.from_env({"TOY_SECRET": "x"})
    assert settings.greeting_secret == "x"
    with pytest.raises(AttributeError):
        settings.greeting_secret = "changed"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        settings.port = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("environ", "variable"),
    [({"TOY_SLOW_SECONDS": "soon"}, "TOY_SLOW_SECONDS")],
)
def test_bad_subclass_settings_name_the_variable(environ, variable):
    with pytest.raises(SettingsError, match=variable):
        ToySettings.from_env(environ)


@pytest.mark.parametrize(
    ("environ", "variable"),
    [
        ({"PORT": "eighty"}, "PORT"),
        ({"ACCESS_LOG": "maybe"}, "ACCESS_LOG"),
        ({"SHUTDOWN_TIMEOUT": "soon"}, "SHUTDOWN_TIMEOUT"),
        ({"ENVIRONMENT": "staging"}, "ENVIRONMENT"),
    ],
)
def test_bad_settings_name_the_variable(environ, variable):
    with pytest.raises(SettingsError, match=variable):
        ToySettings.from_env(environ)


def test_production_refuses_placeholder_secrets():
    with pytest.raises(SettingsError, match="TOY_SECRET"):
        ToySettings.from_env({"ENVIRONMENT": "production"})
    real = ToySettings.from_env({"ENVIRONMENT": "production", "TOY_SECRET": "s3cr3t-value"})
    assert real.greeting_secret == "s3cr3t-value"


def test_production_requires_database_urls():
    s = ToySettings.from_env({"ENVIRONMENT": "production", "TOY_SECRET": "x-real"})
    with pytest.raises(SettingsError, match="MONGO_URL"):
        s.resolved_mongo_url()
    with pytest.raises(SettingsError, match="REDIS_URL"):
        s.resolved_redis_url()
    assert ToySettings.from_env({}).resolved_mongo_url() == "memory://"


def test_describe_masks_secrets_and_passwords():
    s = ToySettings.from_env({"TOY_SECRET": "hunter2", "REDIS_URL": "redis://user:pw@redis:6379/0"})
    text = json.dumps(s.describe())
    assert "hunter2" not in text
    assert "pw@" not in text
    assert "redis:6379/0" in text


def test_the_repr_of_settings_shows_no_secret():
    """A settings object in a log line or a traceback's locals is its described form."""
    s = ToySettings.from_env({"TOY_SECRET": "hunter2", "REDIS_URL": "redis://user:pw@redis:6379/0"})
    for shown in (repr(s), str(s), f"{s!r}"):
        assert "hunter2" not in shown
        assert "pw@" not in shown
        assert "redis:6379/0" in shown
        assert shown.startswith("ToySettings(")


def test_run_exits_with_the_variable_name(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "tests.svc_core.toy"],
        cwd=ROOT,
        env={**os.environ, "PORT": "not-a-port"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode != 0
    assert "PORT" in proc.stderr
    assert "Traceback" not in proc.stderr


# --- CORS without the gateway ---------------------------------------------------------------


async def test_cors_when_configured(aiohttp_client, make_settings):
    settings = make_settings(ToySettings, cors_origins=("http://localhost:3000",))
    client = await aiohttp_client(create_toy_app(settings))
    resp = await client.options(
        "/notes",
        headers={
            "Origin": "http://localhost:3000",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "Authorization, Content-Type",
        },
    )
    assert resp.status == 200  # a preflight never needs a token
    assert resp.headers["Access-Control-Allow-Origin"] == "http://localhost:3000"
    assert resp.headers["Access-Control-Max-Age"] == "3600"
    resp = await client.get("/public/hello", headers={"Origin": "http://localhost:3000"})
    assert resp.headers["Access-Control-Allow-Origin"] == "http://localhost:3000"
    assert "X-Request-ID" in resp.headers["Access-Control-Expose-Headers"]
    resp = await client.get("/public/hello", headers={"Origin": "http://evil.example"})
    assert "Access-Control-Allow-Origin" not in resp.headers


async def test_no_cors_headers_by_default(client):
    resp = await client.get("/public/hello", headers={"Origin": "http://localhost:3000"})
    assert "Access-Control-Allow-Origin" not in resp.headers


# --- the MongoDB stand-in -------------------------------------------------------------------


async def test_memory_mongo_enforces_unique_indexes():
    db = open_client("memory://")["t"]
    await apply_indexes(db, [Index("users", [("email", 1)], unique=True)])
    await db.users.insert_one({"_id": "1", "email": "a@x"})
    with pytest.raises(DuplicateKeyError):
        await db.users.insert_one({"_id": "2", "email": "a@x"})


async def test_named_memory_mongo_is_shared_between_apps():
    one = open_client("memory://shared-test")["db"]
    two = open_client("memory://shared-test")["db"]
    await one.things.insert_one({"_id": "x"})
    assert await two.things.find_one({"_id": "x"}) == {"_id": "x"}


# --- service-to-service client --------------------------------------------------------------


async def test_service_client_retries_idempotent_calls(aiohttp_server):
    calls: list[dict[str, str]] = []

    async def flaky(request: web.Request) -> web.Response:
        calls.append(dict(request.headers))
        if len(calls) < 3:
            return web.Response(status=503)
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_get("/thing", flaky)
    app.router.add_post("/thing", flaky)
    server = await aiohttp_server(app)
    async with aiohttp.ClientSession() as session:
        client = ServiceClient(session, str(server.make_url("")), retries=2, backoff=0.01)
        reset = request_id_var.set("rid-1")
        try:
            resp = await client.request("GET", "/thing", token="tok")
        finally:
            request_id_var.reset(reset)
        assert resp.status == 200
        assert resp.json() == {"ok": True}
        assert len(calls) == 3
        assert calls[-1]["X-Request-ID"] == "rid-1"
        assert calls[-1]["Authorization"] == "Bearer tok"
        calls.clear()
        resp = await client.request("POST", "/thing")  # never retried: not idempotent
        assert resp.status == 503
        assert len(calls) == 1


async def test_service_client_unreachable_is_dependency_unavailable():
    async with aiohttp.ClientSession() as session:
        client = ServiceClient(session, f"http://127.0.0.1:{free_port()}", backoff=0.01)
        with pytest.raises(DependencyUnavailable):
            await client.request("GET", "/anything")


async def test_http_client_resource(aiohttp_client, make_settings):
    routes = RouteTable()
    app = Service(
        name="toy", port=3999, settings=ToySettings, routes=routes, uses=[Http()]
    ).create_app(make_settings(ToySettings))
    await aiohttp_client(app)
    assert isinstance(app[keys.HTTP], aiohttp.ClientSession)
    assert keys.MONGO_DB not in app  # only what the service declared
    assert keys.REDIS not in app


async def test_service_without_mongo_reports_only_redis(aiohttp_client, make_settings):
    app = Service(
        name="toy", port=3999, settings=RedisSettings, routes=RouteTable(), uses=[Redis()]
    ).create_app(make_settings(RedisSettings))
    client = await aiohttp_client(app)
    body = await (await client.get("/ready")).json()
    assert body["checks"] == {"redis": "ok"}


# --- graceful shutdown ----------------------------------------------------------------------


def test_sigterm_lets_in_flight_requests_finish(redis_url, test_keys, tmp_path):
    port = free_port()
    env = {
        **os.environ,
        "PORT": str(port),
        "ENVIRONMENT": "test",
        "REDIS_URL": redis_url,
        "JWT_PUBLIC_KEYS": test_keys.public_pem,
        "TOY_SLOW_SECONDS": "1.0",
        "UVLOOP": "false",
    }
    log_path = tmp_path / "toy.log"
    log_file = log_path.open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.svc_core.toy"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log_file,
    )
    try:

        async def scenario() -> int:
            async with aiohttp.ClientSession() as session:
                deadline = time.monotonic() + 20
                while True:
                    try:
                        async with session.get(f"http://127.0.0.1:{port}/health") as r:
                            if r.status == 200:
                                break
                    except aiohttp.ClientError:
                        pass
                    assert time.monotonic() < deadline, "service did not start"
                    await asyncio.sleep(0.1)
                slow = asyncio.create_task(session.get(f"http://127.0.0.1:{port}/public/slow"))
                await asyncio.sleep(0.3)  # the request is in flight
                proc.send_signal(signal.SIGTERM)
                resp = await slow
                status = resp.status
                assert await resp.json() == {"slow": "done"}
                resp.release()
                return status

        assert asyncio.run(scenario()) == 200
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log_file.close()
    assert "Traceback" not in log_path.read_text()


def test_log_lines_name_the_service_of_the_request():
    from svc_core.logs import service_var

    record = logging.makeLogRecord({"name": "x", "msg": "hi", "levelname": "INFO"})
    reset = service_var.set("order")
    try:
        line = json.loads(JSONFormatter("dev").format(record))
    finally:
        service_var.reset(reset)
    assert line["service"] == "order"
    assert json.loads(JSONFormatter("dev").format(record))["service"] == "dev"


async def test_background_tasks_carry_the_service_name_and_nothing_leaks(
    aiohttp_client, make_settings
):
    from svc_core.logs import service_var

    seen: list[str | None] = []

    async def background(app: web.Application):
        task = asyncio.create_task(asyncio.sleep(0, result=None))
        seen.append(service_var.get())
        yield
        await task

    app = Service(
        name="toy", port=3999, settings=ToySettings, routes=RouteTable(), background=[background]
    ).create_app(make_settings(ToySettings))
    await aiohttp_client(app)
    assert seen == ["toy"]
    assert service_var.get() is None


async def test_a_route_added_straight_to_the_router_is_still_protected(
    aiohttp_client, make_settings, auth_header
):
    """The chassis wraps every route at startup, not only RouteTable ones (this also pins the
    aiohttp internal it relies on: a route's handler can be replaced before the router freezes)."""

    async def raw(request: web.Request) -> web.Response:
        return web.json_response({"sub": request[keys.CLAIMS].sub})

    app = create_toy_app(make_settings(ToySettings))
    app.router.add_get("/raw", raw)
    client = await aiohttp_client(app)
    resp = await client.get("/raw")
    assert resp.status == 401
    assert resp.content_type == "application/problem+json"
    resp = await client.get("/raw", headers=auth_header(sub="direct"))
    assert resp.status == 200
    assert await resp.json() == {"sub": "direct"}
    assert resp.headers["X-Request-ID"]


async def test_405_names_the_allowed_methods(client, auth_header):
    resp = await client.put("/notes", headers=auth_header(sub="a"))
    assert resp.status == 405
    assert set(resp.headers["Allow"].split(",")) == {"GET", "HEAD", "POST"}
    assert (await resp.json())["code"] == "method_not_allowed"


async def test_streamed_responses_carry_the_request_id(aiohttp_client, make_settings):
    from svc_core import prepare
    from svc_core.routing import public

    @public
    async def stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await prepare(request, response)
        await response.write(b"chunk")
        await response.write_eof()
        return response

    app = create_toy_app(make_settings(ToySettings))
    app.router.add_get("/stream", stream)
    client = await aiohttp_client(app)
    resp = await client.get("/stream", headers={"X-Request-ID": "streamed-1"})
    assert resp.status == 200
    assert await resp.read() == b"chunk"
    assert resp.headers["X-Request-ID"] == "streamed-1"


async def test_openapi_document_is_valid_openapi_3_1(client):
    from openapi_spec_validator import validate

    spec = await (await client.get("/openapi.json")).json()
    validate(spec)  # raises on any schema violation


# --- HTTP framing errors (hardening finding 6) ----------------------------------------------

FRAMING_ERRORS = {
    "control-byte-in-header": b"GET /whoami HTTP/1.1\r\nHost: x\r\n"
    b"Authorization: Bearer SECRET.TOKEN.\x01VALUE\r\n\r\n",
    "oversized-header": b"GET /whoami HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer SECRET"
    + b"T" * 20000
    + b"\r\n\r\n",
    "oversized-request-line": b"GET /whoami?x=" + b"y" * 9000 + b" HTTP/1.1\r\nHost: x\r\n"
    b"Authorization: Bearer SECRET.TOKEN\r\n\r\n",
    "bad-chunking": b"POST /notes HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer SECRET.TOKEN\r\n"
    b"Transfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
    "cl-and-te": b"POST /notes HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer SECRET.TOKEN\r\n"
    b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
}


@pytest.mark.parametrize("raw", list(FRAMING_ERRORS.values()), ids=list(FRAMING_ERRORS))
async def test_invalid_http_is_a_problem_that_echoes_nothing_and_logs_no_header(
    make_settings, raw, caplog
):
    from svc_core import serve

    port = free_port()
    runner = await serve(create_toy_app(make_settings(ToySettings)), "127.0.0.1", port)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(raw)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(65536), 5)
        writer.close()
    finally:
        await runner.cleanup()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert re.match(rb"HTTP/1\.[01] 4\d\d ", head), head
    assert b"application/problem+json" in head
    assert b"aiohttp" not in head
    assert b"SECRET" not in answer
    problem = json.loads(body)
    assert problem["status"] == int(head[9:12])
    assert "SECRET" not in caplog.text
    assert "Traceback" not in caplog.text


async def test_every_operation_documents_the_invalid_http_400(client):
    """Any request may be refused as not valid HTTP (a request line over 8 KiB: a long query
    value or path id), so every operation lists the 400 the runner answers."""
    document = await (await client.get("/openapi.json")).json()
    undocumented = [
        f"{method.upper()} {path}"
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        if "400" not in operation["responses"]
    ]
    assert document["paths"]
    assert not undocumented, undocumented
