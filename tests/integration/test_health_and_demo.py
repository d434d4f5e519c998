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
        "status": "ok", "database": "ok", "migrations": "applied", "pending_migrations": 0,
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


def test_demo_data_is_coherent() -> None:
    from decimal import Decimal

    from django.db.models import Sum

    from tarifa.billing.models import Transaction
    from tarifa.customers.models import Account, Customer
    from tarifa.rating.models import Rate

    load = __import__("tarifa.demo", fromlist=["load_demo"]).load_demo
    load()
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
