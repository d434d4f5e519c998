"""How many statements one authorisation costs. In a server's request on PostgreSQL (autocommit)
a call with room for its longest allowed duration is one statement, ``tarifa_call_authorize``
(migration calls 0006), and so is a refusal; otherwise, and inside a caller's transaction, the
transaction is the two functions of migrations calls 0004/0005 (lock + read, then reserve), with
BEGIN sent with the first and COMMIT with the second in autocommit. Elsewhere plain statements.
The one-statement path and the transaction must decide alike: the last test compares them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tarifa.calls import authorize, cache
from tarifa.calls.authorize import CallRequest, authorize_call
from tarifa.calls.models import CallRate, Reservation
from tarifa.core.authorization import judgement
from tarifa.customers.models import SipDevice
from tarifa.routing.models import Connection
from tests.factories import NOW, UK, ask

pytestmark = pytest.mark.django_db


def test_one_allowed_call_is_two_statements_on_postgresql(net) -> None:
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


def test_only_scopes_with_a_cps_limit_are_counted(net) -> None:
    device = SipDevice.objects.get(login="alice")
    SipDevice.objects.filter(pk=device.pk).update(calls_per_second=3)
    Connection.objects.filter(pk=net["cheap"].pk).update(max_cps=5)
    cache.reset()
    assert ask(call_id="n1").routes[0]["connection"] == "cheap"
    assert ask(call_id="n2").allowed
    assert dict(CallRate.objects.values_list("scope", "count")) == {
        f"c:{net['customer'].pk}": 2,
        f"d:sip:{device.pk}": 2,
        f"n:{net['cheap'].pk}": 2,
    }


def test_connection_cps_limit_drops_the_connection_for_the_rest_of_the_second(net) -> None:
    Connection.objects.filter(pk=net["cheap"].pk).update(max_cps=2)
    cache.reset()
    firsts = [ask(call_id=f"s{n}").routes[0]["connection"] for n in range(3)]
    assert firsts == ["cheap", "cheap", "dear"]
    third = Reservation.objects.get(call_id="s2")
    assert third.connection_id == net["dear"].pk
    later = authorize_call(
        CallRequest(call_id="next", callee="011" + UK, sip_user="alice", switch="sw"), now=NOW + timedelta(seconds=1)
    )
    assert [r["connection"] for r in later.routes] == ["cheap", "dear"]


def test_device_cps_limit(net) -> None:
    SipDevice.objects.filter(login="alice").update(calls_per_second=2)
    cache.reset()
    assert [ask(call_id=f"d{n}").reason for n in range(3)] == ["", "", "cps_limit"]


def test_second_call_sees_the_first_reservation(net) -> None:
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
def test_in_autocommit_an_allowed_call_is_one_statement(net) -> None:
    assert connection.get_autocommit() and not connection.in_atomic_block
    ask(call_id="warm")
    request = CallRequest(call_id="trip", callee="011" + UK, sip_user="alice", switch="sw")
    with CaptureQueriesContext(connection) as queries:
        d = authorize_call(request, now=NOW)
    statements = [q["sql"] for q in queries.captured_queries]
    assert len(statements) == 1, statements
    assert statements[0].startswith("SELECT * FROM tarifa_call_authorize(")
    assert _idle()
    held = Reservation.objects.get(call_id="trip")
    assert d.allowed and held.pk == d.reservation_id and held.max_duration == d.max_duration == 7200
    assert held.connection_id == net["cheap"].pk and str(held.amount.normalize()) == d.reserved
    assert dict(CallRate.objects.values_list("scope", "count")) == {f"c:{net['customer'].pk}": 2}
    assert d.trace[-1].endswith("(one round trip)")


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_in_autocommit_funds_for_a_shorter_call_are_decided_in_the_transaction(net) -> None:
    from tarifa.customers.models import Customer

    # 0.50 pays 25 minutes at 0.02/min: less than the 7,200-s cap, so the one statement writes nothing
    Customer.objects.filter(pk=net["customer"].pk).update(balance=Decimal("0.50"))
    cache.reset()
    request = CallRequest(call_id="short", callee="011" + UK, sip_user="alice", switch="sw")
    with CaptureQueriesContext(connection) as queries:
        d = authorize_call(request, now=NOW)
    statements = [q["sql"] for q in queries.captured_queries]
    assert [sql.split("(")[0] for sql in statements if "tarifa_call_" in sql] == [
        "SELECT * FROM tarifa_call_authorize",
        "BEGIN; SELECT * FROM tarifa_call_state",
        "SELECT tarifa_call_reserve",
    ]
    assert d.allowed and d.max_duration == 1500 and d.reserved == "0.5" and _idle()
    assert Reservation.objects.get(call_id="short").max_duration == 1500
    assert sum("ALLOWED" in step for step in d.trace) == 1  # the first reading left no trace
    assert dict(CallRate.objects.values_list("scope", "count")) == {f"c:{net['customer'].pk}": 1}


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_in_autocommit_refusals_and_simulations_end_their_transaction(net) -> None:
    from tarifa.customers.models import Customer

    Customer.objects.filter(pk=net["customer"].pk).update(max_call_sessions=1)
    cache.reset()
    assert ask(call_id="first").allowed and _idle()
    with CaptureQueriesContext(connection) as queries:
        refused = ask(call_id="second")
    assert refused.reason == "concurrent_limit" and _idle()
    statements = [q["sql"] for q in queries.captured_queries]
    # one statement decides (it writes nothing); the rest count the refusal for the dashboards
    assert statements[1].startswith("SELECT * FROM tarifa_call_authorize("), statements
    assert not any("tarifa_call_state" in sql for sql in statements), statements
    Customer.objects.filter(pk=net["customer"].pk).update(max_call_sessions=100)
    cache.reset()
    with CaptureQueriesContext(connection) as queries:
        simulated = authorize_call(
            CallRequest(call_id="sim", callee="011" + UK, sip_user="alice", switch="sw"), reserve=False, now=NOW
        )
    assert simulated.allowed and simulated.reservation_id is None and _idle()
    statements = [q["sql"] for q in queries.captured_queries]
    assert statements[-2].startswith("BEGIN; SELECT * FROM tarifa_call_state(") and statements[-1] == "ROLLBACK"
    assert set(Reservation.objects.values_list("call_id", flat=True)) == {"first"}


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_in_autocommit_the_same_call_id_twice_answers_with_the_held_reservation(net) -> None:
    first = ask(call_id="twice")
    again = ask(call_id="twice")
    assert again.allowed and again.reservation_id == first.reservation_id and _idle()
    assert Reservation.objects.filter(call_id="twice").count() == 1


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_in_autocommit_a_retry_at_the_limit_is_the_statement_and_one_look_up(net) -> None:
    from tarifa.calls.models import Refusal
    from tarifa.customers.models import Customer

    Customer.objects.filter(pk=net["customer"].pk).update(max_call_sessions=1)
    cache.reset()
    first = authorize_call(CallRequest(call_id="again", callee="011" + UK, sip_user="alice", switch="sw"), now=NOW)
    with CaptureQueriesContext(connection) as queries:
        retry = authorize_call(CallRequest(call_id="again", callee="011" + UK, sip_user="alice", switch="sw"), now=NOW)
    assert retry.allowed and retry.reservation_id == first.reservation_id and _idle()
    assert (retry.max_duration, retry.reserved, retry.routes) == (first.max_duration, first.reserved, first.routes)
    statements = [q["sql"] for q in queries.captured_queries]
    assert len(statements) == 2 and statements[0].startswith("SELECT * FROM tarifa_call_authorize("), statements
    assert "calls_reservation" in statements[1] and "again" in statements[1], statements
    assert not Refusal.objects.exists() and Reservation.objects.count() == 1
    assert list(CallRate.objects.values_list("count", flat=True)) == [1]


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_in_autocommit_an_error_between_the_statements_rolls_back(net, monkeypatch) -> None:
    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("decision failed")

    monkeypatch.setattr(judgement, "route_answers", broken)
    with pytest.raises(RuntimeError):
        ask(call_id="broken")
    assert _idle() and not Reservation.objects.filter(call_id="broken").exists()
    assert sum(CallRate.objects.values_list("count", flat=True)) == 0  # the broken call is not counted
    monkeypatch.undo()
    assert ask(call_id="after").allowed and _idle()
    assert list(CallRate.objects.values_list("scope", "count")) == [(f"c:{net['customer'].pk}", 1)]


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_in_autocommit_a_hold_the_decision_does_not_stand_behind_is_released(net, monkeypatch, caplog) -> None:
    """Should the statement and the application's decision ever differ, the statement's
    reservation is deleted and the transaction decides."""
    real = judgement.available_funds

    def less(*args, **kwargs):  # type: ignore[no-untyped-def]
        return min(real(*args, **kwargs), Decimal("0.50"))  # the application sees less than the statement

    monkeypatch.setattr(judgement, "available_funds", less)
    with CaptureQueriesContext(connection) as queries:
        d = ask(call_id="differs")
    assert d.allowed and d.max_duration == 1500 and _idle()
    assert list(Reservation.objects.values_list("call_id", "max_duration")) == [("differs", 1500)]
    # counted once in its CPS scope: the released statement's count went with its reservation
    assert list(CallRate.objects.values_list("scope", "count")) == [(f"c:{net['customer'].pk}", 1)]
    assert any("differs from the decision" in r.getMessage() for r in caplog.records)
    assert [sql.split("(")[0] for sql in (q["sql"] for q in queries.captured_queries) if "tarifa_call_" in sql] == [
        "SELECT * FROM tarifa_call_authorize",
        "BEGIN; SELECT * FROM tarifa_call_state",
        "SELECT tarifa_call_reserve",
    ]


@postgresql_only
def test_the_state_is_read_by_index_with_plans_made_once_per_session() -> None:
    """``tarifa_call_state`` plans its reads once per session (a custom plan per call cost more
    database CPU than the rest of the authorisation) and by index, so plans made while the
    reservations were empty do not scan the table on every later call (migration calls 0007)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT proconfig FROM pg_proc WHERE proname = 'tarifa_call_state'")
        assert cursor.fetchone()[0] == ["plan_cache_mode=force_generic_plan", "enable_seqscan=off"]
        # what the function's reads then plan on an empty table, with no parameter known: the indexes
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        cursor.execute(
            "PREPARE reads(bigint, timestamptz, text[], bigint) AS SELECT COUNT(*) FROM calls_reservation r "
            "WHERE r.customer_id = $1 AND r.expires_at >= $2 UNION ALL SELECT count FROM calls_callrate "
            "WHERE scope = ANY($3) AND second = $4"
        )
        try:
            cursor.execute("EXPLAIN EXECUTE reads(1, now(), '{c:1}', 5)")
            plan = " ".join(row[0] for row in cursor.fetchall())
        finally:
            cursor.execute("DEALLOCATE reads")
    assert "$1" in plan, plan  # the generic plan
    assert "Seq Scan" not in plan and "calls_reservation_customer_id" in plan and "call_rate_unique" in plan, plan


