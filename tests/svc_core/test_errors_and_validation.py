"""The error model and request validation: problem+json bodies per api.md's Conventions."""

from __future__ import annotations

import json

import pytest

from tests.svc_core.toy import ToySettings, create_toy_app

PROBLEM_FIELDS = {"type", "title", "status", "detail", "code", "request_id"}


@pytest.fixture
async def client(aiohttp_client, make_settings):
    return await aiohttp_client(create_toy_app(make_settings(ToySettings)))


@pytest.fixture
def headers(auth_header):
    return auth_header(sub="cust-1")


async def problem(resp, status: int, code: str) -> dict:
    assert resp.status == status, await resp.text()
    assert resp.content_type == "application/problem+json"
    data = await resp.json(content_type=None)
    assert set(data) >= PROBLEM_FIELDS
    assert data["status"] == status
    assert data["code"] == code
    assert data["request_id"] == resp.headers["X-Request-ID"]
    return data


async def test_malformed_json_is_400(client, headers):
    resp = await client.post(
        "/notes", data=b'{"title": ', headers={**headers, "Content-Type": "application/json"}
    )
    await problem(resp, 400, "malformed_json")


async def test_invalid_utf8_is_400(client, headers):
    resp = await client.post(
        "/notes", data=b'{"title": "\xff"}', headers={**headers, "Content-Type": "application/json"}
    )
    await problem(resp, 400, "malformed_json")


async def test_wrong_content_type_is_400(client, headers):
    resp = await client.post(
        "/notes", data=b"title=x", headers={**headers, "Content-Type": "text/plain"}
    )
    data = await problem(resp, 400, "unsupported_content_type")
    assert "application/json" in data["detail"]


async def test_unknown_field_is_422_and_not_stored(client, headers):
    resp = await client.post("/notes", json={"title": "a", "role": "admin"}, headers=headers)
    data = await problem(resp, 422, "validation_failed")
    assert data["errors"] == {"role": ["Unknown field."]}
    listing = await (await client.get("/notes", headers=headers)).json()
    assert listing["items"] == []


async def test_operator_injection_is_a_type_error(client, headers):
    resp = await client.post("/notes", json={"title": {"$ne": None}}, headers=headers)
    data = await problem(resp, 422, "validation_failed")
    assert data["errors"] == {"title": ["Not a valid string."]}


@pytest.mark.parametrize("stars", [True, 1.5, "3", None])
async def test_strict_integers(client, headers, stars):
    resp = await client.post("/notes", json={"title": "a", "stars": stars}, headers=headers)
    data = await problem(resp, 422, "validation_failed")
    assert list(data["errors"]) == ["stars"]


async def test_nested_errors_have_dotted_paths(client, headers):
    resp = await client.post("/notes", json={"title": "", "tags": ["ok", ""]}, headers=headers)
    data = await problem(resp, 422, "validation_failed")
    assert set(data["errors"]) == {"title", "tags.1"}


async def test_non_object_body_is_422(client, headers):
    resp = await client.post("/notes", json=[1, 2], headers=headers)
    await problem(resp, 422, "validation_failed")


@pytest.mark.parametrize("payload", [b"", b"{}", b"  "])
async def test_route_without_body_accepts_empty_or_empty_object(client, headers, payload):
    resp = await client.post(
        "/notes/ping", data=payload, headers={**headers, "Content-Type": "application/json"}
    )
    assert resp.status == 200
    assert await resp.json() == {"pong": True}


async def test_route_without_body_rejects_fields(client, headers):
    resp = await client.post("/notes/ping", json={"x": 1}, headers=headers)
    data = await problem(resp, 422, "validation_failed")
    assert data["errors"] == {"x": ["Unknown field."]}


async def test_unknown_route_is_404_problem(client):
    resp = await client.get("/nope")
    await problem(resp, 404, "not_found")


async def test_wrong_method_is_405_problem(client, headers):
    resp = await client.delete("/notes", headers=headers)
    await problem(resp, 405, "method_not_allowed")
    assert "Allow" in resp.headers


async def test_body_over_limit_is_413(aiohttp_client, make_settings, auth_header):
    app = create_toy_app(make_settings(ToySettings, client_max_size=1024))
    client = await aiohttp_client(app)
    big = json.dumps({"title": "x" * 2000})
    resp = await client.post(
        "/notes",
        data=big,
        headers={**auth_header(sub="c"), "Content-Type": "application/json"},
    )
    await problem(resp, 413, "payload_too_large")


