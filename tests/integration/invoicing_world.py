"""A generated month (November 2026) of activity for the invoice-run tests: customers under the
operator and under a reseller, in three time zones, on monthly, weekly and custom cycles, with
discounts and taxes; call charges posted per batch through the ledger (each CDR pointing to its
Transaction, as ingestion does), service fees, penalties, deposits, adjustments, and the kinds an
invoice does not show (payments, credits). Postings just outside the month too. Used in process and
by subprocesses (``tarifa manage shell -c "from tests.integration.invoicing_world import build; build(30)"``)."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

D = Decimal
MONTH = "2026-11"
START = datetime(2026, 11, 1, tzinfo=UTC)
DESTINATIONS = ["United Kingdom", "United Kingdom Mobile", "USA", "France", "Germany", "Spain"]
ZONES = ["UTC", "Europe/Paris", "America/New_York"]


def build(n_customers: int = 100, seed: int = 7, cdrs_per_batch: int = 3, batches: int = 10) -> list[int]:
    """Create the world; returns the customers' ids."""
    from django.db import transaction

    from tarifa.billing import ledger
    from tarifa.billing.models import BillingProfile
    from tarifa.cdrs.models import Cdr
    from tarifa.customers.models import Account, Customer
    from tarifa.dids.models import Did
    from tarifa.rating.models import Tariff

    rnd = random.Random(seed)
    tariff = Tariff.objects.create(name="Invoicing")
    base = dict(tariff=tariff, email="c@c.example", phone="+12015550123", country="US")
    operator = Customer.objects.filter(kind="operator").first() or Customer.objects.create(
        kind="operator", name="Op", company="Operator", web_username="invop", **base
    )
    reseller = Customer.objects.create(
        kind="reseller", parent=operator, name="Res", company="Reseller", web_username="invres", **base
    )
    ids = []
    accounts: dict[int, list[int]] = {}
    for n in range(n_customers):
        c = Customer.objects.create(
            parent=reseller if n % 10 == 3 else operator,
            name=f"C{n}",
            company=f"Customer {n:03d}",
            web_username=f"inv{n}",
            billing_decimals=4,
            time_zone=ZONES[n % 3],
            tax_flag="VAT" if n % 4 == 1 else "NONE",
            tax_rate=D("20") if n % 4 == 1 else D(0),
            billing_type="postpaid",
            credit_limit=D("100000"),
            **base,
        )
        ids.append(c.pk)
        accs = [Account.objects.create(customer=c, name=f"a{n}-{k}") for k in range(1 + n % 2)]
        accounts[c.pk] = [a.pk for a in accs]
        if n % 5 == 0:
            Did.objects.create(number=f"3314{n:07d}", status="assigned", account=accs[0], cost_center=f"Site {n % 3}")
        if n % 7 == 2:
            BillingProfile.objects.create(customer=c, discount_kind="percent", discount_value=D("12.5"))
        elif n % 7 == 4:
            BillingProfile.objects.create(customer=c, discount_kind="fixed", discount_value=D("3.00"))
        elif n % 13 == 6:
            BillingProfile.objects.create(customer=c, cycle="weekly", weekday=2)
        elif n % 17 == 8:
            BillingProfile.objects.create(customer=c, cycle="custom", every_days=10, anchor=date(2026, 10, 27))
    with transaction.atomic():
        ids_ahead = ledger.NextIds()
        keys = [(pk, b) for pk in ids for b in range(batches)]
        ids_ahead.prepare(keys)
        postings = []
        cdrs = []
        call = 0
        for pk, b in keys:
            at = START - timedelta(hours=3) + timedelta(hours=b * 76 + rnd.randrange(70))
            acc = accounts[pk][b % len(accounts[pk])]
            total = D(0)
            for _ in range(cdrs_per_batch):
                call += 1
                price = D(rnd.randrange(0, 200000)).scaleb(-4)
                seconds = rnd.randrange(1, 1800)
                cdrs.append(
                    Cdr(
                        switch="sw",
                        call_id=f"c{call}",
                        callee="442079460958",
                        number="442079460958",
                        did=f"3314{ids.index(pk):07d}" if call % 3 == 0 else "",
                        start_time=at - timedelta(minutes=40),
                        duration=seconds,
                        billed_seconds=seconds,
                        destination=rnd.choice(DESTINATIONS),
                        price=price,
                        customer_id=pk,
                        account_id=acc,
                        rating_status="rated",
                        transaction_id=ids_ahead[(pk, b)],
                    )
                )
                total += price
            postings.append(
                ledger.Posting(
                    id=ids_ahead[(pk, b)],
                    customer_id=pk,
                    amount=-total,
                    kind="call_charge",
                    reference=None,
                    description=f"{cdrs_per_batch} calls",
                    created_at=at,
                )
            )
        Cdr.objects.bulk_create(cdrs, batch_size=2000)
        ledger.post(postings)
        other = []
        for n, pk in enumerate(ids):
            t = START + timedelta(days=n % 28, hours=5)
            for kind, amount, ref in (
                ("recurring_fee", D("-30.00"), f"fee:{pk}"),
                ("one_time_fee", D("-5.5") if n % 3 == 0 else D(0), f"setup:{pk}"),
                ("minimum_charge", D("-1.2345") if n % 11 == 0 else D(0), f"min:{pk}"),
                ("penalty", D("-7.00") if n % 6 == 0 else D(0), f"pen:{pk}"),
                ("penalty", D("2.00") if n % 12 == 0 else D(0), f"pen-back:{pk}"),
                ("deposit", D("-50") if n % 8 == 0 else D(0), f"dep:{pk}"),
                ("adjustment", D("1.0001") if n % 5 == 0 else D("-0.5"), f"adj:{pk}"),
                ("payment", D("100"), f"pay:{pk}"),
                ("credit", D("4.25") if n % 4 == 0 else D(0), f"cr:{pk}"),
            ):
                other.append(
                    ledger.Posting(
                        customer_id=pk, amount=amount, kind=kind, reference=ref, description="", created_at=t
                    )
                )
            for edge, tag in ((START - timedelta(hours=14), "before"), (datetime(2026, 12, 1, 5, tzinfo=UTC), "after")):
                other.append(
                    ledger.Posting(
                        customer_id=pk,
                        amount=D("-9.99"),
                        kind="recurring_fee",
                        reference=f"{tag}:{pk}",
                        created_at=edge,
                    )
                )
        ledger.post(other)
    return ids
