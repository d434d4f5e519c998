"""The demo data set (``tarifa demo``): idempotent, every row keyed by a natural key.

An operator, 2 resellers, 10 customers, 30 accounts of every kind, a world tariff derived from
libphonenumber metadata (one rate per calling code plus mobile prefixes), 3 vendors with
connections and destination sets, routing groups, plans, 20 DIDs and 1,000 rated CDRs.

The money history is posted through the ledger at the dates it describes: an opening payment on
1 January 2026, then each customer's calls of each day of January charged at the end of that day
(the day's CDRs point to their charge), so balances stay positive and today's spending is zero.
Services with a plan start on the first day of the current month, so the first charges run posts
no back months.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import phonenumbers
from django.contrib.auth.hashers import make_password
from django.db import transaction

from tarifa.billing import ledger
from tarifa.billing.choices import TransactionKind
from tarifa.billing.models import IncludedMinutes, ServicePlan, Transaction
from tarifa.cdrs.choices import Disposition, RatingStatus
from tarifa.cdrs.models import Cdr
from tarifa.core import worlddeck
from tarifa.core.deck import DeckRow
from tarifa.core.rating import RateEntry, RateTable, RateTerms, Rounding, rate_call
from tarifa.customers.choices import AccountKind, BalanceMode, BillingType, CustomerKind, DialingMode, RouteChoice
from tarifa.customers.forms import set_web_access
from tarifa.customers.models import Account, Customer, IpDevice, SipDevice, TranslationRule
from tarifa.dids.choices import DidStatus
from tarifa.dids.models import Did, DidPlan, VirtualNumber
from tarifa.rating import decks
from tarifa.rating.models import Rate, Tariff
from tarifa.routing.choices import RoutingPolicy
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

DEMO_PASSWORD = "Demo-pass1"
SWITCH = "demo-switch"
CDR_COUNT = 1000
# Fixed so that re-running the demo produces the same CDRs (the idempotency key includes the call id).
CDR_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
CDR_DAYS = 30
#: Every customer's opening payment, posted at CDR_EPOCH: more than any demo customer's January
#: calls cost, so prepaid customers still have money and can place calls.
OPENING_PAYMENT = Decimal("200.00")
ACTOR = "tarifa demo"
#: Directory assistance: $0.99 per call (seed 001), not a per-minute price. N11 codes are
#: normalised to 1 + code (core.numbering), so 411 is priced under prefix 1411.
DIRECTORY_RATE = {
    "prefix": "1411",
    "destination": "Directory assistance 411",
    "price_1": Decimal(0),
    "price_n": Decimal(0),
    "connect_fee": Decimal("0.99"),
}

VENDORS = (
    ("Atlas Carrier", "vendor-atlas", Decimal("0.80")),
    ("Borealis Telecom", "vendor-borealis", Decimal("0.88")),
    ("Cygnus Voice", "vendor-cygnus", Decimal("0.95")),
)

CUSTOMERS = (
    # (web user name, company, country, billing type, parent index: None = operator, 0/1 = reseller)
    ("acmecorp", "Acme Corp", "US", BillingType.POSTPAID, None),
    ("globexltd", "Globex Ltd", "GB", BillingType.PREPAID, None),
    ("initech", "Initech GmbH", "DE", BillingType.POSTPAID, None),
    ("umbrella", "Umbrella SARL", "FR", BillingType.PREPAID, None),
    ("hooli", "Hooli Inc", "US", BillingType.PREPAID, 0),
    ("piedpiper", "Pied Piper", "US", BillingType.POSTPAID, 0),
    ("vandelay", "Vandelay Industries", "CA", BillingType.PREPAID, 0),
    ("wonka", "Wonka Sweets", "GB", BillingType.PREPAID, 1),
    ("stark", "Stark Solutions", "ES", BillingType.POSTPAID, 1),
    ("wayne", "Wayne Enterprises", "IT", BillingType.PREPAID, 1),
)

ACCOUNT_KINDS = (
    AccountKind.SIP_USER,
    AccountKind.TRUNK,
    AccountKind.IP,
    AccountKind.EXTENSION,
    AccountKind.DEVICE,
    AccountKind.DID,
)


def _h(*parts: object) -> int:
    """A stable pseudo-random integer: the demo never depends on ``random`` state."""
    return int.from_bytes(hashlib.sha256("|".join(map(str, parts)).encode()).digest()[:8], "big")


def _phone(region: str) -> str:
    example = phonenumbers.example_number(region)
    if example is None:
        raise ValueError(f"phonenumbers has no example number for region {region}")
    return phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)


def _rate_rows(seed: str, markdown: Decimal | None) -> list[DeckRow]:
    """One rate per world destination, priced from ``seed``; terms the price leaves out at their defaults."""
    rows = []
    for dest in worlddeck.world_destinations():
        price = worlddeck.price_for(dest, seed=seed, markdown=markdown)
        rows.append(
            DeckRow(
                line=0,
                prefix=dest.prefix,
                destination=dest.name,
                price_1=price["price_1"],
                price_n=price["price_n"],
                interval_1=price["interval_1"],
                interval_n=price["interval_n"],
                connect_fee=price["connect_fee"],
                free_seconds=0,
                grace_period=0,
                post_call_surcharge=Decimal(0),
                min_charge=Decimal(0),
                effective_from=None,
                effective_to=None,
                period="",
                forbidden=False,
            )
        )
    return rows


def _directory_rate(tariff: Tariff) -> None:
    """411 at a price per call (added once; an operator's later change is left alone)."""
    if not Rate.objects.filter(tariff=tariff, prefix=DIRECTORY_RATE["prefix"]).exists():
        rate = Rate(tariff=tariff, **DIRECTORY_RATE)
        rate.full_clean()
        rate.save()


@functools.cache
def _demo_password_hash() -> str:
    """DEMO_PASSWORD hashed once: every demo login has the same documented password, and hashing
    it is deliberately slow (Argon2), 0.3 s per customer otherwise."""
    return make_password(DEMO_PASSWORD)


def _customer(
    username: str,
    company: str,
    country: str,
    billing: str,
    parent: Customer,
    tariff: Tariff,
    kind: str = CustomerKind.CUSTOMER,
) -> Customer:
    customer = Customer.objects.filter(web_username=username).first()
    if customer is None:
        customer = Customer(
            web_username=username,
            company=company,
            name=f"{company.split()[0]} Admin",
            kind=kind,
            parent=parent,
            tariff=tariff,
            billing_type=billing,
            country=country,
            phone=_phone(country),
            email=f"billing@{username}.example"[:30],
            address=f"{_h(username) % 200 + 1} Demo Street",
            credit_limit=Decimal("100") if billing == BillingType.POSTPAID else Decimal("0"),
            billing_decimals=4,
            codecs=["PCMU", "PCMA", "G729"],
        )
        customer.full_clean()
        customer.save()
        set_web_access(customer, None, hashed=_demo_password_hash())
    return customer


def _post(customer: Customer, kind: str, amount: Decimal, reference: str, description: str, at: datetime) -> None:
    """Post through the ledger once per reference, at the time the history describes."""
    if Transaction.objects.filter(reference=reference).exists():
        return
    ledger.post(
        [
            ledger.Posting(
                customer_id=customer.pk,
                amount=amount,
                kind=kind,
                reference=reference,
                description=description,
                actor=ACTOR,
                created_at=at,
            )
        ]
    )


@transaction.atomic
def load_demo(echo: Callable[[str], None] = lambda _text: None) -> dict[str, int]:
    echo("World tariff from libphonenumber metadata ...")
    world, _ = Tariff.objects.get_or_create(
        name="World retail", defaults={"description": "One rate per calling code plus mobile prefixes."}
    )
    decks.add_missing(world, _rate_rows("sell", None))
    _directory_rate(world)
    overrides, _ = Tariff.objects.get_or_create(
        name="Acme overrides", defaults={"base": world, "description": "Customer-specific prices over World retail."}
    )
    for prefix, price in (("44", "0.0090"), ("447", "0.0350"), ("49", "0.0110")):
        Rate.objects.get_or_create(
            tariff=overrides,
            prefix=prefix,
            defaults={"destination": f"Override {prefix}", "price_1": Decimal(price), "price_n": Decimal(price)},
        )

    echo("Vendors, connections and destination sets ...")
    pops = [
        Pop.objects.get_or_create(name=name, defaults={"address": addr})[0]
        for name, addr in (("pop-nyc", "127.0.0.1:5060"), ("pop-lon", "127.0.0.1:5062"))
    ]
    premium_tariff, _ = Tariff.objects.get_or_create(
        name="World premium", defaults={"description": "Premium routes: better quality, caller ID guaranteed."}
    )
    decks.add_missing(premium_tariff, _rate_rows("premium", Decimal("1.25")))
    _directory_rate(premium_tariff)
    value, _ = RoutingGroup.objects.get_or_create(name="Value", defaults={"policy": RoutingPolicy.LEAST_COST})
    premium, _ = RoutingGroup.objects.get_or_create(
        name="Premium", defaults={"policy": RoutingPolicy.PRIORITY, "tariff": premium_tariff}
    )
    vendor_tables: list[tuple[Connection, RateTable]] = []
    for index, (name, seed, markdown) in enumerate(VENDORS):
        vendor, _ = Vendor.objects.get_or_create(name=name, defaults={"contact_email": f"noc@{seed}.example"})
        connections = [
            Connection.objects.get_or_create(
                vendor=vendor,
                name=f"{seed}-{n}",
                defaults={"host": f"127.0.{index + 1}.{n}", "max_channels": 100 * n, "max_cps": 10 * n},
            )[0]
            for n in (1, 2)
        ]
        dset, _ = DestinationSet.objects.get_or_create(name=f"{name} A-Z", defaults={"vendor": vendor})
        rows = _rate_rows(seed, markdown)
        decks.add_missing(dset, rows)
        for n, conn in enumerate(connections):
            RoutingEntry.objects.get_or_create(
                group=value, connection=conn, destination_set=dset, defaults={"priority": 10 * (index + 1) + n}
            )
        RoutingEntry.objects.get_or_create(
            group=premium,
            connection=connections[0],
            destination_set=dset,
            defaults={"priority": 10 * (len(VENDORS) - index)},
        )
        vendor_tables.append((connections[0], RateTable([RateEntry(r.prefix, r.destination, r.terms()) for r in rows])))
    for dclass in ("domestic", "international", "tollfree", "directory", "emergency"):
        RouteOffer.objects.get_or_create(
            destination_class=dclass, choice=RouteChoice.VALUE, defaults={"routing_group": value}
        )
        RouteOffer.objects.get_or_create(
            destination_class=dclass, choice=RouteChoice.PREMIUM, defaults={"routing_group": premium}
        )
    TranslationRule.objects.get_or_create(
        connection=vendor_tables[0][0],
        kind="destination",
        match=r"^(\d+)$",
        defaults={"replace": r"00\1", "description": "Atlas wants international 00 format"},
    )

    echo("Plans ...")
    # Plans start at the beginning of the current month (UTC), not with the January history: a
    # first `tarifa charges run` then posts no back months and every demo customer can still call.
    services_from = datetime.now(UTC).date().replace(day=1)
    business, _ = ServicePlan.objects.get_or_create(
        name="Business Premium", defaults={"recurring_fee": Decimal("29.99"), "setup_fee": Decimal("10")}
    )
    IncludedMinutes.objects.get_or_create(
        plan=business, name="US & Canada", defaults={"prefixes": ["1"], "minutes": 1000}
    )
    # offered on the portal's sign-up page (shown when TARIFA_SIGNUP is on), with the world tariff
    ServicePlan.objects.get_or_create(
        name="Basic",
        defaults={"recurring_fee": Decimal("4.99"), "offered_for_signup": True, "signup_tariff": world},
    )
    did_plan, _ = DidPlan.objects.get_or_create(
        name="US local",
        defaults={
            "monthly_fee": Decimal("1.50"),
            "included_minutes": 200,
            "inbound_rate": Decimal("0.0060"),
            "offered_for_signup": True,
        },
    )

    echo("Customers and accounts ...")
    operator = Customer.objects.filter(kind=CustomerKind.OPERATOR).first() or _customer(
        "operator",
        "Tarifa Telecom",
        "US",
        BillingType.POSTPAID,
        None,  # type: ignore[arg-type]  # the operator has no parent
        world,
        CustomerKind.OPERATOR,
    )
    resellers = [
        _customer(user, company, country, BillingType.PREPAID, operator, world, CustomerKind.RESELLER)
        for user, company, country in (
            ("voicenet", "VoiceNet Resellers", "GB"),
            ("callwave", "Callwave Partners", "US"),
        )
    ]
    customers = [
        _customer(
            user,
            company,
            country,
            billing,
            operator if parent is None else resellers[parent],
            overrides if user == "acmecorp" else world,
        )
        for user, company, country, billing, parent in CUSTOMERS
    ]
    accounts: list[Account] = []
    for c_index, customer in enumerate(customers):
        for a_index in range(3):
            kind = ACCOUNT_KINDS[(c_index * 3 + a_index) % len(ACCOUNT_KINDS)]
            account, created = Account.objects.get_or_create(
                customer=customer,
                name=f"{customer.web_username}-{kind}-{a_index + 1}",
                defaults={
                    "kind": kind,
                    "identifier": f"{1000 + a_index}"
                    if kind == AccountKind.EXTENSION
                    else (f"trunk-{customer.web_username}" if kind == AccountKind.TRUNK else ""),
                    "max_channels": 30 if kind == AccountKind.TRUNK else None,
                    "dialing_mode": DialingMode.NANP if customer.country in ("US", "CA") else DialingMode.E164,
                    "allow_international": a_index != 2,
                    "balance_mode": BalanceMode.SHARED,
                    "service_plan": business if a_index == 0 else None,
                    "activation_date": services_from,
                    "sip_password": f"Sip{_h(customer.pk, a_index) % 10**8:08d}!",
                },
            )
            if created:
                account.full_clean()
                account.pop_restriction.set(pops[: 1 + a_index % 2])
            accounts.append(account)
            if kind in (AccountKind.SIP_USER, AccountKind.DEVICE):
                SipDevice.objects.get_or_create(
                    login=f"{customer.web_username}{a_index + 1}",
                    defaults={
                        "account": account,
                        "secret": f"S{_h('sip', account.pk) % 10**10:010d}x",
                        "extension": f"{100 + a_index}",
                    },
                )
            if kind in (AccountKind.IP, AccountKind.TRUNK):
                IpDevice.objects.get_or_create(
                    address=f"198.51.100.{c_index * 3 + a_index + 1}",
                    defaults={"account": account, "description": f"{customer.company} gateway"},
                )

    echo("DIDs ...")
    did_accounts = [a for a in accounts if a.kind in (AccountKind.DID, AccountKind.SIP_USER)]
    for n in range(20):
        number = f"1201555{n:04d}"
        assigned = did_accounts[n % len(did_accounts)] if n < 12 else None
        # one number of each other status: being ported in, and released on 2026-01-01 (90 days' quarantine)
        spare = {18: DidStatus.PORTING, 19: DidStatus.QUARANTINED}.get(n, DidStatus.AVAILABLE)
        Did.objects.get_or_create(
            number=number,
            defaults={
                "vendor": Vendor.objects.order_by("name").first(),
                "monthly_cost": Decimal("0.35"),
                "status": DidStatus.ASSIGNED if assigned else spare,
                "account": assigned,
                "quarantine_until": date(2026, 4, 1) if spare == DidStatus.QUARANTINED else None,
                "plan": did_plan if assigned else None,
                "activation_date": services_from if assigned else None,
            },
        )
    primary = Did.objects.get(number="12015550000")
    assert primary.account is not None  # assigned just above
    for n in range(3):
        VirtualNumber.objects.get_or_create(
            number=f"{200 + n}", defaults={"primary_did": primary, "account": primary.account}
        )

    echo("Payments and historical CDRs ...")
    for customer in [*resellers, *customers]:
        _post(
            customer,
            TransactionKind.PAYMENT,
            OPENING_PAYMENT,
            f"demo-payment-{customer.web_username}",
            "Opening payment",
            CDR_EPOCH,
        )
    _load_cdrs(accounts, world, vendor_tables)

    return {
        "customers": Customer.objects.count(),
        "accounts": Account.objects.count(),
        "tariffs": Tariff.objects.count(),
        "rates": Rate.objects.count(),
        "vendors": Vendor.objects.count(),
        "destination rates": DestinationRate.objects.count(),
        "dids": Did.objects.count(),
        "cdrs": Cdr.objects.count(),
        "transactions": Transaction.objects.count(),
    }


def _table(rows: Iterable[Mapping[str, Any]]) -> RateTable:
    return RateTable(
        [
            RateEntry(
                prefix=row["prefix"],
                destination=row["destination"],
                terms=RateTerms(
                    price_1=row["price_1"],
                    price_n=row["price_n"],
                    interval_1=row["interval_1"],
                    interval_n=row["interval_n"],
                    connect_fee=row["connect_fee"],
                ),
            )
            for row in rows
        ]
    )


def _load_cdrs(accounts: list[Account], world: Tariff, vendor_tables: list[tuple[Connection, RateTable]]) -> None:
    if Cdr.objects.filter(switch=SWITCH).count() >= CDR_COUNT:
        return
    sell = _table(
        list(
            Rate.objects.filter(tariff=world).values(
                "prefix", "destination", "price_1", "price_n", "interval_1", "interval_n", "connect_fee"
            )
        )
    )
    destinations = worlddeck.world_destinations()
    rows: list[Cdr] = []
    for n in range(CDR_COUNT):
        account = accounts[_h("acct", n) % len(accounts)]
        dest = destinations[_h("dest", n) % len(destinations)]
        tail = f"{_h('tail', n) % 10**9:09d}"
        number = (dest.prefix + tail)[: max(len(dest.prefix) + 4, 11)]
        start = CDR_EPOCH + timedelta(seconds=_h("start", n) % (CDR_DAYS * 86400))
        answered = _h("answered", n) % 5 != 0
        duration = _h("duration", n) % 900 if answered else 0
        connection, vendor_table = vendor_tables[_h("vendor", n) % len(vendor_tables)]
        customer = account.customer
        price = rate_call(sell, number, start, duration, customer.billing_decimals, world.rounding)
        cost = rate_call(vendor_table, number, start, duration, 6, Rounding.HALF_UP)
        rated = price.status == RatingStatus.RATED
        rows.append(
            Cdr(
                switch=SWITCH,
                call_id=f"demo-{n:05d}",
                leg="a",
                account=account,
                customer=customer,
                caller=f"1201555{n % 10000:04d}",
                callee=number,
                number=number,
                start_time=start,
                connect_time=start + timedelta(seconds=3) if answered else None,
                end_time=start + timedelta(seconds=3 + duration),
                duration=duration,
                disposition=Disposition.ANSWERED if answered else Disposition.NO_ANSWER,
                sip_code=200 if answered else 487,
                connection=connection,
                prefix=price.prefix or "",
                destination=price.destination or "",
                billed_seconds=price.billed_seconds,
                price=price.cost or Decimal(0),
                cost=cost.cost or Decimal(0),
                margin=(price.cost or Decimal(0)) - (cost.cost or Decimal(0)),
                rating_status=RatingStatus.RATED if rated else RatingStatus.UNRATED,
                unrated_reason="" if rated else str(price.reason or ""),
                rated_at=start + timedelta(seconds=duration + 5),
            )
        )
    # One call_charge per customer and day, posted at the end of that day and pointed to by the
    # day's calls, as CDR ingestion would have posted them (docs/cdr-ingestion.md).
    days: dict[tuple[int, date], list[Cdr]] = {}
    for row in rows:
        if row.rating_status == RatingStatus.RATED and row.price and row.customer_id is not None:
            days.setdefault((row.customer_id, row.start_time.date()), []).append(row)
    ids = ledger.NextIds()
    ids.prepare(sorted(days))
    for key, calls in days.items():
        for row in calls:
            row.transaction_id = ids[key]
    Cdr.objects.bulk_create(rows, batch_size=500, ignore_conflicts=True)
    users = dict(Customer.objects.filter(pk__in={c for c, _ in days}).values_list("pk", "web_username"))
    ledger.post(
        [
            ledger.Posting(
                id=ids[key],
                customer_id=key[0],
                amount=-sum((row.price for row in calls), Decimal(0)),
                kind=TransactionKind.CALL_CHARGE,
                reference=f"demo-calls-{users[key[0]]}-{key[1]:%Y-%m-%d}",
                description=f"{len(calls)} demo call{'s' if len(calls) != 1 else ''} on {key[1]:%Y-%m-%d}",
                actor=ACTOR,
                created_at=datetime.combine(key[1], time(23, 59, 59), tzinfo=UTC),
            )
            for key, calls in sorted(days.items(), key=lambda item: (item[0][1], item[0][0]))
        ]
    )
