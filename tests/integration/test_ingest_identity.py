"""CDR matching in the one order of core.identity, on the row path and the vectorised path, and the
POP restriction when a CDR is charged (issue 11 item 1, issue 12 item 7)."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from tarifa.api.models import ApiToken
from tarifa.billing.models import Transaction
from tarifa.cdrs.ingest import ingest
from tarifa.cdrs.models import Cdr
from tarifa.core.cdr import CanonicalCdr
from tarifa.customers.models import Account, Customer, IpDevice
from tarifa.routing.models import Pop
from tests.factories import T0, cdr

pytestmark = pytest.mark.django_db


@pytest.fixture
def tenants(world):  # type: ignore[no-untyped-def]
    """A second tenant of the same PBX: its own extension 201 and trunk tr-1, and its PBX's address."""
    other = Customer.objects.create(
        parent=world["customer"].parent,
        name="Other",
        company="Other Ltd",
        web_username="other1",
        tariff=world["tariff"],
        billing_decimals=4,
        email="o@o.example",
        phone="+12015550123",
        country="US",
    )
    ext = Account.objects.create(
        customer=other, name="other-ext", kind="extension", identifier="201", dialing_mode="nanp"
    )
    trunk = Account.objects.create(
        customer=other, name="other-trunk", kind="trunk", identifier="tr-1", dialing_mode="e164"
    )
    pbx = Account.objects.create(customer=other, name="other-pbx", kind="ip", dialing_mode="e164")
    IpDevice.objects.create(account=pbx, address="198.51.100.9")
    return {**world, "other": other, "other_ext": ext, "other_trunk": trunk}


def outcome(call_id: str) -> tuple[object, str, Decimal]:
    row = Cdr.objects.get(call_id=call_id)
    return row.account, row.unrated_reason, row.price


@pytest.mark.parametrize("count", [1, 60], ids=["row-by-row", "vectorised"])
def test_an_ambiguous_identity_is_never_charged(tenants, count: int) -> None:
    nanp = "12015550123"
    calls = [
        *(cdr(f"ext-{k}", nanp, sip_user="", extension="201") for k in range(count)),
        *(cdr(f"trunk-{k}", sip_user="", trunk="tr-1") for k in range(count)),
    ]
    report = ingest(calls, source="t", fmt="test")
    assert report.unrated == 2 * count
    # issue 14: an extension without its PBX is an unknown PBX's before it is anyone's
    assert {outcome(f"ext-{k}") for k in range(count)} == {(None, "unknown_pbx", Decimal(0))}
    assert {outcome(f"trunk-{k}") for k in range(count)} == {(None, "ambiguous_account", Decimal(0))}
    assert not Transaction.objects.exists()


@pytest.mark.parametrize("count", [1, 60], ids=["row-by-row", "vectorised"])
def test_the_other_identities_settle_an_ambiguous_one(tenants, count: int) -> None:
    nanp = "12015550123"
    tenant = tenants["customer"].account_code
    calls = [
        *(cdr(f"ip-{k}", nanp, sip_user="", extension="201", source_ip="198.51.100.9") for k in range(count)),
        *(cdr(f"tenant-{k}", nanp, sip_user="", extension="201", account_code=tenant) for k in range(count)),
        *(cdr(f"trunk-{k}", sip_user="", trunk="tr-1", source_ip="198.51.100.9") for k in range(count)),
        *(cdr(f"sip-{k}", trunk="tr-1") for k in range(count)),  # a SIP login decides alone
    ]
    ingest(calls, source="t", fmt="test")
    for k in range(count):
        assert outcome(f"ip-{k}") == (tenants["other_ext"], "", Decimal("0.0100"))
        assert outcome(f"tenant-{k}") == (tenants["ext"], "", Decimal("0.0100"))
        assert outcome(f"trunk-{k}") == (tenants["other_trunk"], "", Decimal("0.0200"))
        assert outcome(f"sip-{k}") == (tenants["alice"], "", Decimal("0.0200"))