@contextmanager
def _while_another_transaction(statements: list[tuple[str, list]], lock_timeout: str) -> Iterator[None]:  # type: ignore[type-arg]
    """Run ``statements`` in another connection's open transaction; meanwhile this connection
    waits for a lock at most ``lock_timeout``. The other transaction is rolled back after."""
    import psycopg

    other = psycopg.connect(**connection.get_connection_params())
    try:
        for sql, params in statements:
            other.execute(sql, params)
        with connection.cursor() as cursor:
            cursor.execute(f"SET lock_timeout = '{lock_timeout}'")
        try:
            yield
        finally:
            with connection.cursor() as cursor:
                cursor.execute("RESET lock_timeout")
    finally:
        other.rollback()
        other.close()


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_an_authorisation_does_not_wait_for_a_balance_update_in_progress(net) -> None:
    """Calls of one customer queue on an advisory lock, not on the customer's row: a charge being
    posted (its transaction still open) does not hold them up, and they read the balance and the
    reservations as of one moment: here, before the charge."""
    from tarifa.customers.models import Customer

    with _while_another_transaction(
        [("UPDATE customers_customer SET balance = 0 WHERE id = %s", [net["customer"].pk])], "5s"
    ):
        d = ask(call_id="during-charge")
    assert d.allowed and d.max_duration == 7200
    assert Customer.objects.get(pk=net["customer"].pk).balance > 0


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_calls_of_one_customer_queue_on_its_advisory_lock(net) -> None:
    """While another transaction holds the customer's authorisation lock, a call of that customer
    waits (here until the lock timeout turns the wait into an error)."""
    from django.db import OperationalError

    with (
        _while_another_transaction([("SELECT pg_advisory_xact_lock(1952543329, %s)", [net["customer"].pk])], "200ms"),
        pytest.raises(OperationalError, match="lock timeout"),
    ):
        ask(call_id="queued")
    assert ask(call_id="after").allowed


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_cdr_ingestions_key_share_locks_do_not_hold_up_an_authorisation(net) -> None:
    """Ingestion holds FOR KEY SHARE on the customers, accounts and connections of its batch:
    the authorisation (advisory locks since migration calls 0007) does not wait for it (a row
    lock FOR UPDATE would, until the lock timeout below turns the wait into an error)."""
    Connection.objects.filter(pk__in=[net["cheap"].pk, net["dear"].pk]).update(max_channels=10)
    cache.reset()
    with _while_another_transaction(
        [
            ("SELECT 1 FROM customers_customer WHERE id = %s FOR KEY SHARE", [net["customer"].pk]),
            ("SELECT 1 FROM customers_account WHERE id = %s FOR KEY SHARE", [net["alice"].pk]),
            ("SELECT 1 FROM routing_connection WHERE id IN (%s, %s) FOR KEY SHARE", [net["cheap"].pk, net["dear"].pk]),
        ],
        "5s",
    ):
        d = ask(call_id="during-ingestion")
    assert d.allowed and [r["connection"] for r in d.routes] == ["cheap", "dear"]


