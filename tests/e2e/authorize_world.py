"""Helpers for the call-authorisation concurrency tests: a small world and a look at its reservations.

Run as ``python tests/e2e/authorize_world.py setup|reservations`` with TARIFA_DATABASE_URL set.
``setup`` prints one JSON line: the switch token and, per scenario, the SIP login to call from
and the customer's account code. ``reservations`` prints the count, sum and amounts of the
reservations held by each scenario's customer.

Every scenario has its own customer, so the scenarios never share a limit:

| login  | customer                                   | account                  | for                     |
| ------ | ------------------------------------------ | ------------------------ | ----------------------- |
| warm   | postpaid, huge credit and limits           | unlimited                | warming the servers up  |
| conc   | postpaid, huge credit and limits           | max_channels = 10        | concurrent-call limit   |
| whole  | prepaid, 1.00 paid in, max call 14400 s    | unlimited                | funds (one call takes all) |
| slices | prepaid, 1.00 paid in, max call 60 s       | unlimited                | funds (0.10 per call)   |
| cps    | postpaid, huge credit, calls_per_second=5  | unlimited                | CPS limit               |

All calls go to the UK (44...), priced 0.10/min in 60 s increments (a call of 600 s costs 1.00);
the one vendor sells it at 0.05/min. Accounts dial E.164 and may call abroad.
"""

from __future__ import annotations

import json
import os
import sys
from decimal import Decimal

BIG = 1_000_000
SCENARIOS = {
    # login: (billing, balance paid in, credit limit, customer CPS, max call duration, account channels)
    "warm": ("postpaid", None, Decimal(BIG), BIG, 3600, None),
    "conc": ("postpaid", None, Decimal(BIG), BIG, 3600, 10),
    "whole": ("prepaid", Decimal("1.00"), Decimal(0), BIG, 14400, None),
    "slices": ("prepaid", Decimal("1.00"), Decimal(0), BIG, 60, None),
    "cps": ("postpaid", None, Decimal(BIG), 5, 3600, None),
}


def setup() -> None:
    from tarifa.api.models import ApiToken
    from tarifa.billing import ledger
    from tarifa.customers.models import Account, Customer, SipDevice
    from tarifa.rating.models import Rate, Tariff
    from tarifa.routing.models import (
        Connection,
        DestinationRate,
        DestinationSet,
        Pop,
        RouteOffer,
        RoutingEntry,
        RoutingGroup,
        Vendor,
    )

    tariff = Tariff.objects.create(name="Sell")
    Rate.objects.create(
        tariff=tariff,
        prefix="44",
        destination="United Kingdom",
        price_1=Decimal("0.10"),
        price_n=Decimal("0.10"),
        interval_1=60,
        interval_n=60,
    )
    vendor = Vendor.objects.create(name="Carrier")
    conn = Connection.objects.create(vendor=vendor, name="carrier", host="gw.carrier.example")
    dset = DestinationSet.objects.create(name="Carrier set", vendor=vendor)
    DestinationRate.objects.create(destination_set=dset, prefix="44", price_1=Decimal("0.05"), price_n=Decimal("0.05"))
    group = RoutingGroup.objects.create(name="Value", policy="least_cost")
    RoutingEntry.objects.create(group=group, connection=conn, destination_set=dset)
    for dclass in ("domestic", "international", "tollfree"):
        RouteOffer.objects.create(destination_class=dclass, choice="value", routing_group=group)
    operator = Customer.objects.create(
        kind="operator",
        name="Op",
        company="Operator",
        web_username="op",
        tariff=tariff,
        email="o@o.example",
        phone="+12015550123",
        country="US",
    )
    out: dict[str, object] = {}
    for login, (billing, paid, credit, cps, longest, channels) in SCENARIOS.items():
        customer = Customer.objects.create(
            parent=operator,
            name=login,
            company=f"{login} Ltd",
            web_username=f"cust-{login}",
            tariff=tariff,
            email="c@c.example",
            phone="+12015550123",
            country="US",
            billing_type=billing,
            credit_limit=credit,
            billing_decimals=4,
            max_call_sessions=BIG,
            calls_per_second=cps,
            max_call_duration=longest,
        )
        if paid is not None:
            ledger.post_one(
                ledger.Posting(customer_id=customer.pk, amount=paid, kind="payment", reference=f"pay-{login}")
            )
        account = Account.objects.create(
            customer=customer, name=login, dialing_mode="e164", allow_international=True, max_channels=channels
        )
        SipDevice.objects.create(account=account, login=login, secret="s")
        out[login] = {"customer": customer.account_code, "account": account.account_code}
    pop, _ = Pop.objects.get_or_create(name="pop-e2e")
    _token, raw = ApiToken.issue("e2e switch", switch=pop)
    print(json.dumps({"token": raw, "switch": pop.name, "scenarios": out}))


def reservations() -> None:
    from tarifa.calls.models import Reservation
    from tarifa.customers.models import Customer

    out = {}
    for login in SCENARIOS:
        customer = Customer.objects.get(name=login, kind="customer")
        held = list(Reservation.objects.filter(customer=customer).order_by("id").values_list("amount", "call_id"))
        out[login] = {
            "count": len(held),
            "sum": str(sum((amount for amount, _call in held), Decimal(0))),
            "amounts": [str(amount) for amount, _call in held],
            "call_ids": [call for _amount, call in held],
            "balance": str(customer.balance),
        }
    print(json.dumps(out))


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tarifa.settings")
    import django

    django.setup()
    {"setup": setup, "reservations": reservations}[sys.argv[1]]()
