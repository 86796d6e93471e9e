"""Checking compiled response schemas against ``schema.dump`` (svc_core.render) with hypothesis.

    @given(data=st.data())
    def test_same_dump(data):
        assert_same_dump(MySchema(), data.draw(objects_for(MySchema())))

:func:`objects_for` draws what a handler might return for a schema: dicts or attribute objects,
each field present, absent, ``None``, of its kind or of another, nested schemas and lists
recursively, plus keys the schema does not know.
"""

from __future__ import annotations

import datetime as dt
import types
from typing import Any

from hypothesis import strategies as st
from marshmallow import Schema, fields

from svc_core.render import compile_dump

__all__ = ["assert_same_dump", "objects_for", "outcome"]

_ANY_SCALAR = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=8),
)
_JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8)),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=6,
)
_TIMES = st.datetimes(
    min_value=dt.datetime(1970, 1, 2), max_value=dt.datetime(9999, 1, 1), timezones=st.just(dt.UTC)
)


def _value(field: fields.Field[Any], depth: int) -> st.SearchStrategy[Any]:
    if isinstance(field, fields.Nested):
        inner = objects_for(field.schema, depth + 1) if depth < 3 else st.none()
        many = field.many or field.schema.many
        return st.none() | (st.lists(inner, max_size=3) if many else inner)
    if isinstance(field, fields.List):
        return st.none() | st.lists(_value(field.inner, depth + 1), max_size=3)
    if isinstance(field, fields.DateTime):
        return st.none() | _TIMES
    if isinstance(field, fields.Boolean):
        return _ANY_SCALAR | st.sampled_from(["true", "false", "1", "0", "yes", "off", 1, 0, 2])
    if isinstance(field, fields.Number):
        return _ANY_SCALAR | st.integers().map(str)
    if isinstance(field, fields.Raw) and type(field) is fields.Raw:
        return _JSON
    if isinstance(field, fields.UUID):
        return st.none() | st.uuids() | st.text(max_size=4)
    return _ANY_SCALAR | st.binary(max_size=4)


def objects_for(schema: Schema, depth: int = 0) -> st.SearchStrategy[Any]:
    """Objects a handler might return for ``schema`` (see the module docstring)."""
    optional: dict[str, st.SearchStrategy[Any]] = {}
    for name, field in schema.dump_fields.items():
        key = field.attribute or name
        if "." not in key:
            optional[key] = _value(field, depth)
    extra = st.dictionaries(st.sampled_from(["extra", "_id", "owner", "secret"]), _ANY_SCALAR)
    dicts = st.builds(
        lambda known, more: {**more, **known},
        st.fixed_dictionaries({}, optional=optional),
        extra,
    )
    return st.one_of(dicts, dicts.map(lambda d: types.SimpleNamespace(**d)))


def outcome(dump: Any, obj: Any) -> tuple[str, Any]:
    """What ``dump(obj)`` gives: ``("ok", result)`` or ``("error", exception type)``."""
    try:
        return "ok", dump(obj)
    except Exception as exc:
        return "error", type(exc)


def assert_same_dump(schema: Schema, obj: Any) -> None:
    """The compiled dump of ``schema`` (when it compiles) gives what ``schema.dump`` gives,
    keys in the same order, or fails the same way."""
    compiled = compile_dump(schema)
    if compiled is None:
        return
    expected, got = outcome(schema.dump, obj), outcome(compiled, obj)
    assert got == expected, (obj, expected, got)
    if expected[0] == "ok" and isinstance(expected[1], dict):
        assert list(got[1]) == list(expected[1])
