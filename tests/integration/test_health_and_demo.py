from __future__ import annotations

import pytest
from django.apps import apps

import tarifa

pytestmark = pytest.mark.django_db


def test_health_reports_database_migrations_and_version(client) -> None:
    response = client.get("/api/v1/health")
    assert response.status_code == 200
    body = response.json()
    assert body == {
        "status": "ok",
        "database": "ok",
        "migrations": "applied",
        "pending_migrations": 0,
        "version": tarifa.__version__,
    }


def test_health_is_degraded_when_migrations_are_pending(client) -> None:
    from django.db import connection
    from django.db.migrations.recorder import MigrationRecorder

    # Forget one applied migration (rolled back with the test): the server must see it pending.
    MigrationRecorder(connection).record_unapplied("cdrs", "0001_initial")
    response = client.get("/api/v1/health")
    assert response.status_code == 503
    body = response.json()
    assert body["migrations"] == "pending" and body["pending_migrations"] == 1 and body["status"] == "degraded"


@pytest.fixture(scope="module")
def demo(django_db_setup, django_db_blocker):  # type: ignore[no-untyped-def]
    """The demo loaded once for the tests of this module that read it, inside a transaction rolled
    back after the module's last test (each test's own transaction is a savepoint within it)."""
    from django.db import transaction

    from tarifa.demo import load_demo

    with django_db_blocker.unblock():
        outer = transaction.atomic()
        outer.__enter__()
        try:
            yield load_demo()
        finally:
            transaction.set_rollback(True)
            outer.__exit__(None, None, None)


def _counts() -> dict[str, int]:
    return {m.__name__: m.objects.count() for m in apps.get_models() if m.__module__.startswith("tarifa.")}


def test_demo_twice_creates_no_duplicates() -> None:
    from tarifa.demo import load_demo

    first = load_demo()
    counts = _counts()
    second = load_demo()
    assert first == second
    assert _counts() == counts
    assert counts["Customer"] == 13  # operator + 2 resellers + 10 customers
    assert counts["Account"] == 30
    assert counts["Vendor"] == 3 and counts["DestinationSet"] == 3 and counts["Connection"] >= 3
    assert counts["RoutingGroup"] >= 1
    assert counts["Did"] == 20
    assert counts["Cdr"] == 1000
    assert first["rates"] >= 1000


def test_demo_data_is_coherent(demo) -> None:  # type: ignore[no-untyped-def]
    from decimal import Decimal

    from django.db.models import Sum

    from tarifa.billing.models import Transaction
    from tarifa.customers.models import Account, Customer
    from tarifa.rating.models import Rate

    kinds = set(Account.objects.values_list("kind", flat=True))
    assert len(kinds) >= 5
    world = Rate.objects.filter(tariff__name="World retail")
    for code in ("1", "44", "49", "33", "86", "91"):
        assert world.filter(prefix=code).exists(), code
    assert world.filter(prefix__startswith="447").count() > 10  # UK mobile prefixes
    for customer in Customer.objects.all():
        total = Transaction.objects.filter(customer=customer).aggregate(t=Sum("amount"))["t"] or Decimal(0)
        assert customer.balance == total, customer
    resellers = Customer.objects.filter(kind="reseller")
    assert resellers.count() == 2
    assert sum(r.subtree().count() - 1 for r in resellers) == 6


