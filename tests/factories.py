"""Shared test data: the worlds several test modules build on (pytest fixtures, registered for the
whole suite by tests/conftest.py) and the helpers that go with them, so that no test module
imports another."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission

from tarifa.api.models import ApiToken
from tarifa.billing import ledger
from tarifa.calls import cache
from tarifa.calls.authorize import CallRequest, authorize_call
from tarifa.calls.models import Reservation
from tarifa.core.cdr import CanonicalCdr
from tarifa.customers.models import Account, Customer, IpDevice, SipDevice
from tarifa.dids.models import Did, DidPlan
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

# --- authorisation: a customer with two accounts, two vendors and a least-cost group ----------------

NOW = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)
UK = "442079460958"


@pytest.fixture
def net(operator):  # type: ignore[no-untyped-def]
    tariff = Tariff.objects.create(name="Sell")
    for prefix, price, extra in (
        ("44", "0.0200", {}),
        ("4470", "0.3048", {}),
        ("1", "0.0100", {}),
        ("33", "0.0300", {}),
        ("882", "1.0000", {"forbidden": True}),
        ("49", "0.0100", {}),
        ("1800", "0", {}),
        ("1411", "0.99", {}),
    ):
        Rate.objects.create(
            tariff=tariff,
            prefix=prefix,
            destination=f"D{prefix}",
            price_1=Decimal(price),
            price_n=Decimal(price),
            **extra,
        )
    customer = Customer.objects.create(
        parent=operator,
        name="C",
        company="C Ltd",
        web_username="cust",
        tariff=tariff,
        billing_decimals=4,
        email="c@c.example",
        phone="+12015550123",
        country="US",
        max_call_sessions=100,
        calls_per_second=100,
    )
    ledger.post_one(ledger.Posting(customer_id=customer.pk, amount=Decimal("10"), kind="payment", reference="p1"))
    alice = Account.objects.create(
        customer=customer, name="alice", dialing_mode="nanp", allow_international=True, e911_caller_id="12015550199"
    )
    SipDevice.objects.create(account=alice, login="alice", secret="x")
    pbx = Account.objects.create(
        customer=customer, name="pbx", kind="ip", dialing_mode="e164", allow_international=True
    )
    IpDevice.objects.create(account=pbx, address="198.51.100.9")
    vendors = []
    for name, prices, extra in (
        ("Cheap", ("0.0100", "0.2000", "0.0050", "0.0200", "0.0050"), {"tech_prefix": "99#"}),
        ("Dear", ("0.0150", "0.2500", "0.0060", "0.0400", "0.0060"), {}),
    ):
        vendor = Vendor.objects.create(name=name)
        conn = Connection.objects.create(vendor=vendor, name=name.lower(), host=f"gw.{name.lower()}.example", **extra)
        dset = DestinationSet.objects.create(name=f"{name} set", vendor=vendor)
        for prefix, price in zip(("44", "4470", "1", "33", "49"), prices, strict=True):
            DestinationRate.objects.create(
                destination_set=dset, prefix=prefix, price_1=Decimal(price), price_n=Decimal(price)
            )
        vendors.append((conn, dset))
    group = RoutingGroup.objects.create(name="Value", policy="least_cost")
    for n, (conn, dset) in enumerate(reversed(vendors)):
        RoutingEntry.objects.create(group=group, connection=conn, destination_set=dset, priority=n)
    for dclass in ("domestic", "international", "tollfree", "directory", "emergency"):
        RouteOffer.objects.create(destination_class=dclass, choice="value", routing_group=group)
    cache.reset()
    return {
        "tariff": tariff,
        "customer": customer,
        "alice": alice,
        "pbx": pbx,
        "group": group,
        "cheap": vendors[0][0],
        "dear": vendors[1][0],
    }


def ask(callee: str = "011" + UK, **kw) -> object:  # type: ignore[no-untyped-def]
    kw.setdefault("sip_user", "alice")
    kw.setdefault("call_id", f"call-{callee}-{len(Reservation.objects.all())}")
    kw.setdefault("switch", "sw")
    return authorize_call(CallRequest(callee=callee, **kw), now=kw.pop("now", NOW) if "now" in kw else NOW)


@pytest.fixture
def token(net):  # type: ignore[no-untyped-def]
    _t, raw = ApiToken.issue("kam", switch=Pop.objects.create(name="pop-a"))
    return raw


# --- ingestion: a customer with accounts of every identity kind, a carrier and a DID ----------------

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


@pytest.fixture
def world(operator):  # type: ignore[no-untyped-def]
    tariff = Tariff.objects.create(name="Retail")
    for prefix, price in (("44", "0.0200"), ("447", "0.1000"), ("1", "0.0100")):
        Rate.objects.create(
            tariff=tariff, prefix=prefix, destination=f"Dest {prefix}", price_1=Decimal(price), price_n=Decimal(price)
        )
    customer = Customer.objects.create(
        parent=operator,
        name="Cust",
        company="Cust Ltd",
        web_username="cust1",
        tariff=tariff,
        billing_decimals=4,
        email="c@c.example",
        phone="+12015550123",
        country="US",
    )
    alice = Account.objects.create(customer=customer, name="alice", dialing_mode="e164")
    SipDevice.objects.create(account=alice, login="alice", secret="x")
    trunk = Account.objects.create(
        customer=customer, name="trunk", kind="trunk", identifier="tr-1", dialing_mode="e164"
    )
    ipacct = Account.objects.create(customer=customer, name="pbx", kind="ip", dialing_mode="e164", balance_mode="own")
    IpDevice.objects.create(account=ipacct, address="198.51.100.7")
    ext = Account.objects.create(customer=customer, name="ext", kind="extension", identifier="201", dialing_mode="nanp")
    vendor = Vendor.objects.create(name="Carrier")
    conn = Connection.objects.create(vendor=vendor, name="carrier-1", host="192.0.2.1")
    dset = DestinationSet.objects.create(name="Carrier A-Z", vendor=vendor)
    for prefix, price in (("44", "0.0150"), ("447", "0.0800"), ("1", "0.0050")):
        DestinationRate.objects.create(
            destination_set=dset, prefix=prefix, price_1=Decimal(price), price_n=Decimal(price)
        )
    group = RoutingGroup.objects.create(name="LCR")
    RoutingEntry.objects.create(group=group, connection=conn, destination_set=dset)
    plan = DidPlan.objects.create(name="Local", inbound_rate=Decimal("0.0060"), included_minutes=2)
    did = Did.objects.create(number="12015550100", status="assigned", account=alice, plan=plan)
    return {
        "tariff": tariff,
        "customer": customer,
        "alice": alice,
        "trunk": trunk,
        "ip": ipacct,
        "ext": ext,
        "conn": conn,
        "did": did,
        "plan": plan,
    }


@pytest.fixture
def did_buyer(operator):  # type: ignore[no-untyped-def]
    """A US customer (Ann of Acme, web user ``acme``) with a DID account ``acme-did``, and the DID plan
    ``US local`` (1.50 a month): the start of the DID tests."""
    customer = Customer.objects.create(
        kind="customer",
        parent=operator,
        name="Ann",
        company="Acme",
        web_username="acme",
        tariff=operator.tariff,
        email="a@acme.example",
        country="US",
    )
    account = Account.objects.create(customer=customer, name="acme-did", kind="did")
    plan = DidPlan.objects.create(name="US local", monthly_fee=Decimal("1.50"))
    return {"customer": customer, "account": account, "plan": plan}


def cdr(call_id: str, callee: str = "442079460958", duration: int = 60, **kw) -> CanonicalCdr:  # type: ignore[no-untyped-def]
    kw.setdefault("sip_user", "alice")
    kw.setdefault("connection", "carrier-1")
    return CanonicalCdr(
        call_id=call_id, callee=callee, start_time=T0, connect_time=T0, duration=duration, switch="sw1", **kw
    )


# --- the back office: stored secrets that no page or export may show ------------------------------

ACCOUNT_SIP_PASSWORD = "Acc-Sip-Pw-7f3k"
DEVICE_SECRET = "Dev-Secret-9q2z"


@pytest.fixture
def secrets_stored(operator):  # type: ignore[no-untyped-def]
    """A customer whose account and SIP device hold known secrets, and an API token."""
    from tarifa.api.models import ApiToken
    from tarifa.customers.models import Account, Customer, SipDevice

    customer = Customer.objects.create(
        parent=operator,
        name="Eve",
        company="Secrets Co",
        web_username="secretsco",
        tariff=operator.tariff,
        email="s@x.example",
        phone="+12015550123",
        country="US",
    )
    account = Account.objects.create(customer=customer, name="secret-main", sip_password=ACCOUNT_SIP_PASSWORD)
    SipDevice.objects.create(account=account, login="secretdev", secret=DEVICE_SECRET)
    token, raw = ApiToken.issue("switch-token", customer=customer)
    return {"token_hash": token.key_hash, "raw_token": raw}


def staff_user(username: str, *codenames: str):  # type: ignore[no-untyped-def]
    user = get_user_model().objects.create_user(username, f"{username}@x.example", "Staff-pass-1234", is_staff=True)
    for codename in codenames:
        user.user_permissions.add(Permission.objects.get(codename=codename))
    return user


def page_values(form: Any) -> dict[str, Any]:
    """What the browser would send back for ``form`` as shown (before the user changes it)."""
    from django import forms

    out: dict[str, Any] = {}
    for bound in form:
        value = bound.value()
        name = bound.html_name
        if isinstance(bound.field.widget, forms.CheckboxInput):
            if value:
                out[name] = "on"
            continue
        if value is None:
            out[name] = ""
        elif isinstance(value, (list, tuple)):
            out[name] = [str(v) for v in value]
        else:
            out[name] = str(value)
    return out


def text(response: Any) -> str:
    """The page as a person reads it (HTML entities decoded)."""
    import html

    return html.unescape(response.content.decode())
