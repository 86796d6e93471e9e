"""Hypothesis against the file service's parsers of client input (issue 11, "make it
permanent"): whatever a client sends in the tus headers, the multipart filename or the Range
header, the answer is a value within the rules or one of the declared problems, never another
exception (which the chassis would turn into a 500)."""

from __future__ import annotations

import unicodedata

from aiohttp.test_utils import make_mocked_request
from hypothesis import given, settings
from hypothesis import strategies as st

from svc_core import Problem
from svc_files import tus
from svc_files.filenames import clean_filename, content_disposition
from svc_files.ranges import Unsatisfiable, etag_matches, requested_range

HEADER_TEXT = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=80
) | st.sampled_from(["", "0", "-1", "1e3", " 5", "5 ", "0x10", "99999999999999999999", "١٢"])
FAST = settings(max_examples=300, deadline=None)


def _request(headers: dict[str, str]):  # type: ignore[no-untyped-def]
    return make_mocked_request("POST", "/files/uploads", headers=headers)


@FAST
@given(value=HEADER_TEXT)
def test_upload_length_is_a_bounded_integer_or_a_problem(value: str) -> None:
    try:
        length = tus.upload_length(_request({"Upload-Length": value}), limit=1000)
    except Problem:
        return
    assert isinstance(length, int)
    assert 1 <= length <= 1000
    assert value == str(length)  # only the plain decimal spelling is accepted


@FAST
@given(value=HEADER_TEXT)
def test_upload_offset_is_a_non_negative_integer_or_a_problem(value: str) -> None:
    try:
        offset = tus.upload_offset(_request({"Upload-Offset": value}))
    except Problem:
        return
    assert isinstance(offset, int)
    assert offset >= 0


METADATA = st.text(max_size=120) | st.lists(
    st.tuples(
        st.text(alphabet="abcdefghij_ ,", min_size=0, max_size=8),
        st.text(alphabet="QUJDZGVm=+/ ,", max_size=12),
    ),
    max_size=4,
).map(lambda pairs: ",".join(f"{k} {v}" for k, v in pairs))


@FAST
@given(value=METADATA)
def test_upload_metadata_parses_to_strings_or_is_a_problem(value: str) -> None:
    try:
        parsed = tus.metadata(_request({"Upload-Metadata": value}))
    except (Problem, UnicodeError):  # a non-ASCII header cannot even reach aiohttp's parser
        return
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in parsed.items())


@FAST
@given(raw=st.none() | st.text(max_size=400))
def test_a_cleaned_filename_follows_api_md(raw: str | None) -> None:
    name = clean_filename(raw)
    assert name
    assert len(name.encode("utf-8")) <= 255
    assert "/" not in name
    assert "\\" not in name
    assert not any(unicodedata.category(c) in ("Cc", "Cf") for c in name)
    header = content_disposition(name)
    assert header.startswith("attachment; filename*=UTF-8''")
    assert header.isascii()


@FAST
@given(header=st.none() | st.text(max_size=60), size=st.integers(min_value=0, max_value=10**6))
def test_a_range_is_within_the_file_or_unsatisfiable(header: str | None, size: int) -> None:
    try:
        wanted = requested_range(header, size, if_range=None, etag='"x"')
    except Unsatisfiable:
        return
    if wanted is None:
        return
    assert 0 <= wanted.start < size
    assert 1 <= wanted.length <= size - wanted.start


@FAST
@given(header=st.none() | st.text(max_size=80))
def test_if_none_match_never_fails(header: str | None) -> None:
    assert etag_matches(header, '"abc"') in (True, False)