# --- the one statement and the transaction decide alike --------------------------------------------


def _setup(name: str, net: dict) -> None:  # type: ignore[type-arg]
    from tarifa.customers.models import Account, Customer
    from tarifa.dids.models import Did, DidPlan
    from tarifa.routing.models import RoutingGroup

    customer, alice = Customer.objects.filter(pk=net["customer"].pk), Account.objects.filter(pk=net["alice"].pk)
    cheap, both = (
        Connection.objects.filter(pk=net["cheap"].pk),
        Connection.objects.filter(pk__in=[net["cheap"].pk, net["dear"].pk]),
    )
    {
        "plain": lambda: None,
        "customer_sessions": lambda: customer.update(max_call_sessions=2),
        "account_channels": lambda: alice.update(max_channels=1),
        "device_sessions": lambda: SipDevice.objects.filter(login="alice").update(max_call_sessions=1),
        "customer_cps": lambda: customer.update(calls_per_second=2),
        "device_cps": lambda: SipDevice.objects.filter(login="alice").update(calls_per_second=1),
        "connection_channels": lambda: cheap.update(max_channels=1),
        "connection_cps": lambda: cheap.update(max_cps=1),
        "all_connections_full": lambda: both.update(max_channels=1),
        "weighted_with_a_full_connection": lambda: (
            RoutingGroup.objects.filter(pk=net["group"].pk).update(policy="weighted"),
            cheap.update(max_channels=1),
        ),
        "funds_for_a_shorter_call": lambda: customer.update(balance=Decimal("0.50")),
        "no_funds": lambda: customer.update(balance=Decimal("0.0001")),
        "postpaid_credit": lambda: customer.update(
            billing_type="postpaid", balance=Decimal("-9.80"), credit_limit=Decimal("10.30")
        ),
        "own_balance": lambda: (
            alice.update(balance_mode="own"),
            Account.objects.filter(pk=net["alice"].pk).update(balance=Decimal("3")),
        ),
        "retry_at_the_limit": lambda: customer.update(max_call_sessions=1),
        "retry_with_a_full_connection": lambda: cheap.update(max_channels=1, max_cps=5),
        "inbound_did": lambda: Did.objects.create(
            number="12015550100",
            status="assigned",
            account=net["alice"],
            plan=DidPlan.objects.create(name="In", inbound_rate=Decimal("0.006")),
        ),
    }[name]()
    cache.reset()


