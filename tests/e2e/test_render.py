"""Every response schema of every registered service renders the same compiled as through
``schema.dump`` (svc_core.render), for generated handler results."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from svc_core import discover
from svc_core.render import compile_dump
from svc_core.testing.render import assert_same_dump, objects_for

SCHEMAS = [
    (f"{name} {spec.method} {spec.path}", spec.schema_instance("response"))
    for name, service in discover().items()
    for spec in service.routes
    if spec.response is not None
]


def test_every_service_has_response_schemas_and_most_compile() -> None:
    assert SCHEMAS
    compiled = [label for label, schema in SCHEMAS if compile_dump(schema) is not None]
    assert len(compiled) >= len(SCHEMAS) * 3 // 4, compiled


@pytest.mark.parametrize(("label", "schema"), SCHEMAS, ids=[label for label, _ in SCHEMAS])
@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(data=st.data())
def test_compiled_dump_equals_schema_dump(label, schema, data) -> None:
    assert_same_dump(schema, data.draw(objects_for(schema)))
