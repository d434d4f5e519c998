"""How many statements one authorisation costs: on PostgreSQL the transaction is the two
functions of migrations calls 0004/0005 (lock + read, then reserve); elsewhere plain statements.
A server's request (autocommit) sends BEGIN with the first and COMMIT with the second."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tarifa.calls import authorize, cache
from tarifa.calls.authorize import CallRequest, authorize_call
from tarifa.calls.models import CallRate, Reservation
from tarifa.customers.models import SipDevice
from tarifa.routing.models import Connection
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
    # the call was counted in its one limited CPS scope (the customer's; device and connections have none)
    assert dict(CallRate.objects.values_list("scope", "count")) == {f"c:{net['customer'].pk}": 2}


def test_only_scopes_with_a_cps_limit_are_counted(net) -> None:  # noqa: F811
    device = SipDevice.objects.get(login="alice")
    SipDevice.objects.filter(pk=device.pk).update(calls_per_second=3)
    Connection.objects.filter(pk=net["cheap"].pk).update(max_cps=5)
    cache.reset()
    assert ask(call_id="n1").routes[0]["connection"] == "cheap"
    assert ask(call_id="n2").allowed
    assert dict(CallRate.objects.values_list("scope", "count")) == {
        f"c:{net['customer'].pk}": 2, f"d:sip:{device.pk}": 2, f"n:{net['cheap'].pk}": 2}


def test_connection_cps_limit_drops_the_connection_for_the_rest_of_the_second(net) -> None:  # noqa: F811
    Connection.objects.filter(pk=net["cheap"].pk).update(max_cps=2)
    cache.reset()
    firsts = [ask(call_id=f"s{n}").routes[0]["connection"] for n in range(3)]
    assert firsts == ["cheap", "cheap", "dear"]
    third = Reservation.objects.get(call_id="s2")
    assert third.connection_id == net["dear"].pk
    later = authorize_call(CallRequest(call_id="next", callee="011" + UK, sip_user="alice", switch="sw"),
                           now=NOW + timedelta(seconds=1))
    assert [r["connection"] for r in later.routes] == ["cheap", "dear"]


def test_device_cps_limit(net) -> None:  # noqa: F811
    SipDevice.objects.filter(login="alice").update(calls_per_second=2)
    cache.reset()
    assert [ask(call_id=f"d{n}").reason for n in range(3)] == ["", "", "cps_limit"]


def test_second_call_sees_the_first_reservation(net) -> None:  # noqa: F811
    first = ask(call_id="a1")
    second = ask(call_id="a2")
    assert first.allowed and second.allowed
    # funds: the second call's available amount is less the first call's reservation
    assert any("reserved " + first.reserved in step for step in second.trace), second.trace


# --- a server's request: autocommit, BEGIN and COMMIT travel with the two statements ----------------

postgresql_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL path")


def _idle() -> bool:
    from psycopg.pq import TransactionStatus

    return connection.connection.info.transaction_status == TransactionStatus.IDLE


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_in_autocommit_an_allowed_call_is_two_round_trips_and_commits(net) -> None:  # noqa: F811
    assert connection.get_autocommit() and not connection.in_atomic_block
    ask(call_id="warm")
    request = CallRequest(call_id="trip", callee="011" + UK, sip_user="alice", switch="sw")
    with CaptureQueriesContext(connection) as queries:
        d = authorize_call(request, now=NOW)
    statements = [q["sql"] for q in queries.captured_queries]
    assert len(statements) == 2, statements
    assert statements[0].startswith("BEGIN; SELECT * FROM tarifa_call_state(")
    assert "tarifa_call_reserve(" in statements[1] and statements[1].endswith("; COMMIT")
    assert _idle()
    assert d.allowed and Reservation.objects.get(call_id="trip").pk == d.reservation_id
    assert dict(CallRate.objects.values_list("scope", "count")) == {f"c:{net['customer'].pk}": 2}


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_in_autocommit_refusals_and_simulations_end_their_transaction(net) -> None:  # noqa: F811
    from tarifa.customers.models import Customer

    Customer.objects.filter(pk=net["customer"].pk).update(max_call_sessions=1)
    cache.reset()
    assert ask(call_id="first").allowed and _idle()
    with CaptureQueriesContext(connection) as queries:
        refused = ask(call_id="second")
    assert refused.reason == "concurrent_limit" and _idle()
    statements = [q["sql"] for q in queries.captured_queries]
    begun = next(n for n, sql in enumerate(statements) if sql.startswith("BEGIN; SELECT * FROM tarifa_call_state("))
    assert statements[begun + 1] == "COMMIT", statements
    Customer.objects.filter(pk=net["customer"].pk).update(max_call_sessions=100)
    cache.reset()
    simulated = authorize_call(CallRequest(call_id="sim", callee="011" + UK, sip_user="alice", switch="sw"),
                               reserve=False, now=NOW)
    assert simulated.allowed and simulated.reservation_id is None and _idle()
    assert set(Reservation.objects.values_list("call_id", flat=True)) == {"first"}


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_in_autocommit_the_same_call_id_twice_answers_with_the_held_reservation(net) -> None:  # noqa: F811
    first = ask(call_id="twice")
    again = ask(call_id="twice")
    assert again.allowed and again.reservation_id == first.reservation_id and _idle()
    assert Reservation.objects.filter(call_id="twice").count() == 1


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_in_autocommit_an_error_between_the_statements_rolls_back(net, monkeypatch) -> None:  # noqa: F811
    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("decision failed")

    monkeypatch.setattr(authorize, "_route_dicts", broken)
    with pytest.raises(RuntimeError):
        ask(call_id="broken")
    assert _idle() and not Reservation.objects.filter(call_id="broken").exists()
    monkeypatch.undo()
    assert ask(call_id="after").allowed and _idle()


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_cdr_ingestions_key_share_locks_do_not_hold_up_an_authorisation(net) -> None:  # noqa: F811
    """Ingestion holds FOR KEY SHARE on the customers, accounts and connections of its batch:
    the authorisation's FOR NO KEY UPDATE does not wait for it (FOR UPDATE would, until the lock
    timeout below turns the wait into an error)."""
    import psycopg

    Connection.objects.filter(pk__in=[net["cheap"].pk, net["dear"].pk]).update(max_channels=10)
    cache.reset()
    other = psycopg.connect(**connection.get_connection_params())
    try:
        other.execute("SELECT 1 FROM customers_customer WHERE id = %s FOR KEY SHARE", [net["customer"].pk])
        other.execute("SELECT 1 FROM customers_account WHERE id = %s FOR KEY SHARE", [net["alice"].pk])
        other.execute("SELECT 1 FROM routing_connection WHERE id IN (%s, %s) FOR KEY SHARE",
                      [net["cheap"].pk, net["dear"].pk])
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '5s'")
        try:
            d = ask(call_id="during-ingestion")
        finally:
            with connection.cursor() as cursor:
                cursor.execute("RESET lock_timeout")
        assert d.allowed and [r["connection"] for r in d.routes] == ["cheap", "dear"]
    finally:
        other.rollback()
        other.close()
