"""Compiled response schemas (svc_core.render) render exactly what ``schema.dump`` renders."""

from __future__ import annotations

import datetime as dt
import json
import types
import uuid
from decimal import Decimal
from typing import Any

import marshmallow as ma
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from svc_core import Bool, Email, Id, Int, Schema, Str, Timestamp, fields
from svc_core.render import compile_dump, dumper, json_bytes
from svc_core.testing.render import assert_same_dump, objects_for

from .toy import routes as toy_routes


class Line(Schema):
    sku = Str()
    qty = Int()


class Everything(Schema):
    id = Id()
    name = fields.String(data_key="displayName")
    count = fields.Integer(dump_default=7)
    count_text = fields.Integer(as_string=True)
    flag = fields.Boolean()
    flag2 = Bool()
    raw = fields.Raw()
    when = Timestamp()
    plain_time = fields.DateTime()
    price = fields.Float()
    amount = fields.Decimal()
    ref = fields.UUID()
    email = Email()
    home = fields.Url()
    owner = fields.String(attribute="owner_id")
    first = fields.Nested(Line)
    lines = fields.List(fields.Nested(Line))
    many_lines = fields.Nested(Line, many=True)
    only_sku = fields.Nested(Line, only=("sku",))
    tags = fields.List(fields.String())
    grid = fields.List(fields.List(fields.Integer()))
    stamped = fields.String(dump_default=lambda: "default")
    secret = fields.String(load_only=True)


class WithHook(Schema):
    a = fields.String()

    @ma.post_dump
    def upper(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return {k: v.upper() for k, v in data.items() if isinstance(v, str)}


class WithMethod(Schema):
    a = fields.Method("get_a")

    def get_a(self, obj: Any) -> str:
        return "a"


class WithDotted(Schema):
    city = fields.String(attribute="address.city")


def test_simple_schemas_compile_and_others_fall_back_to_dump() -> None:
    assert compile_dump(Everything()) is not None
    assert compile_dump(WithDotted()) is not None
    assert compile_dump(WithHook()) is None
    assert compile_dump(WithMethod()) is None
    schema = WithHook()
    assert dumper(schema) == schema.dump  # the fallback: marshmallow itself
    assert dumper(schema)({"a": "x"}) == {"a": "X"}


def test_a_compiled_dump_follows_marshmallows_rules() -> None:
    dump = compile_dump(Everything())
    assert dump is not None
    when = dt.datetime(2026, 11, 27, 10, 0, 0, 123456, tzinfo=dt.UTC)
    obj = {
        "_id": "n1",
        "name": "x",
        "flag": "false",
        "owner_id": "c1",
        "when": when,
        "first": {"sku": "a", "qty": 2, "extra": 1},
        "lines": [{"sku": "b"}],
        "tags": None,
        "secret": "never shown",
    }
    out = dump(obj)
    assert out == Everything().dump(obj)
    assert out["id"] == "n1"
    assert out["displayName"] == "x"
    assert out["owner"] == "c1"
    assert out["count"] == 7
    assert out["stamped"] == "default"
    assert out["when"] == "2026-11-27T10:00:00.123Z"
    assert out["first"] == {"sku": "a", "qty": 2}
    assert out["lines"] == [{"sku": "b"}]
    assert "secret" not in out
    assert "raw" not in out
    assert dump(types.SimpleNamespace(**obj)) == out  # attributes as well as keys
    assert compile_dump(WithDotted())({"address": {"city": "Oslo"}}) == {"city": "Oslo"}


def test_a_many_schema_dumps_a_list() -> None:
    dump = compile_dump(Line(many=True))
    assert dump is not None
    assert dump([{"sku": "a"}, {"qty": 1}]) == Line(many=True).dump([{"sku": "a"}, {"qty": 1}])


def _response_schemas() -> list[tuple[str, ma.Schema]]:
    found = [("Everything", Everything()), ("WithDotted", WithDotted())]
    for spec in toy_routes:
        schema = spec.schema_instance("response")
        if schema is not None:
            found.append((f"toy {spec.method} {spec.path}", schema))
    return found


@pytest.mark.parametrize(
    ("name", "schema"), _response_schemas(), ids=[n for n, _ in _response_schemas()]
)
@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(data=st.data())
def test_compiled_dump_equals_schema_dump(
    name: str, schema: ma.Schema, data: st.DataObject
) -> None:
    assert_same_dump(schema, data.draw(objects_for(schema)))


@given(
    st.recursive(
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner),
        max_leaves=10,
    )
)
def test_json_bytes_is_the_same_json(value: Any) -> None:
    assert json.loads(json_bytes(value)) == json.loads(json.dumps(value))


def test_json_bytes_encodes_what_orjson_refuses_as_json_would() -> None:
    assert json.loads(json_bytes({"big": 2**70})) == {"big": 2**70}
    assert json.loads(json_bytes({1: "a"})) == {"1": "a"}
    assert json_bytes({"s": "\ud800"}) == b'{"s":"\\ud800"}'
    with pytest.raises(TypeError):
        json_bytes({"x": object()})
    assert json.loads(json_bytes({"u": uuid.UUID(int=1), "d": str(Decimal("1.5"))}))


def test_json_bytes_writes_non_finite_numbers_as_null_never_invalid_json() -> None:
    assert json_bytes({"x": float("inf"), "y": float("nan")}) == b'{"x":null,"y":null}'