def _calls(name: str, net: dict) -> list[CallRequest]:  # type: ignore[type-arg]
    if name == "inbound_did":
        return [CallRequest(call_id=f"in{n}", callee="12015550100", did="12015550100", switch="sw") for n in range(3)]
    if name.startswith("retry"):  # the switch asks three times for one call
        return [CallRequest(call_id="again", callee="011" + UK, sip_user="alice", switch="sw") for _n in range(3)]
    callees = ["011" + UK, "12125551234", "18005551234"]  # international, domestic, toll-free (free)
    ids = [f"{name}-{n}" for n in range(3)]
    if name == "weighted_with_a_full_connection":  # a first call whose weighted order puts cheap first
        from tarifa.core.routes import Candidate, order

        both = [Candidate(net[k].pk, Decimal(0), 0, 1) for k in ("cheap", "dear")]
        ids[0] = next(
            f"w{n}" for n in range(100) if order(both, "weighted", f"w{n}")[0].connection_id == net["cheap"].pk
        )
    return [CallRequest(call_id=ids[n], callee=callees[n % 3], sip_user="alice", switch="sw") for n in range(3)]


def _outcome(decisions: list) -> tuple:  # type: ignore[type-arg]
    answers = [
        (d.allowed, d.reason, d.sip_code, d.max_duration, d.reserved, d.routes, d.rate, d.trace[:-1]) for d in decisions
    ]
    held = sorted(
        Reservation.objects.values_list(
            "call_id",
            "amount",
            "max_duration",
            "connection_id",
            "device",
            "own_balance",
            "customer_id",
            "account_id",
            "expires_at",
        )
    )
    return answers, held, sorted(CallRate.objects.values_list("scope", "second", "count"))


