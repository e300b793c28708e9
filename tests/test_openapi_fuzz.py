"""Property-based fuzzing of the HTTP API from its own OpenAPI schema (schemathesis).

Random and edge-case requests against every operation must never produce a 5xx, and every
answer must match the schema's documented responses. The app runs in-process (ASGI) with the tiny
model; examples per operation are bounded so the run stays well under a minute. Skipped when
schemathesis is not installed.
"""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is not installed")

from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from musilingo.serve import ServeSettings, create_app

MAX_EXAMPLES = 25


@pytest.fixture(scope="module")
def app(tiny_model):
    return create_app(tiny_model, ServeSettings(model="tiny", max_upload_mb=1, max_duration_s=10))


def test_no_server_errors_and_answers_match_the_schema(app):
    from schemathesis.checks import not_a_server_error

    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = list(schema.get_all_operations())
    assert len(operations) >= 5
    failures: list[str] = []
    statuses: dict[str, set[int]] = {}
    checks = [not_a_server_error, status_code_conformance, content_type_conformance,
              response_schema_conformance]
    for result in operations:
        operation = result.ok()

        @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def run(case):
            response = case.call_and_validate(checks=checks)
            statuses.setdefault(case.operation.label, set()).add(response.status_code)

        try:
            run()
        except Exception as e:  # noqa: BLE001 - every operation's failure is reported below
            failures.append(f"{operation.label}: {type(e).__name__}: {str(e)[:1500]}")
    assert not failures, "\n".join(failures[:10])
    assert len(statuses) == len(operations), statuses  # every operation was exercised
    assert all(code < 500 for codes in statuses.values() for code in codes), statuses
