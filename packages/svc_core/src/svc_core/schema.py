"""Schema building blocks with strict types.

Strict types are what stop operator injection: ``{"username": {"$ne": null}}`` fails a string
field with a 422 instead of reaching a query. Unknown fields are rejected (marshmallow's RAISE).
"""

from __future__ import annotations

import functools
import re
from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

from svc_core.clock import to_rfc3339
from svc_core.errors import ValidationFailed, flatten_errors

__all__ = [
    "MAX_LIMIT",
    "Bool",
    "Email",
    "Id",
    "Int",
    "PageQuery",
    "Pattern",
    "QueryInt",
    "Schema",
    "Str",
    "Timestamp",
    "fields",
    "validate",
]

MAX_LIMIT = 100
DEFAULT_LIMIT = 20


class Schema(ma.Schema):
    """Base schema: unknown fields are errors, never ignored or stored."""

    class Meta:
        unknown = ma.RAISE


class Int(fields.Integer):
    """An integer that must be a JSON integer: no strings, floats or booleans."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("strict", True)
        super().__init__(**kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if isinstance(value, bool) or (self.strict and not isinstance(value, int)):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


class Bool(fields.Boolean):
    """A boolean that must be JSON ``true`` or ``false``."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


def _valid_unicode(field: fields.Field[Any], value: str) -> str:
    try:  # JSON can carry lone surrogates ("\ud800"); no store or encoder can keep them
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise field.make_error("unicode") from None
    return value


_UNICODE_ERROR: dict[str, str | list[Any] | dict[Any, Any]] = {"unicode": "Not valid Unicode text."}


_TEXT_ERRORS: dict[str, str | list[Any] | dict[Any, Any]] = {
    **_UNICODE_ERROR,
    "control": "Control characters are not allowed.",
}


# Code points by kind (all in the BMP): what the text rule refuses (api.md "text")
CONTROLS = frozenset([*range(0x20), *range(0x7F, 0xA0)])  # Unicode Cc
BIDI_CONTROLS = frozenset([*range(0x202A, 0x202F), *range(0x2066, 0x206A)])
_BIDI_CHARS = frozenset(map(chr, BIDI_CONTROLS))


def _class(points: frozenset[int]) -> str:
    """The body of a character class holding exactly ``points``, as ``\\uXXXX`` ranges."""
    parts, ordered = [], sorted(points)
    start = prev = ordered[0]
    for point in [*ordered[1:], None]:
        if point is not None and point == prev + 1:
            prev = point
            continue
        parts.append(f"\\u{start:04x}" + (f"-\\u{prev:04x}" if prev > start else ""))
        if point is not None:
            start = prev = point
    return "".join(parts)


# The text rule as JSON Schema patterns (ECMA-262): no Cc and no bidi controls, with line feed
# and tab allowed in multi-line text.
TEXT_PATTERNS = {
    allowed: f"^[^{_class((CONTROLS - {ord(c) for c in allowed}) | BIDI_CONTROLS)}]*$"
    for allowed in ("", "\n\t")
}


@functools.cache
def white_space() -> frozenset[int]:
    """White space as str.isspace() and str.strip() read it, in the BMP. ECMA-262's \\s differs
    (it has U+FEFF; it lacks U+001C-001F and U+0085), so text_pattern spells the set out.
    Computed on first use: only the services that publish such a pattern pay for it."""
    return frozenset(c for c in range(0x10000) if chr(c).isspace())


def text_pattern(*, refused: frozenset[int], most: int | None = None) -> str:
    """The JSON Schema pattern of text that holds none of ``refused`` and is not only white
    space; with ``most``, at most that many code points once trimmed (``str.strip()``).

    It reads the same in Python's ``re`` and ECMA-262, with no lookahead (schemathesis and
    hypothesis draw from it quickly): white space, then a character that is not white space,
    then (up to ``most - 2`` of) anything allowed and a last character that is not white space,
    then white space.
    """
    if not refused or max(refused) > 0xFFFF:
        raise ValueError("text_pattern: refused must be BMP code points, at least one")
    space = f"[{_class(white_space() - refused)}]*"
    visible = f"[^{_class(refused | white_space())}]"
    allowed = f"[^{_class(refused)}]"
    if most is None:
        return f"^{space}{visible}{allowed}*$"
    middle = "" if most == 1 else f"(?:{allowed}{{0,{most - 2}}}{visible})?"
    return f"^{space}{visible}{middle}{space}$"


def _control(value: str, allowed: str) -> bool:
    """Whether ``value`` holds a control character (Unicode Cc) or a bidirectional control
    (U+202A-U+202E, U+2066-U+2069) other than those in ``allowed`` (api.md "text")."""
    for char in value:
        if (char < " " or "\x7f" <= char <= "\x9f") and char not in allowed:
            return True
        if char in _BIDI_CHARS:
            return True
    return False


# What a Pattern may hold: the regex syntax Python's re and ECMA-262 (JSON Schema's dialect, as
# ajv compiles it: the "u" flag) read alike. Escapes: the syntax characters, \n \r \t \f \v, \uXXXX
# and \xXX; not \d \w \s \b (Unicode in Python, ASCII in ECMA-262) nor \A \Z (not ECMA-262).
_SYNTAX = frozenset("^$\\.*+?()[]{}|/")
_ESCAPE = re.compile(r"\\(?:[nrtfv]|u[0-9A-Fa-f]{4}|x[0-9A-Fa-f]{2})")
_QUANTIFIER = re.compile(r"\{[0-9]+(?:,[0-9]*)?\}")


