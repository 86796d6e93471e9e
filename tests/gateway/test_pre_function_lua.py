"""The pre-function's Lua, as kong.yml ships it, run under LuaJIT 2.1 (what OpenResty embeds)
against a small stand-in for the Kong PDK, agrees with the local gateway's native version on
every input of a corpus: the same Authorization kept, rewritten or dropped, the same
X-Request-ID kept or dropped, and no exit.

The stand-in behaves as K:kong/pdk (3.9.1) does for what the snippet calls:
``kong.request.get_header`` returns the first value of a header (K:kong/tools/http.lua),
``ngx.var.http_x_request_id`` all values joined with ", " (nginx 1.23+),
``kong.service.request.set_header`` replaces every value, ``clear_header`` removes them all,
and both are visible to later reads (the README explains why).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp.test_utils import make_mocked_request
from lupa import luajit21
from multidict import CIMultiDict

from svc_gateway.config import parse
from svc_gateway.plugins import Context
from svc_gateway.plugins.pre_function import SNIPPET, PreFunction
from tests.gateway.conftest import SERVICES

HARNESS = """
return function(snippet, headers)
  local function first(name)
    local values = headers[name]
    return values and values[1] or nil
  end
  local exited = nil
  local env = {
    string = string, type = type, tostring = tostring,
    kong = {
      request = { get_header = function(name) return first(name:lower()) end },
      service = { request = {
        set_header = function(name, value) headers[name:lower()] = { value } end,
        clear_header = function(name) headers[name:lower()] = nil end,
      } },
      response = { exit = function(status, body) exited = status end },
    },
    ngx = { var = setmetatable({}, { __index = function(_, key)
      local name = key:gsub("^http_", ""):gsub("_", "-")
      local values = headers[name]
      return values and table.concat(values, ", ") or nil
    end }) },
  }
  local chunk = assert(loadstring(snippet, "pre-function"))
  setfenv(chunk, env)
  chunk()
  return exited
end
"""


@pytest.fixture(scope="module")
def lua_run() -> Callable[[str, dict[str, list[str]]], tuple[int | None, dict[str, list[str]]]]:
    lua = luajit21.LuaRuntime(unpack_returned_tuples=True)
    assert str(lua.eval("jit.version")).startswith("LuaJIT 2.1")
    harness = lua.execute(HARNESS)

    def run(snippet: str, headers: dict[str, list[str]]) -> tuple[int | None, dict[str, list[str]]]:
        table = lua.table_from({k: lua.table_from(v) for k, v in headers.items()})
        exited = harness(snippet, table)
        after = {str(k): [str(v) for v in values.values()] for k, values in table.items()}
        return exited, after

    return run


@pytest.fixture
def snippet(render: Callable[..., Path]) -> str:
    document = yaml.safe_load(render(dict.fromkeys(SERVICES, "h:1")).read_text())
    plugin = next(p for p in document["plugins"] if p["name"] == "pre-function")
    code: str = plugin["config"]["access"][0]
    return code


async def native(plugin: PreFunction, headers: dict[str, list[str]]) -> dict[str, list[str]]:
    raw = CIMultiDict((name, value) for name, values in headers.items() for value in values)
    request = make_mocked_request("GET", "/orders", headers=raw)
    config = parse({"_format_version": "3.0", "services": [{"name": "s", "host": "h"}]})
    ctx = Context(
        request=request,
        route=None,  # type: ignore[arg-type]
        service=config.services["s"],
        kong_request_id="k",
        client_ip="127.0.0.1",
        upstream_headers=CIMultiDict(raw),
        request_headers=CIMultiDict(raw),
    )
    assert await plugin.access(ctx) is None
    after: dict[str, list[str]] = {}
    for name, value in ctx.request_headers.items():
        after.setdefault(name.lower(), []).append(value)
    assert sorted(ctx.upstream_headers.items()) == sorted(ctx.request_headers.items())
    return after


def authorization_corpus(token: str) -> list[str]:
    rng = random.Random(11)
    head, claims, signature = token.split(".")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    values = [
        f"Bearer {token}",
        f"bearer {token}",
        f"BEARER {token}",
        f"Bearer {token}==",
        f"Bearer {token}.x",
        f"Bearer {token}=.x",
        f"Bearer\t{token}",
        f"Bearer  {token}",
        f"x Bearer {token}",
        f"Bearer {head}.{claims}",
        f"Bearer {head}=.{claims}.{signature}",
        "Bearer QQ.QUI.QUJD",
        "Bearer Q.QUI.QUJD",
        "Bearer ..",
        "Bearer a.b.c",
        "Basic dXNlcjpwYXNz",
        "Bearer",
        "Bearer é.b.c",
    ]
    values += [f"Bearer {head}.{claims}.{signature[:-1]}{c}" for c in alphabet]
    for _ in range(300):
        pieces = [
            "".join(rng.choice(alphabet + "=.+/ ") for _ in range(rng.randint(0, 7)))
            for _ in range(rng.randint(1, 4))
        ]
        scheme = rng.choice(["Bearer ", "bearer ", "Bearer  ", "BEARER\t", "Token "])
        values.append(scheme + ".".join(pieces))
    return values


def request_id_corpus() -> list[list[str]]:
    rng = random.Random(5)
    ids: list[list[str]] = [
        ["abc"],
        ["a" * 200],
        ["a" * 201],
        [""],
        ["with space"],
        ["tab\there"],
        ["caf\u00e9"],
        ["!~"],
        ["one", "two"],
        ["x" * 8000],
    ]
    for _ in range(200):
        ids.append(
            [
                "".join(
                    chr(rng.randint(0x1F, 0x80)) for _ in range(rng.choice([1, 5, 199, 200, 201]))
                )
            ]
        )
    return ids


async def test_lua_and_native_agree_on_authorization(
    lua_run: Any, snippet: str, make_token: Any
) -> None:
    plugin = PreFunction({"access": [SNIPPET]} | {phase: [] for phase in _other_phases()}, "global")
    corpus = authorization_corpus(make_token())
    kept = 0
    for value in corpus:
        headers = {"authorization": [value]}
        exited, after_lua = lua_run(snippet, headers)
        assert exited is None, value
        after_native = await native(plugin, headers)
        assert after_lua == after_native, value
        kept += "authorization" in after_lua
    assert 0 < kept < len(corpus)  # the corpus has both outcomes


async def test_lua_and_native_agree_on_request_ids(lua_run: Any, snippet: str) -> None:
    plugin = PreFunction({"access": [SNIPPET]} | {phase: [] for phase in _other_phases()}, "global")
    kept = 0
    for ids in request_id_corpus():
        headers = {"x-request-id": ids}
        exited, after_lua = lua_run(snippet, headers)
        assert exited is None, ids
        assert after_lua == await native(plugin, headers), ids
        kept += "x-request-id" in after_lua
    assert kept > 10


def _other_phases() -> list[str]:
    return ["certificate", "rewrite", "header_filter", "body_filter", "log"]
