"""The vectorised ingestion path stores and posts exactly what the row-by-row path does.

The same calls are ingested both ways (each inside a savepoint that is rolled back after the
snapshot), and every stored CDR value, every Transaction and every balance are compared.
"""

from __future__ import annotations

import random
from datetime import timedelta
from decimal import Decimal

import pytest

from tarifa.billing.models import IncludedMinutes, ServicePlan, Transaction
from tarifa.cdrs.ingest import ingest
from tarifa.cdrs.models import Cdr
from tarifa.core.cdr import CanonicalCdr
from tarifa.customers.models import Account, Customer, SipDevice
from tarifa.rating.models import Rate, Tariff
from tarifa.routing.models import Pop
from tests.factories import T0
from tests.ingesting import ingest_in_rollback

pytestmark = pytest.mark.django_db
pytestmark = pytest.mark.django_db


@pytest.fixture
def richer(world):  # type: ignore[no-untyped-def]
    """The ingest world plus a forbidden prefix, included minutes, a NANP account, 2-decimal billing
    and a tariff whose prices change in the middle of the calls."""
    Rate.objects.create(
        tariff=world["tariff"],
        prefix="4490",
        destination="Premium",
        price_1=Decimal("1"),
        price_n=Decimal("1"),
        forbidden=True,
    )
    plan = ServicePlan.objects.create(name="Bundle")
    IncludedMinutes.objects.create(plan=plan, minutes=3, prefixes=["44"])
    pooled = Account.objects.create(customer=world["customer"], name="pooled", dialing_mode="e164", service_plan=plan)
    SipDevice.objects.create(account=pooled, login="pooled", secret="x")
    nanp = Account.objects.create(customer=world["customer"], name="nanp", dialing_mode="nanp")
    SipDevice.objects.create(account=nanp, login="nanp", secret="x")
    coarse = Customer.objects.create(
        parent=world["customer"].parent,
        name="Coarse",
        company="Coarse",
        web_username="coarse",
        tariff=world["tariff"],
        billing_decimals=2,
        email="c@c.example",
        phone="+12015550123",
        country="US",
    )
    bob = Account.objects.create(customer=coarse, name="bob", dialing_mode="e164", balance_mode="own")
    SipDevice.objects.create(account=bob, login="bob", secret="x")
    dated = Tariff.objects.create(name="Dated")
    Rate.objects.create(
        tariff=dated,
        prefix="44",
        destination="UK",
        price_1=Decimal("0.01"),
        price_n=Decimal("0.01"),
        effective_from=T0 - timedelta(days=30),
        effective_to=T0 + timedelta(hours=1),
    )
    Rate.objects.create(
        tariff=dated,
        prefix="44",
        destination="UK",
        price_1=Decimal("0.03"),
        price_n=Decimal("0.03"),
        effective_from=T0 + timedelta(hours=1),
    )
    carol = Account.objects.create(customer=coarse, name="carol", dialing_mode="e164", tariff=dated)
    SipDevice.objects.create(account=carol, login="carol", secret="x")
    # POP restrictions: bob may not call through sw1 (pop_not_allowed), carol may
    bob.pop_restriction.set([Pop.objects.create(name="elsewhere")])
    carol.pop_restriction.set([Pop.objects.create(name="sw1")])
    # a trunk name of two customers: ambiguous unless a SIP login decides (core.identity)
    Account.objects.create(customer=coarse, name="coarse-trunk", kind="trunk", identifier="tr-1", dialing_mode="e164")
    return world


