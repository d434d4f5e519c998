"""Helpers for the crash/concurrency tests: set up a small world, write a CDR file, check the books.

Run as ``python tests/e2e/ingest_world.py setup|check`` with TARIFA_DATABASE_URL set.
"""

from __future__ import annotations

import json
import os
import sys
from decimal import Decimal


def setup() -> None:
    from tarifa.customers.models import Account, Customer, SipDevice
    from tarifa.rating.models import Rate, Tariff
    from tarifa.routing.models import Pop

    Pop.objects.create(name="sw")  # the importers' --switch
    tariff = Tariff.objects.create(name="T")
    Rate.objects.create(
        tariff=tariff,
        prefix="44",
        destination="UK",
        price_1=Decimal("0.0137"),
        price_n=Decimal("0.0137"),
        interval_1=30,
        interval_n=6,
    )
    operator = Customer.objects.create(
        kind="operator",
        name="O",
        company="O",
        web_username="op",
        tariff=tariff,
        email="o@o.example",
        phone="+12015550123",
        country="US",
    )
    for n in range(20):
        customer = Customer.objects.create(
            parent=operator,
            name=f"C{n}",
            company=f"C{n}",
            web_username=f"c{n}",
            tariff=tariff,
            email="c@c.example",
            phone="+12015550123",
            country="US",
        )
        for m in range(5):
            account = Account.objects.create(
                customer=customer, name=f"a{n}-{m}", dialing_mode="e164", balance_mode="own" if m == 4 else "shared"
            )
            SipDevice.objects.create(account=account, login=f"u{n * 5 + m}", secret="s")


def check() -> None:
    from django.db.models import Count, Sum

    from tarifa.billing.models import Transaction
    from tarifa.cdrs.models import Cdr
    from tarifa.customers.models import Account, Customer

    charged = Cdr.objects.filter(price__gt=0)
    charges = Transaction.objects.filter(kind="call_charge")
    # every charge accounts exactly for the calls that point to it
    mismatched = sum(
        1
        for t in charges.annotate(calls_total=Sum("calls__price"), calls_n=Count("calls"))
        if t.calls_n == 0 or -t.amount != t.calls_total
    )
    customers_ok = all(
        c.balance == (Transaction.objects.filter(customer=c, account__isnull=True).aggregate(s=Sum("amount"))["s"] or 0)
        for c in Customer.objects.all()
    )
    accounts_ok = all(
        a.balance == (Transaction.objects.filter(account=a).aggregate(s=Sum("amount"))["s"] or 0)
        for a in Account.objects.filter(balance_mode="own")
    )
    print(
        json.dumps(
            {
                "cdrs": Cdr.objects.count(),
                "distinct_calls": Cdr.objects.values("switch", "call_id", "leg").distinct().count(),
                "charged_cdrs": charged.count(),
                "charged_cdrs_without_charge": charged.filter(transaction__isnull=True).count(),
                "charges_not_matching_their_calls": mismatched,
                "charge_transactions": charges.count(),
                "price_total": str(charged.aggregate(s=Sum("price"))["s"] or 0),
                "ledger_total": str(-(Transaction.objects.aggregate(s=Sum("amount"))["s"] or 0)),
                "balances_equal_ledger": customers_ok and accounts_ok,
            }
        )
    )


def write_cdrs(path: str, start: int, stop: int) -> None:
    with open(path, "w") as out:
        out.write("call_id,callee,start_time,duration,sip_user\n")
        for n in range(start, stop):
            out.write(
                f"k{n},44207946{n % 10000:04d},2026-03-01T{n % 24:02d}:{n % 60:02d}:00+00:00,{n % 900},u{n % 100}\n"
            )


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tarifa.settings")
    import django

    django.setup()
    {"setup": setup, "check": check}[sys.argv[1]]()