SCENARIOS = [
    "plain",
    "customer_sessions",
    "account_channels",
    "device_sessions",
    "customer_cps",
    "device_cps",
    "connection_channels",
    "connection_cps",
    "all_connections_full",
    "weighted_with_a_full_connection",
    "funds_for_a_shorter_call",
    "no_funds",
    "postpaid_credit",
    "own_balance",
    "inbound_did",
    "retry_at_the_limit",
    "retry_with_a_full_connection",
]


@postgresql_only
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("name", SCENARIOS)
def test_one_statement_and_transaction_decide_alike(net, monkeypatch, name) -> None:
    _setup(name, net)
    statements: list[str] = []

    def run() -> tuple:  # type: ignore[type-arg]
        Reservation.objects.all().delete()
        CallRate.objects.all().delete()
        with CaptureQueriesContext(connection) as queries:
            decisions = [authorize_call(request, now=NOW) for request in _calls(name, net)]
        statements[:] = [q["sql"] for q in queries.captured_queries]
        return _outcome(decisions)

    one_trip = run()
    assert any("tarifa_call_authorize" in sql for sql in statements)
    monkeypatch.setattr(authorize, "_may_go_in_one_trip", lambda plan, reserve: False)
    in_transaction = run()
    assert not any("tarifa_call_authorize" in sql for sql in statements)
    assert one_trip == in_transaction
    # and the scenario did what it is named for: (reason or "", first route) of each call
    got = [(a[1], a[5][0].get("connection") if a[5] else None) for a in one_trip[0]]
    assert got == EXPECTED[name]
    if name.startswith("retry"):  # one reservation, counted once in each CPS scope
        assert len(one_trip[1]) == 1 and {count for _scope, _second, count in one_trip[2]} == {1}


OK, CHEAP, DEAR = "", "cheap", "dear"
EXPECTED = {
    "plain": [(OK, CHEAP)] * 3,
    "customer_sessions": [(OK, CHEAP), (OK, CHEAP), ("concurrent_limit", None)],
    "account_channels": [(OK, CHEAP), ("concurrent_limit", None), ("concurrent_limit", None)],
    "device_sessions": [(OK, CHEAP), ("concurrent_limit", None), ("concurrent_limit", None)],
    "customer_cps": [(OK, CHEAP), (OK, CHEAP), ("cps_limit", None)],
    "device_cps": [(OK, CHEAP), ("cps_limit", None), ("cps_limit", None)],
    "connection_channels": [(OK, CHEAP), (OK, DEAR), (OK, DEAR)],
    "connection_cps": [(OK, CHEAP), (OK, DEAR), (OK, DEAR)],
    "all_connections_full": [(OK, CHEAP), (OK, DEAR), ("no_route", None)],
    "weighted_with_a_full_connection": [(OK, CHEAP), (OK, DEAR), (OK, DEAR)],  # cheap's one channel is taken
    "funds_for_a_shorter_call": [(OK, CHEAP), ("insufficient_funds", None), (OK, CHEAP)],
    "no_funds": [("insufficient_funds", None), ("insufficient_funds", None), (OK, CHEAP)],
    "postpaid_credit": [(OK, CHEAP), ("insufficient_funds", None), (OK, CHEAP)],
    "own_balance": [(OK, CHEAP)] * 3,
    "inbound_did": [(OK, None)] * 3,
    "retry_at_the_limit": [(OK, CHEAP)] * 3,  # the same answer each time, one reservation
    "retry_with_a_full_connection": [(OK, CHEAP)] * 3,  # cheap's one channel is the call's own
}