def _unportable(body: str) -> str | None:
    """Why ``body`` would not mean the same to Python's ``re`` and to ECMA-262, or None."""
    in_class = False
    i = 0
    while i < len(body):
        char, after = body[i], body[i + 1 : i + 2]
        if char == "\\":
            if after in _SYNTAX or (in_class and after == "-"):
                i += 2
                continue
            escape = _ESCAPE.match(body, i)
            if escape is None:
                return f"the escape \\{after} (write a class such as [0-9], or escape syntax only)"
            i = escape.end()
            continue
        if in_class:
            if char == "[":
                return "'[' inside a class (escape it)"
            in_class = char != "]"
        elif char == "[":
            in_class = True
            i += 2 if after == "^" else 1
            if body[i : i + 1] == "]":
                return "']' first in a class (escape it)"
            continue
        elif char in "^$":
            return f"the anchor {char!r} (Pattern anchors the whole value itself)"
        elif char == ".":
            return "'.' (Python's matches a carriage return, ECMA-262's does not): use a class"
        elif char == "(" and after == "?" and body[i + 2 : i + 3] not in (":", "=", "!"):
            return "a group other than (?: (?= (?! (named, lookbehind, flags: Python-only)"
        elif char == "{":
            quantifier = _QUANTIFIER.match(body, i)
            if quantifier is None:
                return "a '{' that is not a quantifier (escape it)"
            i = quantifier.end()
            if body[i : i + 1] == "+":
                return "a possessive quantifier (Python-only)"
            continue
        elif char in "}]":
            return f"a lone {char!r} (escape it)"
        elif char in "*+?" and after == "+":
            return "a possessive quantifier (Python-only)"
        i += 1
    return "an unclosed class" if in_class else None


class Pattern(validate.Regexp):
    """A regex rule that /openapi.json states exactly as the validator applies it.

    ``Pattern("[0-9]{3,4}")`` accepts a value only when the whole value matches
    (``re.fullmatch``: no trailing line feed, which ``$`` under ``re.match`` lets by) and
    publishes ``^(?:[0-9]{3,4})$``, which ECMA-262 (the regex dialect of JSON Schema, read by
    schemathesis, ajv and client generators) reads the same way. ``body`` is unanchored and
    restricted to the syntax both read alike; anything else is a ``ValueError`` at import.
    """

    def __init__(self, body: str, *, error: str | None = None) -> None:
        reason = _unportable(body)
        if reason is not None:
            raise ValueError(f"Pattern({body!r}): {reason}")
        self.published: re.Pattern[str] = re.compile(f"^(?:{body})$")
        super().__init__(self.published, error=error)  # apispec publishes ``regex.pattern``

    def __call__(self, value: Any) -> Any:
        if not isinstance(value, str) or self.published.fullmatch(value) is None:
            raise ma.ValidationError(self._format_error(value))
        return value


class Str(fields.String):
    """A string of valid Unicode; with ``strip=True`` surrounding white space is removed
    before validators run. Text people read (api.md "text"): ``line=True`` refuses control
    and bidirectional control characters; ``lines=True`` likewise but keeps line feeds and
    tabs (a chat message)."""

    default_error_messages = _TEXT_ERRORS

    def __init__(
        self, *, strip: bool = False, line: bool = False, lines: bool = False, **kwargs: Any
    ) -> None:
        self.strip = strip
        self.allowed_controls: str | None = "\n\t" if lines else "" if line else None
        validators = kwargs.get("validate")
        has_pattern = any(
            isinstance(v, validate.Regexp)
            for v in (validators if isinstance(validators, list | tuple) else [validators])
        )
        if self.allowed_controls is not None and not has_pattern:
            # /openapi.json publishes the rule (a Regexp validator's own pattern already
            # leaves control characters out)
            metadata = dict(kwargs.pop("metadata", None) or {})
            metadata.setdefault("pattern", TEXT_PATTERNS[self.allowed_controls])
            kwargs["metadata"] = metadata
        super().__init__(**kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        result = _valid_unicode(self, super()._deserialize(value, attr, data, **kwargs))
        if self.allowed_controls is not None and _control(result, self.allowed_controls):
            raise self.make_error("control")
        return result.strip() if self.strip else result


class Timestamp(fields.DateTime):
    """A datetime rendered as api.md's time: RFC 3339 in UTC with ``Z`` and milliseconds."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return None if value is None else to_rfc3339(value)


def Id(**kwargs: Any) -> fields.String:
    """A document's ``_id`` rendered as ``id``."""
    return fields.String(attribute="_id", **kwargs)


class Email(fields.Email):
    """An email address of valid Unicode."""

    default_error_messages = _UNICODE_ERROR

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        return _valid_unicode(self, super()._deserialize(value, attr, data, **kwargs))


class QueryInt(fields.Integer):
    """An integer in a query string: ASCII digits only (no sign, spaces, ``_`` or other
    scripts' digits, all of which Python's ``int()`` would accept)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if not isinstance(value, str) or not value.isascii() or not value.isdigit():
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


class PageQuery(Schema):
    """``?limit=`` (1..100, default 20) and ``?cursor=``. Extend it for filters."""

    limit = QueryInt(load_default=DEFAULT_LIMIT, validate=validate.Range(min=1, max=MAX_LIMIT))
    cursor = fields.String(load_default=None, validate=validate.Length(min=1, max=512))


def load(schema: ma.Schema, data: Any, *, partial: bool = False) -> dict[str, Any]:
    """Run ``schema.load`` and turn its errors into a 422 with dotted paths."""
    try:
        result = schema.load(data, partial=partial)
    except ma.ValidationError as exc:
        raise ValidationFailed(flatten_errors(exc.messages)) from None
    if not isinstance(result, dict):  # many=True or post_load returning objects: not used here
        raise TypeError("schemas used for requests must load to a dict")
    return result