async def test_crash_is_generic_500_without_traceback(client, headers, caplog):
    resp = await client.get("/boom", headers=headers)
    data = await problem(resp, 500, "internal_error")
    text = json.dumps(data)
    assert "Traceback" not in text
    assert "/etc/passwd" not in text
    assert "RuntimeError" not in text
    # the traceback goes to the log instead, tagged with the same request id
    crash = [r for r in caplog.records if r.getMessage() == "unhandled error"]
    assert crash
    assert crash[0].exc_info is not None


async def test_domain_problem_with_code(client, headers):
    resp = await client.post("/notes", json={"title": "taken"}, headers=headers)
    data = await problem(resp, 409, "title_taken")
    assert data["detail"] == "That title is taken."


async def test_query_validation(client, headers):
    for params, path in [
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"cursor": "!!not-a-cursor"}, "cursor"),
        ({"sort": "title"}, "sort"),
    ]:
        resp = await client.get("/notes", params=params, headers=headers)
        data = await problem(resp, 422, "validation_failed")
        assert list(data["errors"]) == [path], params


async def test_repeated_query_parameter_is_422(client, headers):
    resp = await client.get("/notes?limit=1&limit=2", headers=headers)
    data = await problem(resp, 422, "validation_failed")
    assert data["errors"] == {"limit": ["Given more than once."]}


async def test_pagination_walks_every_item_once_newest_first(client, headers):
    created = []
    for i in range(7):
        resp = await client.post("/notes", json={"title": f"n{i}"}, headers=headers)
        created.append((await resp.json())["id"])
    seen, cursor = [], None
    while True:
        params = {"limit": "3", **({"cursor": cursor} if cursor else {})}
        page = await (await client.get("/notes", params=params, headers=headers)).json()
        seen += [item["id"] for item in page["items"]]
        if len(seen) == 3:  # a note added mid-walk must not shift the pages
            await client.post("/notes", json={"title": "late"}, headers=headers)
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(created))


async def test_pagination_is_per_owner(client, auth_header):
    await client.post("/notes", json={"title": "mine"}, headers=auth_header(sub="a"))
    page = await (await client.get("/notes", headers=auth_header(sub="b"))).json()
    assert page == {"items": [], "next_cursor": None}


@pytest.mark.parametrize("raw", [b'{"title": NaN}', b'{"title": Infinity}', b"[-Infinity]"])
async def test_non_json_number_literals_are_400(client, headers, raw):
    resp = await client.post(
        "/notes", data=raw, headers={**headers, "Content-Type": "application/json"}
    )
    await problem(resp, 400, "malformed_json")


@pytest.mark.parametrize("raw", [b"[" * 5000 + b"]" * 5000, b'{"stars": ' + b"1" * 5000 + b"}"])
async def test_valid_json_beyond_processing_limits_is_422(client, headers, raw):
    resp = await client.post(
        "/notes", data=raw, headers={**headers, "Content-Type": "application/json"}
    )
    data = await problem(resp, 422, "validation_failed")
    assert list(data["errors"]) == ["_schema"]


async def test_lone_surrogates_are_422(client, headers):
    resp = await client.post(
        "/notes",
        data=b'{"title": "bad \\ud800 text"}',
        headers={**headers, "Content-Type": "application/json"},
    )
    data = await problem(resp, 422, "validation_failed")
    assert data["errors"] == {"title": ["Not valid Unicode text."]}


@pytest.mark.parametrize("limit", ["+5", " 5", "5 ", "1_0", "\uff15", "\u0665", "-1", "5.0"])
async def test_limit_takes_ascii_digits_only(client, headers, limit):
    resp = await client.get("/notes", params={"limit": limit}, headers=headers)
    data = await problem(resp, 422, "validation_failed")
    assert list(data["errors"]) == ["limit"]


@pytest.mark.parametrize(
    "cursor",
    [
        "WzEwMDAwMDAwMDAwMDAwMDAwMDAwMCwgIngiXQ",  # [1e20 ms, "x"]: beyond any date
        "WyJub3RlcyIsIDEwMDAwMDAwMDAwMDAwMDAwMDAwMCwgIngiXQ",  # the same, scoped
        "WyJwYXltZW50cyIsIDEsICJ4Il0",  # ["payments", 1, "x"]: another list's cursor
        "WzEsICJ4Il0",  # [1, "x"]: no scope
    ],
)
async def test_cursors_out_of_range_or_from_another_list_are_422(client, headers, cursor):
    resp = await client.get("/notes", params={"cursor": cursor}, headers=headers)
    data = await problem(resp, 422, "validation_failed")
    assert data["errors"] == {"cursor": ["Unknown cursor."]}


