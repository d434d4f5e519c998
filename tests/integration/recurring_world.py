"""A generated month of services for the recurring-charge tests: customers with every service kind
(account or trunk, extension, IP address, DID, virtual number), plans of every period, activations
and cancellations scattered over the month. Used in process and by subprocesses
(``tarifa manage shell -c "from tests.integration.recurring_world import build; build(...)"``)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

D = Decimal
MONTH_START = date(2026, 2, 1)
RUN_UNTIL = date(2026, 3, 1)  # the worker runs every day from MONTH_START to RUN_UNTIL


@dataclass
class World:
    customers: list[int] = field(default_factory=list)
    cdr_prices: dict[int, list[tuple[datetime, Decimal]]] = field(default_factory=dict)  # account id -> CDRs
    released: dict[int, date] = field(default_factory=dict)  # DID id -> release date


def _plans() -> list[object]:
    from tarifa.billing.models import IncludedMinutes, ServicePlan

    specs = [
        dict(name="Monthly 1st", period="monthly", recurring_fee=D("30.00"), billing_day=1, setup_fee=D("5")),
        dict(name="Monthly 31st", period="monthly", recurring_fee=D("19.99"), billing_day=31, activation_fee=D("2.50")),
        dict(name="Monthly 15th flat", period="monthly", recurring_fee=D("12.00"), billing_day=15, prorate=False),
        dict(name="Weekly Wed", period="weekly", recurring_fee=D("7.77"), weekday=2),
        dict(name="Daily", period="daily", recurring_fee=D("0.33")),
        dict(name="Minimum 20", period="monthly", recurring_fee=D("10.00"), billing_day=1, minimum_amount=D("20.00")),
        dict(name="Monthly 29th", period="monthly", recurring_fee=D("9.00"), billing_day=29, setup_fee=D("1.11")),
    ]
    plans = [ServicePlan.objects.create(**spec) for spec in specs]  # type: ignore[arg-type]
    IncludedMinutes.objects.create(plan=plans[0], name="US", prefixes=["1"], minutes=100, rollover_cap=50)
    return plans


def build(customers: int = 100, seed: int = 14) -> World:
    """Create the month's services (activation dates before and within February 2026)."""
    from tarifa.cdrs.models import Cdr
    from tarifa.customers.models import Account, Customer, IpDevice, SipDevice
    from tarifa.dids.models import Did, DidPlan, VirtualNumber
    from tarifa.rating.models import Tariff

    rng = random.Random(seed)
    world = World()
    usd = Tariff.objects.create(name="Recurring USD")
    jpy = Tariff.objects.create(name="Recurring JPY", currency="JPY")
    plans = _plans()
    did_plans = [
        DidPlan.objects.create(name="DID basic", monthly_fee=D("1.50"), setup_fee=D("3.00")),
        DidPlan.objects.create(name="DID toll-free", monthly_fee=D("4.10")),
    ]

    def day() -> date:
        return date(2026, 1, 10) + timedelta(days=rng.randrange(0, 49))  # Jan 10 .. Feb 27

    def maybe_cancel(start: date) -> date | None:
        if rng.random() < 0.25:
            return min(RUN_UNTIL, start + timedelta(days=rng.randrange(1, 30)))
        return None

    for n in range(customers):
        yen = n % 10 == 9
        customer = Customer.objects.create(
            name=f"R{n}",
            company=f"Recurring {n}",
            web_username=f"rec{n}",
            tariff=jpy if yen else usd,
            currency="JPY" if yen else "USD",
            email=f"r{n}@r.example",
            phone="+12015550123",
            country="US",
            billing_type="postpaid",
            credit_limit=D("100000"),
        )
        world.customers.append(customer.pk)
        plan = plans[n % len(plans)]
        activation = day()
        account = Account.objects.create(
            customer=customer,
            name=f"acc{n}",
            kind="trunk" if n % 2 else "ip",
            identifier=f"trunk{n}",
            service_plan=plan,
            activation_date=activation,
            cancellation_date=maybe_cancel(activation),
            balance_mode="own" if n % 7 == 3 else "shared",
        )
        if plan.minimum_amount:  # a few calls: usage below (or above) the minimum
            prices = []
            for k in range(rng.randrange(0, 4)):
                at = datetime(2026, 1, 20, tzinfo=UTC) + timedelta(days=rng.randrange(0, 38), minutes=k)
                price = D(rng.randrange(0, 900)) / 100
                Cdr.objects.create(
                    switch="sw",
                    call_id=f"c{n}-{k}",
                    callee="12125550100",
                    start_time=at,
                    account=account,
                    customer=customer,
                    price=price,
                )
                prices.append((at, price))
            world.cdr_prices[account.pk] = prices
        start = day()
        SipDevice.objects.create(
            account=account,
            login=f"ext{n}",
            secret="Secret1x",
            extension=str(100 + n),
            service_plan=plans[(n + 1) % len(plans)],
            activation_date=start,
            cancellation_date=maybe_cancel(start),
        )
        start = day()
        IpDevice.objects.create(
            account=account,
            address=f"10.14.{n // 200}.{n % 200 + 1}",
            service_plan=plans[(n + 3) % len(plans)],
            activation_date=start,
            cancellation_date=maybe_cancel(start),
        )
        did = Did.objects.create(
            number=f"1212555{n:04d}", status="assigned", account=account, plan=did_plans[n % 2], activation_date=day()
        )
        VirtualNumber.objects.create(
            number=f"7{n:04d}",
            primary_did=did,
            account=account,
            activation_date=day(),
            additional_charge=D("2.00") if n % 3 else D("0"),
        )
        if n % 5 == 0:
            world.released[did.pk] = min(RUN_UNTIL, did.activation_date + timedelta(days=rng.randrange(1, 25)))
    return world
