"""Services on accounts (issue 14, seed 002): PBX extensions per PBX, trunks with maximum
channels, IP addresses and virtual numbers, on the CDR row path, the vectorised path and the
authorisation (docs/services.md)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from tarifa.billing import ledger
from tarifa.calls import cache
from tarifa.calls.models import Reservation
from tarifa.cdrs.ingest import ingest
from tarifa.cdrs.models import Cdr
from tarifa.customers.models import Account, Customer, IpDevice
from tarifa.dids.models import Did, VirtualNumber
from tests.factories import ask, cdr

pytestmark = pytest.mark.django_db

PATHS = pytest.mark.parametrize("count", [1, 60], ids=["row-by-row", "vectorised"])


def tenant(like: Customer, user: str) -> Customer:
    return Customer.objects.create(
        parent=like.parent,
        name=user,
        company=f"{user} Ltd",
        web_username=user,
        tariff=like.tariff,
        billing_decimals=4,
        email=f"{user}@x.example",
        phone="+12015550123",
        country="US",
        max_call_sessions=100,
        calls_per_second=100,
    )


def pbx_of(customer: Customer, address: str) -> IpDevice:
    """The customer's PBX: an IP account with the PBX's address."""
    account = Account.objects.create(
        customer=customer, name=f"pbx-{address}", kind="ip", dialing_mode="e164", allow_international=True
    )
    return IpDevice.objects.create(account=account, address=address)


def extension(customer: Customer, number: str, pbx: IpDevice | None = None) -> Account:
    account = Account(
        customer=customer,
        name=f"ext-{number}-{customer.web_username}",
        kind="extension",
        identifier=number,
        pbx=pbx,
        dialing_mode="e164",
        allow_international=True,
    )
    account.full_clean()
    account.save()
    return account


def refusals(obj: object) -> dict[str, list[str]]:
    try:
        obj.full_clean()  # type: ignore[attr-defined]
    except ValidationError as exc:
        return {k: [str(m) for m in v] for k, v in exc.message_dict.items()}
    return {}


# --- 1. extensions: the same number on two tenants' PBXs ------------------------------------------


@pytest.fixture
def two_pbxs(world):  # type: ignore[no-untyped-def]
    """Tenant A (world's customer) and tenant B, each with a PBX and an extension 1000 on it; B's
    1000 is registered with its PBX, A's has none (any PBX of A)."""
    a, b = world["customer"], tenant(world["customer"], "tenantb")
    pbx_b = pbx_of(b, "203.0.113.20")
    return {**world, "a": a, "b": b, "ext_a": extension(a, "1000"), "ext_b": extension(b, "1000", pbx_b)}


@PATHS
def test_extension_1000_of_two_tenants_goes_to_each_tenants_account(two_pbxs, count: int) -> None:
    calls = [
        *(cdr(f"a-{k}", sip_user="", extension="1000", source_ip="198.51.100.7") for k in range(count)),  # A's PBX
        *(cdr(f"b-{k}", sip_user="", extension="1000", source_ip="203.0.113.20") for k in range(count)),  # B's PBX
        *(cdr(f"x-{k}", sip_user="", extension="1000", source_ip="192.0.2.99") for k in range(count)),  # nobody's
        *(cdr(f"n-{k}", sip_user="", extension="1000") for k in range(count)),  # no PBX at all
    ]
    ingest(calls, source="t", fmt="test")
    for k in range(count):
        assert Cdr.objects.get(call_id=f"a-{k}").account == two_pbxs["ext_a"]
        assert Cdr.objects.get(call_id=f"b-{k}").account == two_pbxs["ext_b"]
        for unknown in (f"x-{k}", f"n-{k}"):
            row = Cdr.objects.get(call_id=unknown)
            assert (row.account, row.rating_status, row.unrated_reason, row.price) == (
                None,
                "unrated",
                "unknown_pbx",
                Decimal(0),
            )


@PATHS
def test_a_tenants_pbx_never_reaches_another_tenants_only_extension(two_pbxs, count: int) -> None:
    """Only A has extension 2000; B's PBX reporting a 2000 is B's traffic (B's PBX IP account)."""
    extension(two_pbxs["a"], "2000")
    pbx_b = IpDevice.objects.get(address="203.0.113.20")
    ingest(
        [cdr(f"c-{k}", sip_user="", extension="2000", source_ip="203.0.113.20") for k in range(count)],
        source="t",
        fmt="test",
    )
    assert {Cdr.objects.get(call_id=f"c-{k}").account for k in range(count)} == {pbx_b.account}


def test_extension_1000_of_two_tenants_is_authorised_for_each(net) -> None:
    a, b = net["customer"], tenant(net["customer"], "tenantb")
    ledger.post_one(ledger.Posting(customer_id=b.pk, amount=Decimal("10"), kind="payment", reference="pb"))
    ext_a = extension(a, "1000")  # A's PBX: net's IP device 198.51.100.9
    ext_b = extension(b, "1000", pbx_of(b, "203.0.113.20"))
    cache.reset()
    d = ask(sip_user="", extension="1000", source_ip="198.51.100.9")
    assert d.allowed and d.account == ext_a.account_code, d.trace
    d = ask(sip_user="", extension="1000", source_ip="203.0.113.20")
    assert d.allowed and d.account == ext_b.account_code, d.trace
    d = ask(sip_user="", extension="1000", source_ip="192.0.2.99")
    assert (d.allowed, d.reason, d.sip_code, d.account) == (False, "unknown_pbx", 403, "")
    assert (
        "PBX extension '1000' is not an extension of the PBX the call comes from (source IP 192.0.2.99)"
        in "\n".join(d.trace)
    )


def test_a_duplicate_extension_in_one_pbx_is_refused(two_pbxs) -> None:
    a, b = two_pbxs["a"], two_pbxs["b"]
    pbx_b = IpDevice.objects.get(address="203.0.113.20")
    twin = Account(customer=b, name="twin", kind="extension", identifier="1000", pbx=pbx_b, dialing_mode="e164")
    assert refusals(twin) == {"identifier": ["Extension '1000' is refused: already in use on PBX 203.0.113.20"]}
    # A's PBX-less 1000 covers every PBX of A: a second one (with or without a PBX of A) is refused
    pbx_a2 = pbx_of(a, "198.51.100.70")
    for pbx in (None, pbx_a2):
        again = Account(customer=a, name="again", kind="extension", identifier="1000", pbx=pbx, dialing_mode="e164")
        assert refusals(again)["identifier"][0].startswith("Extension '1000' is refused: already in use on ")
    # the same number on another PBX of B is fine; an extension without a number is not
    assert (
        refusals(
            Account(
                customer=b,
                name="ok",
                kind="extension",
                identifier="1000",
                dialing_mode="e164",
                pbx=pbx_of(b, "203.0.113.21"),
            )
        )
        == {}
    )
    blank = Account(customer=b, name="blank", kind="extension", identifier="", dialing_mode="e164")
    assert refusals(blank) == {
        "identifier": ["Extension is required for a PBX extension account (the switch reports it)"]
    }


def test_the_same_extension_on_two_pbxs_of_one_customer(two_pbxs) -> None:
    b = two_pbxs["b"]
    other_site = pbx_of(b, "203.0.113.21")
    second = extension(b, "1000", other_site)
    ingest(
        [
            cdr("s1", sip_user="", extension="1000", source_ip="203.0.113.21"),
            cdr("s2", sip_user="", extension="1000", source_ip="203.0.113.20"),
        ],
        source="t",
        fmt="test",
    )
    assert Cdr.objects.get(call_id="s1").account == second
    assert Cdr.objects.get(call_id="s2").account == two_pbxs["ext_b"]


def test_a_pbx_of_another_tenant_is_refused(two_pbxs) -> None:
    stranger = IpDevice.objects.get(address="203.0.113.20")  # B's PBX
    mine = Account(
        customer=two_pbxs["a"], name="x", kind="extension", identifier="3000", pbx=stranger, dialing_mode="e164"
    )
    assert refusals(mine) == {
        "pbx": [
            f"PBX (IP device) '203.0.113.20' is refused: belongs to {two_pbxs['b']}: a PBX must be the customer's own "
            "or its reseller's/operator's"
        ]
    }
    trunk = Account(
        customer=two_pbxs["a"], name="t", kind="trunk", identifier="tr-x", pbx=stranger, dialing_mode="e164"
    )
    assert refusals(trunk)["pbx"] == [
        "PBX (IP device) '203.0.113.20' is refused: only a PBX extension belongs to a PBX"
    ]


def test_a_hosting_resellers_pbx_may_carry_its_customers_extensions(two_pbxs) -> None:
    operator = two_pbxs["a"].parent
    hosted = pbx_of(operator, "192.0.2.50")
    ext = extension(two_pbxs["a"], "4000", hosted)
    ingest([cdr("h1", sip_user="", extension="4000", source_ip="192.0.2.50")], source="t", fmt="test")
    assert Cdr.objects.get(call_id="h1").account == ext


# --- 2. trunks: maximum channels ------------------------------------------------------------------


def test_a_trunk_name_is_unique(world) -> None:
    other = tenant(world["customer"], "tenantc")
    copy = Account(customer=other, name="copy", kind="trunk", identifier="tr-1", dialing_mode="e164")
    assert refusals(copy) == {"identifier": ["Trunk name 'tr-1' is refused: already in use by another trunk"]}


def test_a_trunks_maximum_channels_are_enforced(net) -> None:
    """One account is one trunk (its identifier is the trunk name): its maximum channels hold
    for the calls through the trunk; the next one is refused 486 concurrent_limit."""
    trunk = Account.objects.create(
        customer=net["customer"],
        name="trunk",
        kind="trunk",
        identifier="tr-9",
        dialing_mode="nanp",
        allow_international=True,
        max_channels=2,
    )
    cache.reset()
    first, second = ask(sip_user="", trunk="tr-9"), ask(sip_user="", trunk="tr-9")
    assert first.allowed and second.allowed and first.account == trunk.account_code
    third = ask(sip_user="", trunk="tr-9")
    assert (third.allowed, third.reason, third.sip_code) == (False, "concurrent_limit", 486)
    assert ask().allowed  # another account of the customer is not held by the trunk's limit
    Reservation.objects.filter(pk=first.reservation_id).delete()  # one call ends
    assert ask(sip_user="", trunk="tr-9").allowed


# --- 3. IP addresses ------------------------------------------------------------------------------


@PATHS
def test_all_traffic_from_an_address_is_billed_to_its_account(world, count: int) -> None:
    ingest([cdr(f"ip-{k}", sip_user="", source_ip="198.51.100.7") for k in range(count)], source="t", fmt="test")
    assert {Cdr.objects.get(call_id=f"ip-{k}").account for k in range(count)} == {world["ip"]}
    ingest([cdr(f"no-{k}", sip_user="", source_ip="198.51.100.8") for k in range(count)], source="t", fmt="test")
    assert {Cdr.objects.get(call_id=f"no-{k}").unrated_reason for k in range(count)} == {"no_account"}


def test_an_address_is_authorised_for_its_account(net) -> None:
    d = ask(sip_user="", source_ip="198.51.100.9")
    assert d.allowed and d.account == net["pbx"].account_code
    d = ask(sip_user="", source_ip="198.51.100.10")
    assert (d.allowed, d.reason) == (False, "unknown_account")


def test_an_address_of_another_tenant_is_refused(world) -> None:
    other = tenant(world["customer"], "tenantd")
    account = Account.objects.create(customer=other, name="gw", kind="ip", dialing_mode="e164")
    assert refusals(IpDevice(account=account, address="198.51.100.7")) == {
        "address": ["IP address '198.51.100.7' is refused: already in use"]
    }


# --- 4. virtual numbers ---------------------------------------------------------------------------


def test_virtual_number_rules(world) -> None:
    did, ext = world["did"], world["ext"]  # the DID is assigned to alice, of the same customer as ext
    assert refusals(VirtualNumber(number="305", primary_did=did, account=ext)) == {}
    other = tenant(world["customer"], "tenante")
    stranger = Account.objects.create(customer=other, name="s", kind="extension", identifier="9", dialing_mode="e164")
    assert refusals(VirtualNumber(number="306", primary_did=did, account=stranger)) == {
        "account": [
            f"Account '{stranger}' is refused: must belong to the customer of the primary DID {did.number} "
            f"({world['customer']})"
        ]
    }
    free = Did.objects.create(number="12015550177")
    assert refusals(VirtualNumber(number="307", primary_did=free, account=ext)) == {
        "primary_did": ["Primary DID '12015550177' is refused: must be assigned to an account (it is available)"]
    }
    assert refusals(VirtualNumber(number="201", primary_did=did, account=ext)) == {
        "number": ["Virtual number '201' is refused: already an extension of this customer"]
    }
    VirtualNumber.objects.create(number="305", primary_did=did, account=ext)
    assert "already in use" in refusals(VirtualNumber(number="305", primary_did=did, account=ext))["number"][0]
    # and an extension account may not take a virtual number's number
    taken = Account(customer=world["customer"], name="t", kind="extension", identifier="305", dialing_mode="e164")
    assert refusals(taken) == {"identifier": ["Extension '305' is refused: already a virtual number of this customer"]}


@PATHS
def test_outbound_calls_from_a_virtual_number_bill_its_account(world, count: int) -> None:
    VirtualNumber.objects.create(number="305", primary_did=world["did"], account=world["ext"])
    other = tenant(world["customer"], "tenantf")
    pbx_of(other, "203.0.113.30")
    ingest(
        [
            *(
                cdr(f"v-{k}", callee="12015550123", sip_user="", extension="305", source_ip="198.51.100.7")
                for k in range(count)
            ),
            *(
                cdr(f"w-{k}", callee="12015550123", sip_user="", extension="305", source_ip="203.0.113.30")
                for k in range(count)
            ),
        ],
        source="t",
        fmt="test",
    )
    assert {Cdr.objects.get(call_id=f"v-{k}").account for k in range(count)} == {world["ext"]}
    # another tenant's PBX dialling from its own 305 is never the virtual number's
    assert {Cdr.objects.get(call_id=f"w-{k}").customer for k in range(count)} == {other}


def test_a_virtual_number_is_authorised_for_its_account(net) -> None:
    did = Did.objects.create(number="12015550188", status="assigned", account=net["alice"])
    VirtualNumber.objects.create(number="501", primary_did=did, account=net["alice"])
    cache.reset()
    d = ask(sip_user="", extension="501", source_ip="198.51.100.9")
    assert d.allowed and d.account == net["alice"].account_code, d.trace
    assert ask(sip_user="", extension="501").reason == "unknown_pbx"
