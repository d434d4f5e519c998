"""How many statements one authorisation costs: on PostgreSQL the transaction is the two
functions of migration calls 0004 (lock + read, then reserve); elsewhere plain statements."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tarifa.calls import cache
from tarifa.calls.authorize import CallRequest, authorize_call
from tarifa.calls.models import CallRate, Reservation
from tests.integration.test_authorize import NOW, UK, ask, net  # noqa: F401  (fixture)

pytestmark = pytest.mark.django_db


def test_one_allowed_call_is_two_statements_on_postgresql(net) -> None:  # noqa: F811
    cache.snapshot()  # the snapshot is loaded once per process, not per call
    ask(call_id="warm")
    request = CallRequest(call_id="counted", callee="011" + UK, sip_user="alice", switch="sw")
    with CaptureQueriesContext(connection) as queries:
        d = authorize_call(request, now=NOW)
    assert d.allowed and Reservation.objects.get(call_id="counted").pk == d.reservation_id
    # (savepoints: the test runs inside a transaction; a server's request opens a real one)
    statements = [q["sql"] for q in queries.captured_queries if "SAVEPOINT" not in q["sql"]]
    if connection.vendor == "postgresql":
        assert len(statements) == 2, statements
        assert "tarifa_call_state" in statements[0] and "tarifa_call_reserve" in statements[1]
    else:
        assert not any("tarifa_call_" in sql for sql in statements)
    # the call was counted in its CPS scopes (customer, device, first connection)
    counted = dict(CallRate.objects.values_list("scope", "count"))
    assert counted[f"c:{net['customer'].pk}"] == 2 and sum(1 for s in counted if s.startswith("n:")) == 1


def test_second_call_sees_the_first_reservation(net) -> None:  # noqa: F811
    first = ask(call_id="a1")
    second = ask(call_id="a2")
    assert first.allowed and second.allowed
    # funds: the second call's available amount is less the first call's reservation
    assert any("reserved " + first.reserved in step for step in second.trace), second.trace
