"""Every operation of the OpenAPI document, fuzzed in process with tokens of each kind (schemathesis):
no 5xx, and every answer fits the document."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from tarifa.api.models import ApiToken
from tarifa.routing.models import Pop
from tests.api.world import build

#: Each example of an operation goes with the next token, so every operation meets every kind of token
#: (operator full and read-only, reseller full, customer read-only, switch) in EXAMPLES examples.
TOKENS = ("op_full", "op_read", "res1_full", "cust1_read", "switch")
EXAMPLES = len(TOKENS)


def _fuzz(operation: Any, tokens: dict[str, str], failures: list[str], calls: list[int]) -> None:
    label = operation.label

    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def fuzz(case: Any) -> None:
        name = TOKENS[calls[0] % len(TOKENS)]
        calls[0] += 1
        try:
            case.call_and_validate(
                headers={"Authorization": f"Bearer {tokens[name]}"},
                checks=[not_a_server_error, response_schema_conformance],
            )
        except Exception as exc:
            failures.append(f"{label} with {name}: {str(exc)[:600]}")
            raise

    with contextlib.suppress(Exception):  # already collected in failures
        fuzz()


@pytest.mark.django_db
def test_every_operation_against_its_schema(operator) -> None:
    tenants = build(operator)
    _t, tenants.tokens["switch"] = ApiToken.issue("kam", switch=Pop.objects.create(name="pop-fuzz"))
    ApiToken.objects.update(rate_limit=100_000)
    # As Django's test client does: the WSGI handler must not close the connection after each
    # request (on PostgreSQL that would end the test's transaction; SQLite's in-memory one survives)
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        _every_operation(tenants)
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


def _every_operation(tenants: Any) -> None:
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", get_wsgi_application())
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 80  # the management API's objects are all there
    failures: list[str] = []
    calls = [0]
    for operation in operations:
        _fuzz(operation, tenants.tokens, failures, calls)
    assert not failures, "\n\n".join(failures[:10])
    assert calls[0] >= len(operations)