def _calls(seed: int, n: int) -> list[CanonicalCdr]:
    rng = random.Random(seed)
    users = ["alice", "pooled", "nanp", "bob", "carol", "nobody", ""]
    numbers = [
        "442079460958",
        "447700900123",
        "+1 201 555 0123",
        "2015550123",
        "44901234",
        "999123456",
        "12ab",
        "0044 20 7946 0958",
        "33123456789",
    ]
    calls = []
    for k in range(n):
        start = T0 + timedelta(minutes=rng.randint(0, 120), seconds=rng.randint(0, 59))
        answered = rng.random() < 0.85
        extra: dict = {}
        roll = rng.random()
        if roll < 0.05:
            extra = {"direction": "inbound", "callee": "12015550100", "did": "12015550100"}
        elif roll < 0.08:
            extra = {"extension": "201"}
        elif roll < 0.12:
            extra = {"trunk": "tr-1"}
        elif roll < 0.16:
            extra = {"source_ip": "198.51.100.7"}
        call = {
            "call_id": f"k{k % (n - 7)}",  # a few repeats: duplicates
            "callee": rng.choice(numbers),
            "start_time": start,
            "connect_time": start + timedelta(seconds=3) if answered else None,
            "duration": rng.choice([0, 1, 30, 59, 60, 61, 125, 600]) if answered else 0,
            "disposition": "answered" if answered else rng.choice(["busy", "no_answer"]),
            "switch": "sw1",
            "leg": "b" if rng.random() < 0.1 else "a",
            "sip_user": rng.choice(users),
            "connection": rng.choice(["carrier-1", "carrier-1", "", "unknown-carrier"]),
        }
        call.update(extra)
        calls.append(CanonicalCdr(**call))
    return calls


@pytest.mark.parametrize(("seed", "batch"), [(1, 5000), (2, 73)])
def test_vectorised_path_equals_the_row_path(richer, seed: int, batch: int) -> None:
    calls = _calls(seed, 600)
    rows, _ = ingest_in_rollback(calls, vectorised=False, batch_size=batch)
    fast, _ = ingest_in_rollback(calls, vectorised=True, batch_size=batch)  # 600 = 8 x 73 + 16: the last one row by row
    assert rows["report"] == fast["report"]
    assert rows["cdrs"].keys() == fast["cdrs"].keys()
    for key, row in rows["cdrs"].items():
        assert fast["cdrs"][key] == row, key
    assert fast["transactions"] == rows["transactions"]
    assert fast["balances"] == rows["balances"]
    assert fast["running_ok"] and rows["running_ok"]
    # the comparison covers every kind of outcome
    statuses = {(r["rating_status"], r["unrated_reason"]) for r in rows["cdrs"].values()}
    assert {
        ("rated", ""),
        ("unrated", "no_account"),
        ("unrated", "no_rate"),
        ("unrated", "invalid_number"),
        ("forbidden", "forbidden"),
        ("unrated", "ambiguous_account"),
        ("unrated", "pop_not_allowed"),
    } <= statuses
    assert any(r["pool_seconds"] for r in rows["cdrs"].values())
    assert any(r["direction"] == "inbound" and r["price"] for r in rows["cdrs"].values())
    assert len(fast["transactions"]) >= 3  # one charge per balance and batch
    assert all(r["transaction_id"] for r in fast["cdrs"].values() if r["price"])
    assert rows["vectorised"] == 0 and fast["vectorised"] > len(calls) // 3


@pytest.mark.parametrize("count", [10, 60])  # row by row, vectorised
def test_records_without_a_switch_take_the_runs(world, count: int) -> None:
    calls = [
        CanonicalCdr(call_id=f"ns{k}", callee="442079460958", start_time=T0, duration=60, sip_user="alice")
        for k in range(count)
    ]
    first = ingest(calls, source="t", fmt="test", switch="pbx1")
    again = ingest(calls, source="t", fmt="test", switch="pbx1")
    assert (first.stored, again.stored, again.duplicates) == (count, 0, count)
    assert set(Cdr.objects.values_list("switch", flat=True)) == {"pbx1"}
    assert Transaction.objects.count() == 1


def test_the_cdr_row_specification_is_the_model_s() -> None:
    """Both writers take their columns from tarifa.cdrs.rows: every one is a Cdr field, and money
    goes to the frame writer as integer micro-units."""
    from django.db.models import DateTimeField

    from tarifa.cdrs.rows import COLUMNS, FRAME_SCHEMA
    from tarifa.fields import ExactDecimalField

    fields = {name: Cdr._meta.get_field(name) for name in COLUMNS}
    stored = {f.name for f in Cdr._meta.concrete_fields if f.name != "id"}
    assert set(COLUMNS) <= stored and len(set(COLUMNS)) == len(COLUMNS)
    money = {name for name, f in fields.items() if isinstance(f, ExactDecimalField)}
    assert money == {"price", "cost", "margin", "out_payment"} and all(str(FRAME_SCHEMA[n]) == "Int64" for n in money)
    assert all(str(FRAME_SCHEMA[n]) == "String" for n, f in fields.items() if isinstance(f, DateTimeField))
