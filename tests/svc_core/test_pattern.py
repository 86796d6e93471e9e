"""``svc_core.Pattern``: a regex rule validated with ``re.fullmatch`` and published in
/openapi.json as ``^(?:...)$``, which ECMA-262 (JSON Schema's regex dialect) reads the same way
(issue 11 item 9; the contract over every registered service is tests/security/test_contract.py)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pytest
from marshmallow import ValidationError

from svc_core import Pattern, Schema, Str
from svc_core.openapi import build_spec
from svc_core.routing import RouteTable, route_spec
from svc_core.schema import CONTROLS, text_pattern

DIGITS = Pattern("[0-9]{3,4}", error="Must be 3 or 4 digits.")


@pytest.mark.parametrize("value", ["123", "1234"])
def test_a_whole_value_that_matches_is_accepted(value: str) -> None:
    assert DIGITS(value) == value


@pytest.mark.parametrize(
    "value", ["", "12", "12345", "123\n", "\n123", "123\r", "123\n\n", "12a", "\u0661\u0662\u0663"]
)
def test_anything_else_is_refused_with_the_fields_message(value: str) -> None:
    with pytest.raises(ValidationError, match=r"Must be 3 or 4 digits\."):
        DIGITS(value)


def test_a_non_string_is_refused_not_a_type_error() -> None:
    with pytest.raises(ValidationError):
        DIGITS(123)


def test_the_published_pattern_anchors_the_body_ecma_style() -> None:
    assert DIGITS.regex.pattern == "^(?:[0-9]{3,4})$"
    assert Pattern("a|b").regex.pattern == "^(?:a|b)$"  # the group keeps | inside the anchors


class Card(Schema):
    cvc = Str(required=True, validate=DIGITS)


routes = RouteTable()


@routes.post("/cards", body=Card, public=True)
async def add_card(request: object) -> None:  # pragma: no cover - only its spec is read
    return None


def test_openapi_publishes_the_ecma_form() -> None:
    spec = route_spec(add_card)
    assert spec is not None
    document = build_spec("toy", "1", [spec])
    cvc = document["components"]["schemas"]["Card"]["properties"]["cvc"]
    assert cvc["pattern"] == "^(?:[0-9]{3,4})$"


def test_a_str_with_a_pattern_publishes_the_pattern_not_the_text_rule() -> None:
    field = Str(line=True, validate=DIGITS)
    assert "pattern" not in field.metadata


@pytest.mark.parametrize(
    "body",
    [
        r"[0-9]+\Z",  # Python's end of string: not ECMA-262
        r"\A[0-9]+",
        r"\d+",  # any Unicode digit in Python, ASCII in ECMA-262
        r"\w+",
        r"\s",
        "a.b",  # Python's . matches a carriage return, ECMA-262's does not
        "^[0-9]+$",  # anchors are Pattern's own
        "[0-9]+$",
        "(?P<n>[0-9])",
        "(?<=a)b",
        "(?i)abc",
        "(?#comment)a",
        "a{",
        "a{,3}",
        "a*+",
        "a{2}+",
        "[]a]",
        "[a[b]",
        "a]",
        r"\-",
        r"\U0001F600",
        "[0-9",
    ],
)
def test_a_body_python_and_ecma_262_read_differently_is_refused_at_import(body: str) -> None:
    with pytest.raises(ValueError, match="Pattern"):
        Pattern(body)


PORTABLE = [
    "[0-9]{12,19}",
    "[A-Za-z0-9_.-]+",
    "[A-Za-z0-9:_.-]{1,200}",
    r"[^\u0000-\u001f]*",
    r"[\-a]\.\x41",
    "(?:ab|cd)(?=c)(?!d)[a-z]*?",
    r"\(\)\[\]\{\}\|\/\^\$\*\+\?\\",
]
PROBES = ["", "a", "ab", "abc", "cd", "123", "1234", "4242424242424242", "A.b-c", "a:b", "-a.A"]
PROBES += [f"{p}\n" for p in PROBES] + [f"{p}\r" for p in PROBES] + ["\u00e9", "x" * 300]
PROBES += ["()[]{}|/^$*+?\\", "\u0661"]


def test_portable_bodies_read_alike_in_python_and_ecma_262() -> None:
    """node (V8) compiles each published pattern as ajv does (``u`` flag) and answers, for each
    probe, what a JSON Schema tool answers; the validator answers the same."""
    node = shutil.which("node")
    if node is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("node is not installed (.ci/run installs nodejs)")
        pytest.skip("node is not installed: no ECMA-262 engine")
    validators = [Pattern(body) for body in PORTABLE]
    script = (
        'const [patterns, probes] = JSON.parse(require("fs").readFileSync(0, "utf8"));'
        "const test = (p) => probes.map((s) => new RegExp(p, 'u').test(s));"
        "console.log(JSON.stringify(patterns.map(test)));"
    )
    result = subprocess.run(
        [node, "-e", script],
        input=json.dumps([[v.regex.pattern for v in validators], PROBES]),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    ecma = json.loads(result.stdout)
    disagree = []
    for validator, answers in zip(validators, ecma, strict=True):
        for probe, published in zip(PROBES, answers, strict=True):
            try:
                validator(probe)
                accepted = True
            except ValidationError:
                accepted = False
            if accepted != published:
                disagree.append((validator.regex.pattern, probe, accepted, published))
    assert not disagree, disagree


@pytest.mark.parametrize(
    ("value", "most", "matches"),
    [
        ("x", 1, True),
        ("  x\u3000", 1, True),
        ("xy", 1, False),
        ("x y", 3, True),
        (" x  y ", 3, False),  # "x  y" is 4 once trimmed
        ("xyz", 3, True),
        ("wxyz", 3, False),
        ("   ", 3, False),
        ("", None, False),
        (" \u00a0", None, False),
        ("\ufeff", None, True),  # not white space to str.isspace() (ECMA's \s says it is)
        ("a\x07", None, False),
        ("a\u202e", None, True),  # only what is refused is refused
    ],
)
def test_text_pattern(value: str, most: int | None, matches: bool) -> None:
    pattern = text_pattern(refused=CONTROLS, most=most)
    assert bool(re.fullmatch(pattern.removeprefix("^").removesuffix("$"), value)) is matches


def test_text_pattern_needs_bmp_code_points() -> None:
    with pytest.raises(ValueError, match="BMP"):
        text_pattern(refused=frozenset({0x1F600}))
