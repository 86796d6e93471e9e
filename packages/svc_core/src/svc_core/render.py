"""Rendering responses: response schemas compiled to plain functions, and JSON as bytes.

A route's ``response`` schema is the single source of truth for what a response carries.
``schema.dump`` walks its fields through several layers of generic calls per field, which on a
small route costs more than the rest of the chassis together. So at startup
:func:`compile_dump` turns a schema whose fields are all of kinds it knows (String, Integer,
Boolean, Raw, svc_core's Str/Int/Bool/Email/Id/Timestamp, Nested and List of such, with
``attribute``, ``data_key`` and ``dump_default``) into one generated function that builds the
same dict, by the same rules (marshmallow's ``get_value``: ``obj[key]``, else ``obj.key``; a
missing value takes ``dump_default`` or is left out). Anything else (dump hooks, a custom
``get_attribute``, ``Method``/``Function``/``Pluck`` fields, an overridden ``serialize``)
falls back to ``schema.dump``. tests/svc_core/test_render.py checks the equivalence on every
response schema of every registered service with generated data.

:func:`json_bytes` encodes with orjson (about 5x faster than ``json.dumps`` on a small dict),
and with the json module for what orjson refuses (integers past 64 bits, lone surrogates,
non-string keys), so nothing that rendered before fails now.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import orjson
from marshmallow import Schema, fields, missing
from marshmallow.utils import ensure_text_type, get_value

Dump = Callable[[Any], Any]

__all__ = ["Dump", "compile_dump", "dumper", "json_bytes"]


def json_bytes(data: Any) -> bytes:
    """``data`` as compact UTF-8 JSON."""
    try:
        return orjson.dumps(data)
    except TypeError:  # orjson.JSONEncodeError: what json may still encode (or refuse alike)
        return json.dumps(data, separators=(",", ":")).encode("ascii")


_PLAIN_FIELDS = (
    fields.String,
    fields.Integer,
    fields.Boolean,
    fields.Raw,
    fields.DateTime,
    fields.Float,
    fields.Decimal,
    fields.UUID,
    fields.Email,
    fields.Url,
    fields.Nested,
    fields.List,
)


class _NotCompilable(Exception):
    pass


def dumper(schema: Schema) -> Dump:
    """A function that dumps one object as ``schema.dump`` does: compiled when it can be."""
    compiled = compile_dump(schema)
    return compiled if compiled is not None else schema.dump


def compile_dump(schema: Schema) -> Dump | None:
    """``schema.dump`` (one object, or a list when ``schema.many``) as one generated function,
    or ``None`` when the schema uses something it does not reproduce exactly."""
    try:
        builder = _Builder()
        name = builder.schema(schema)
    except _NotCompilable:
        return None
    source = "\n".join(builder.lines)
    namespace = dict(builder.namespace)
    # the source is generated here from the schema's own field names (repr-quoted), no input
    exec(compile(source, f"<compiled dump of {type(schema).__name__}>", "exec"), namespace)  # noqa: S102
    single: Dump = namespace[name]
    if schema.many:
        return lambda obj: [single(each) for each in obj]
    return single


def _overrides(obj: Any, base: type, *names: str) -> bool:
    cls = type(obj)
    return any(getattr(cls, n) is not getattr(base, n) for n in names)


class _Builder:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.namespace: dict[str, Any] = {
            "_M": missing,
            "_get_value": get_value,
            "_text": ensure_text_type,
        }
        self._count = 0
        self._depth = 0

    def _bind(self, value: Any, prefix: str) -> str:
        self._count += 1
        name = f"_{prefix}{self._count}"
        self.namespace[name] = value
        return name

    def schema(self, schema: Schema) -> str:
        self._depth += 1
        if self._depth > 20:  # a schema that nests itself: leave it to marshmallow
            raise _NotCompilable
        if not isinstance(schema, Schema) or _overrides(
            schema, Schema, "dump", "_serialize", "get_attribute"
        ):
            raise _NotCompilable
        hooks = getattr(schema, "_hooks", {})
        if hooks.get("pre_dump") or hooks.get("post_dump") or schema.dict_class is not dict:
            raise _NotCompilable
        body: list[str] = ["    out = {}", "    plain = type(obj) is dict"]
        for attr_name, field in schema.dump_fields.items():
            key = field.data_key if field.data_key is not None else attr_name
            attr = attr_name if field.attribute is None else field.attribute
            body += self._field(field, key, attr, attr_name)
        body.append("    return out")
        name = self._bind(None, "dump")
        self.lines += [f"def {name}(obj):", *body, ""]
        self._depth -= 1
        return name

    def _field(self, field: fields.Field[Any], key: str, attr: str, attr_name: str) -> list[str]:
        if not isinstance(field, _PLAIN_FIELDS) or _overrides(
            field, fields.Field, "serialize", "get_value"
        ):
            raise _NotCompilable
        if not getattr(field, "_CHECK_ATTRIBUTE", True):
            raise _NotCompilable
        expr = self._value_expr(field, "v", attr_name)
        lines: list[str] = []
        if "." in attr:
            lines.append(f"    v = _get_value(obj, {attr!r}, _M)")
        else:
            lines += [
                f"    v = obj.get({attr!r}, _M) if plain else _M",
                "    if v is _M:",
                f"        v = _get_value(obj, {attr!r}, _M)",
            ]
        default = field.dump_default
        if default is not missing:
            ref = self._bind(default, "default")
            call = f"{ref}()" if callable(default) else ref
            lines += ["    if v is _M:", f"        v = {call}"]
        lines += ["    if v is not _M:", f"        out[{key!r}] = {expr}"]
        return lines

    def _value_expr(self, field: fields.Field[Any], v: str, attr_name: str) -> str:
        """An expression equal to ``field._serialize(v, ...)``."""
        cls = type(field)
        if isinstance(field, fields.Nested):
            if _overrides(field, fields.Nested, "_serialize"):
                raise _NotCompilable
            nested = field.schema
            inner = self.schema(nested)
            if nested.many or field.many:
                return f"(None if {v} is None else [{inner}(e) for e in {v}])"
            return f"(None if {v} is None else {inner}({v}))"
        if isinstance(field, fields.List):
            if _overrides(field, fields.List, "_serialize"):
                raise _NotCompilable
            item = self._value_expr(field.inner, "e", attr_name)
            return f"(None if {v} is None else [{item} for e in {v}])"
        if cls._serialize is fields.String._serialize:
            return f"(None if {v} is None else {v} if type({v}) is str else _text({v}))"
        if cls._serialize is fields.Raw._serialize:
            return v
        if (
            isinstance(field, fields.Integer)
            and cls._serialize is fields.Number._serialize
            and getattr(cls, "_format_num", None) is fields.Number._format_num
            and not field.as_string
            and field.num_type is int
        ):
            return f"(None if {v} is None else {v} if type({v}) is int else int({v}))"
        # any other known kind: its own _serialize, minus marshmallow's per-field layers
        ref = self._bind(field._serialize, "ser")
        return f"{ref}({v}, {attr_name!r}, obj)"