async def test_unknown_query_parameters_on_a_route_without_query_schema(client, headers):
    resp = await client.post("/notes?debug=1", json={"title": "x"}, headers=headers)
    data = await problem(resp, 422, "validation_failed")
    assert data["errors"] == {"debug": ["Unknown query parameter."]}
    listing = await (await client.get("/notes", headers=headers)).json()
    assert listing["items"] == []  # refused before the handler ran
    resp = await client.post("/notes/ping?x=1", headers=headers)
    await problem(resp, 422, "validation_failed")


async def test_query_check_comes_after_authentication(client):
    resp = await client.post("/notes?debug=1", json={"title": "x"})
    await problem(resp, 401, "unauthorized")


# --- api.md "bodies": Content-Encoding (hardening finding 1) --------------------------------


def _deflate(data: bytes) -> bytes:
    import zlib

    return zlib.compress(data)


@pytest.mark.parametrize(
    ("encoding", "encode"),
    [
        ("gzip", __import__("gzip").compress),
        ("deflate", _deflate),
        ("GZip", __import__("gzip").compress),
    ],
)
async def test_a_compressed_json_body_is_decoded_then_validated(client, headers, encoding, encode):
    raw = json.dumps({"title": "squeezed", "stars": 3}).encode()
    resp = await client.post(
        "/notes",
        data=encode(raw),
        headers={**headers, "Content-Type": "application/json", "Content-Encoding": encoding},
    )
    assert resp.status == 201, await resp.text()
    assert (await resp.json())["title"] == "squeezed"
    bad = await client.post(
        "/notes",
        data=encode(json.dumps({"title": "x", "extra": 1}).encode()),
        headers={**headers, "Content-Type": "application/json", "Content-Encoding": encoding},
    )
    assert (await problem(bad, 422, "validation_failed"))["errors"] == {"extra": ["Unknown field."]}


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
async def test_garbage_declared_as_compressed_is_400_never_5xx(client, headers, encoding):
    resp = await client.post(
        "/notes",
        data=b"\x1f\x8b not really gzip at all",
        headers={**headers, "Content-Type": "application/json", "Content-Encoding": encoding},
    )
    await problem(resp, 400, "malformed_json")


async def test_a_truncated_gzip_body_is_400(client, headers):
    import gzip

    data = gzip.compress(json.dumps({"title": "cut"}).encode())[:-6]
    resp = await client.post(
        "/notes",
        data=data,
        headers={**headers, "Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    await problem(resp, 400, "malformed_json")


@pytest.mark.parametrize("encoding", ["br", "zstd", "compress", "gzip, br"])
async def test_other_encodings_are_415_problems(client, headers, encoding):
    resp = await client.post(
        "/notes",
        data=b"\x0b\x02\x80{}\x03",
        headers={**headers, "Content-Type": "application/json", "Content-Encoding": encoding},
    )
    data = await problem(resp, 415, "unsupported_content_encoding")
    assert encoding.split(",")[0] in data["detail"] or "not supported" in data["detail"]


async def test_a_gzip_bomb_is_413_while_decoding(aiohttp_client, make_settings, auth_header):
    import gzip

    client = await aiohttp_client(create_toy_app(make_settings(ToySettings, client_max_size=65536)))
    bomb = gzip.compress(b'{"title": "' + b"a" * 10_000_000 + b'"}')
    assert len(bomb) < 65536  # small on the wire, 10 MB decoded
    resp = await client.post(
        "/notes",
        data=bomb,
        headers={
            **auth_header(sub="cust-1"),
            "Content-Type": "application/json",
            "Content-Encoding": "gzip",
        },
    )
    await problem(resp, 413, "payload_too_large")


# --- api.md "text", "request id", smaller findings (hardening finding 10) ---------------------


@pytest.mark.parametrize("char", ["\x00", "\x07", "\x1b", "\x7f", "\x85", "\u202e", "\u2066", "\n"])
async def test_single_line_text_refuses_control_and_bidi_characters(client, headers, char):
    resp = await client.post("/notes", json={"title": f"bad{char}title"}, headers=headers)
    data = await problem(resp, 422, "validation_failed")
    assert data["errors"] == {"title": ["Control characters are not allowed."]}


async def test_unknown_query_parameters_are_named_as_such_on_a_route_with_a_query_schema(
    client, headers
):
    resp = await client.get("/notes?foo=1", headers=headers)
    data = await problem(resp, 422, "validation_failed")
    assert data["errors"] == {"foo": ["Unknown query parameter."]}


async def test_no_response_names_the_server_software(client, headers):
    for resp in (
        await client.get("/health"),
        await client.get("/notes", headers=headers),
        await client.get("/nowhere"),
        await client.get("/whoami"),
    ):
        assert "aiohttp" not in resp.headers.get("Server", "")
        assert "Python" not in resp.headers.get("Server", "")