def test_the_demo_extension_1000(db) -> None:  # type: ignore[no-untyped-def]
    """The issue's reproduction: five demo tenants have extension 1000; 198.51.100.9 is Initech's PBX,
    which has none. Neither CDR may be charged to Globex (the first of them)."""
    from tarifa.demo import load_demo

    load_demo()
    holders = set(
        Account.objects.filter(kind="extension", identifier="1000").values_list("customer__company", flat=True)
    )
    assert len(holders) > 1 and "Globex Ltd" in holders
    assert IpDevice.objects.get(address="198.51.100.9").account.customer.company == "Initech GmbH"
    calls = [
        CanonicalCdr(call_id="x1", callee="12125550123", start_time=T0, duration=60, extension="1000"),
        CanonicalCdr(
            call_id="x2", callee="12125550123", start_time=T0, duration=60, extension="1000", source_ip="198.51.100.9"
        ),
    ]
    ingest(calls, source="t", fmt="test", switch="pop-nyc")
    # issue 14: an extension counts only with its PBX: alone it is an unknown PBX's; from Initech's
    # PBX (which has no 1000) it is Initech's traffic, billed to the PBX's IP device account
    assert outcome("x1") == (None, "unknown_pbx", Decimal(0))
    assert Cdr.objects.get(call_id="x2").customer.company == "Initech GmbH"
    globex = Customer.objects.get(company="Globex Ltd").account_code
    ingest(
        [
            CanonicalCdr(
                call_id="x3", callee="12125550123", start_time=T0, duration=60, extension="1000", account_code=globex
            )
        ],
        source="t",
        fmt="test",
        switch="pop-nyc",
    )
    assert Cdr.objects.get(call_id="x3").customer.company == "Globex Ltd"
    # the same rule when the call is authorised
    from tarifa.calls.authorize import CallRequest, authorize_call

    d = authorize_call(CallRequest(call_id="a0", callee="12125550123", extension="1000", pop="pop-nyc"), reserve=False)
    assert (d.allowed, d.reason, d.account) == (False, "unknown_pbx", ""), d.trace
    d = authorize_call(
        CallRequest(call_id="a1", callee="12125550123", extension="1000", pop="pop-nyc", source_ip="198.51.100.9"),
        reserve=False,
    )
    initech = Customer.objects.get(company="Initech GmbH").account_code
    assert d.customer == initech, d.trace
    d = authorize_call(
        CallRequest(call_id="a3", callee="12125550123", extension="1000", account_code=globex, pop="pop-nyc"),
        reserve=False,
    )
    assert d.customer == globex and d.reason != "ambiguous_account"


# --- the POP restriction --------------------------------------------------------------------------


@pytest.fixture
def restricted(world):  # type: ignore[no-untyped-def]
    """alice may only call through POP pop-b."""
    world["alice"].pop_restriction.set([Pop.objects.create(name="pop-b")])
    return world


@pytest.mark.parametrize("count", [1, 60], ids=["row-by-row", "vectorised"])
def test_a_call_through_a_pop_the_account_may_not_use_is_not_charged(restricted, count: int) -> None:
    calls = [cdr(f"p{k}") for k in range(count)]
    report = ingest(calls, source="t", fmt="test", switch="pop-a")
    assert report.unrated == count and report.charged == 0
    for k in range(count):
        row = Cdr.objects.get(call_id=f"p{k}")
        assert (row.account, row.rating_status, row.unrated_reason) == (
            restricted["alice"],
            "unrated",
            "pop_not_allowed",
        )
        assert (row.price, row.cost, row.billed_seconds, row.transaction_id) == (0, 0, 0, None)
    assert not Transaction.objects.exists()
    # the same calls through the POP it may use are charged (another switch: other calls)
    report = ingest(
        [CanonicalCdr(**{**_fields(c), "switch": ""}) for c in calls], source="t", fmt="test", switch="pop-b"
    )
    assert report.unrated == 0 and report.charged == Decimal("0.0200") * count


def _fields(c: CanonicalCdr) -> dict:
    return {name: getattr(c, name) for name in c.__slots__}  # type: ignore[attr-defined]


def test_a_cdr_pushed_with_another_pops_token_is_left_unrated(client, restricted) -> None:
    _t, raw = ApiToken.issue("switch-a", switch=Pop.objects.create(name="pop-a"))
    _t, allowed = ApiToken.issue("switch-b", switch=Pop.objects.get(name="pop-b"))
    record = {
        "call_id": "api-1",
        "callee": "442079460958",
        "start_time": "2026-03-02T10:00:00+00:00",
        "duration": 61,
        "sip_user": "alice",
        "connection": "carrier-1",
    }
    body = client.post(
        "/api/v1/cdrs", data=json.dumps([record]), content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {raw}"
    ).json()
    assert (body["stored"], body["unrated"], body["charged"]) == (1, 1, "0")
    assert outcome("api-1") == (restricted["alice"], "pop_not_allowed", Decimal(0))
    body = client.post(
        "/api/v1/cdrs",
        data=json.dumps([{**record, "call_id": "api-2"}]),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {allowed}",
    ).json()
    assert (body["stored"], body["unrated"], body["charged"]) == (1, 0, "0.0400")
