"""Hypothesis against the chassis' request pipeline (tests/svc_core/toy.py): random methods,
paths, query strings, bodies, content types and encodings, and headers, over a real socket.
Whatever arrives, the answer is never a 5xx, and every 4xx is problem+json whose ``status`` is
the response's and whose ``request_id`` is its ``X-Request-ID``."""

from __future__ import annotations

import gzip
import http.client
import json
import zlib
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
from hypothesis import given, seed, settings
from hypothesis import strategies as st

from tests.fuzz import conftest
from tests.security.harness import Running, running_services
from tests.svc_core import toy

# every toy route but /boom, which raises on purpose (the 500 path has its own tests)
PATHS = ["/notes", "/notes/ping", "/public/hello", "/whoami", "/health", "/nowhere", "/notes/x"]
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


@pytest.fixture(scope="module")
def toy_service() -> Iterator[Running]:
    with running_services({"toy": toy.service}, extra={"toy": {"slow_seconds": 0.0}}) as running:
        yield running


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=12,
)
note_like = st.fixed_dictionaries(
    {},
    optional={
        "title": st.text(max_size=120) | json_values,
        "stars": st.integers(-3, 9) | json_values,
        "tags": st.lists(st.text(max_size=25), max_size=3) | json_values,
        "owner": st.text(max_size=10),
        "id": st.text(max_size=10),
    },
)
bodies = st.one_of(
    st.just(b""),
    st.binary(max_size=200),
    json_values.map(lambda v: json.dumps(v).encode()),
    note_like.map(lambda v: json.dumps(v).encode()),
    st.text(max_size=100).map(lambda t: t.encode("utf-8", "surrogatepass")),
)
query_strings = st.one_of(
    st.just(""),
    st.dictionaries(
        st.sampled_from(["limit", "cursor", "jwt", "foo", "limit[]", ""]) | st.text(max_size=8),
        st.text(max_size=20) | st.integers(-200, 200).map(str),
        max_size=3,
    ).map(lambda d: "&".join(f"{quote(k)}={quote(v)}" for k, v in d.items())),
    st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=40),
)
visible = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60)
token_kinds = st.sampled_from(["valid", "none", "garbage", "padded", "extra", "query"])


def _encode(body: bytes, encoding: str | None) -> bytes:
    if encoding in ("gzip", "x-gzip"):
        return gzip.compress(body)
    if encoding == "deflate":
        return zlib.compress(body)
    return body


# the pipeline is cheap to hit: eight times the per-operation budget (120 cases in CI)
@seed(conftest.SEED)
@settings(max_examples=settings.default.max_examples * 8)
@given(
    method=st.sampled_from(METHODS),
    path=st.sampled_from(PATHS),
    query=query_strings,
    body=bodies,
    content_type=st.sampled_from(
        [None, "application/json", "text/plain", "application/json; charset=latin-1", "a/b"]
    ),
    encoding=st.sampled_from([None, "gzip", "deflate", "br", "x-gzip", "identity, gzip"]),
    encode=st.booleans(),
    token=token_kinds,
    # any text a header line can carry: a bare CR or LF would end the line (http.client refuses
    # to send it); malformed header lines are the runner's, tested in tests/svc_core/test_app.py
    # (test_invalid_http_is_a_problem_that_echoes_nothing_and_logs_no_header)
    request_id=st.none() | visible | st.text(st.characters(exclude_characters="\r\n"), max_size=5),
    extra=st.dictionaries(
        st.sampled_from(["Accept", "Origin", "X-Forwarded-For", "Range", "If-None-Match"]),
        visible,
        max_size=2,
    ),
)
def test_the_pipeline_never_fails_and_always_answers_problems(
    toy_service: Running,
    method: str,
    path: str,
    query: str,
    body: bytes,
    content_type: str | None,
    encoding: str | None,
    encode: bool,
    token: str,
    request_id: str | None,
    extra: dict[str, str],
) -> None:
    headers: dict[str, str] = dict(extra)
    valid = toy_service.token()
    if token == "valid":
        headers["Authorization"] = f"Bearer {valid}"
    elif token == "garbage":
        headers["Authorization"] = "Bearer x.y.z"
    elif token == "padded":
        headers["Authorization"] = f"Bearer {valid}=="
    elif token == "extra":
        headers["Authorization"] = f"Bearer {valid}.e30"
    elif token == "query":
        query = f"{query}&jwt={valid}" if query else f"jwt={valid}"
    if content_type is not None:
        headers["Content-Type"] = content_type
    if encoding is not None:
        headers["Content-Encoding"] = encoding
        if encode:
            body = _encode(body, encoding)
    if request_id is not None:
        headers["X-Request-ID"] = request_id.encode("utf-8", "replace").decode("latin-1")
    status, response_headers, data = _send(
        toy_service.urls["toy"], method, path, query, body, headers
    )
    assert status < 500, (status, data[:300])
    if status >= 400 and method != "HEAD":
        assert response_headers.get("content-type", "").startswith("application/problem+json")
        problem: dict[str, Any] = json.loads(data)
        assert problem["status"] == status
        assert problem["request_id"] == response_headers["x-request-id"]
        assert "Traceback" not in data.decode("utf-8", "replace")
    assert response_headers.get("server") == "svc"


def _send(
    base: str, method: str, path: str, query: str, body: bytes, headers: dict[str, str]
) -> tuple[int, dict[str, str], bytes]:
    url = urlsplit(base)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    try:
        target = f"{path}?{query}" if query else path
        conn.request(method, target, body=body or None, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
    finally:
        conn.close()