def test_demo_history_is_posted_at_its_dates_through_a_whole_ledger(demo) -> None:  # type: ignore[no-untyped-def]
    """Issue 11 item 6: the January 2026 history is dated January 2026 (not "now", which used up
    today's spending limit), every balance is the sum of its Transactions, each running balance
    follows the posting order, and each day's call charge is the sum of the calls it charged."""
    from datetime import UTC, datetime
    from decimal import Decimal

    from django.db.models import Count, Sum

    from tarifa.billing.models import Transaction
    from tarifa.cdrs.models import Cdr
    from tarifa.customers.models import Customer

    demo = Transaction.objects.filter(reference__startswith="demo-")
    assert demo.exists()
    assert not demo.filter(created_at__gte=datetime(2026, 2, 1, tzinfo=UTC)).exists()
    assert not demo.filter(created_at__lt=datetime(2026, 1, 1, tzinfo=UTC)).exists()
    for customer in Customer.objects.all():
        running = Decimal(0)
        for amount, after in (
            Transaction.objects.filter(customer=customer)
            .order_by("created_at", "id")
            .values_list("amount", "balance_after")
        ):
            running += amount
            assert after == running, customer
        assert customer.balance == running, customer
    charges = demo.filter(kind="call_charge").annotate(calls_total=Sum("calls__price"), n=Count("calls"))
    assert charges.count() > 30
    for charge in charges:
        assert charge.n > 0 and charge.amount == -charge.calls_total, charge.reference
        assert charge.created_at.date() == Cdr.objects.filter(transaction=charge).first().start_time.date()
    assert not Cdr.objects.filter(
        switch="demo-switch", rating_status="rated", price__gt=0, transaction__isnull=True
    ).exists()


def test_demo_prepaid_customers_stay_in_credit_and_can_place_calls(demo) -> None:  # type: ignore[no-untyped-def]
    """Issue 11 item 6: 8 of the 10 prepaid demo customers were below zero and refused."""
    from decimal import Decimal

    from tarifa.billing.models import Transaction
    from tarifa.calls.authorize import simulate_for
    from tarifa.customers.models import Customer

    prepaid = Customer.objects.filter(billing_type="prepaid", kind="customer")
    assert prepaid.count() >= 5
    for customer in prepaid:
        assert customer.balance > Decimal(10), customer
        assert not Transaction.objects.filter(customer=customer, balance_after__lt=0).exists(), customer
        account = customer.accounts.filter(allow_international=True).order_by("pk").first()
        callee = "011442079460958" if account.dialing_mode == "nanp" else "442079460958"
        decision = simulate_for(account.account_code, callee, pop="pop-nyc")
        assert decision.allowed, (customer.web_username, decision.reason, decision.trace)


def test_demo_411_is_priced_per_call(demo) -> None:  # type: ignore[no-untyped-def]
    """Issue 11 item 19: the seed's 411 costs $0.99 per call, not a price per minute."""
    from decimal import Decimal

    from tarifa.calls.authorize import simulate_for
    from tarifa.customers.models import Account
    from tarifa.rating.models import Rate

    for tariff in ("World retail", "World premium"):
        rate = Rate.objects.get(tariff__name=tariff, prefix="1411")
        assert (rate.connect_fee, rate.price_1, rate.price_n) == (Decimal("0.99"), 0, 0)
    account = Account.objects.filter(customer__web_username="hooli").order_by("pk").first()
    Account.objects.filter(pk=account.pk).update(allow_411=True)
    decision = simulate_for(account.account_code, "411", pop="pop-nyc")
    assert decision.allowed, decision.trace
    assert decision.destination_class == "directory" and decision.rate["prefix"] == "1411"
    assert Decimal(decision.reserved) == Decimal("0.99")  # the whole call, however long


def test_the_demo_customers_can_still_call_after_the_first_charges_run(demo) -> None:  # type: ignore[no-untyped-def]
    """New-user finding 6: the demo's plans used to start with the January history, so the first
    `tarifa charges run` posted eleven months of back charges and left every customer negative."""
    from datetime import UTC, datetime
    from decimal import Decimal

    from tarifa.billing.models import ServiceCharge
    from tarifa.calls.authorize import simulate_for
    from tarifa.customers.models import Account, Customer
    from tarifa.services.recurring import run_charges

    today = datetime.now(UTC).date()
    run_charges(today)
    assert ServiceCharge.objects.exists()  # the plans are charged (setup fees at least)
    assert not ServiceCharge.objects.filter(period_start__lt=today.replace(day=1)).exists()
    prepaid = Customer.objects.filter(kind="customer", billing_type="prepaid")
    assert prepaid.exists()
    for customer in prepaid:
        assert customer.balance > Decimal(0), (customer.web_username, customer.balance)
    assert not Account.objects.filter(blocked_for_unpaid=True).exists()
    account = Account.objects.get(name="hooli-sip_user-1")
    decision = simulate_for(account.account_code, "2125550100", pop="pop-nyc")
    assert decision.allowed, decision.trace
