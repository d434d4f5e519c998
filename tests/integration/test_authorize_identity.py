"""Call authorisation identifies the caller in the one matching order of core.identity (issue 11
item 1): an identity naming several accounts is settled by the request's other identities, or
refused as ``ambiguous_account`` — the same rule as CDR rating."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from tarifa.api.models import ApiToken
from tarifa.billing import ledger
from tarifa.calls import cache
from tarifa.customers.models import Account, Customer, IpDevice
from tarifa.routing.models import Pop
from tests.factories import ask

pytestmark = pytest.mark.django_db


@pytest.fixture
def pbx(net):  # type: ignore[no-untyped-def]
    """Two tenants of one hosted PBX with extension 1000 and a trunk name each; the second
    tenant's PBX calls from 203.0.113.9 (the first's from 198.51.100.9, net's ``pbx``)."""
    other = Customer.objects.create(
        parent=net["customer"].parent,
        name="O",
        company="O Ltd",
        web_username="other",
        tariff=net["tariff"],
        billing_decimals=4,
        email="o@o.example",
        phone="+12015550123",
        country="US",
    )
    ledger.post_one(ledger.Posting(customer_id=other.pk, amount=Decimal("10"), kind="payment", reference="p2"))
    mine = Account.objects.create(
        customer=net["customer"],
        name="ext-1000",
        kind="extension",
        identifier="1000",
        dialing_mode="nanp",
        allow_international=True,
    )
    theirs = Account.objects.create(
        customer=other,
        name="their-1000",
        kind="extension",
        identifier="1000",
        dialing_mode="nanp",
        allow_international=True,
    )
    Account.objects.create(customer=net["customer"], name="t1", kind="trunk", identifier="shared", dialing_mode="nanp")
    Account.objects.create(customer=other, name="t2", kind="trunk", identifier="shared", dialing_mode="nanp")
    their_pbx = Account.objects.create(customer=other, name="their-pbx", kind="ip", dialing_mode="nanp")
    IpDevice.objects.create(account=their_pbx, address="203.0.113.9")
    cache.reset()
    return {**net, "mine": mine, "theirs": theirs, "other": other}


def test_an_extension_of_two_tenants_alone_is_refused(pbx) -> None:
    """Issue 14: an extension without its PBX (no source IP, no identity of its customer) is an
    unknown PBX's extension, whoever has a 1000."""
    d = ask(sip_user="", extension="1000")
    assert (d.allowed, d.reason, d.sip_code, d.account) == (False, "unknown_pbx", 403, "")
    assert "PBX extension '1000' is not an extension of the PBX the call comes from" in "\n".join(d.trace)
    assert ask(sip_user="", trunk="shared").reason == "ambiguous_account"


def test_the_source_ip_or_the_tenant_settles_it(pbx) -> None:
    d = ask(sip_user="", extension="1000", source_ip="198.51.100.9")
    assert d.allowed and d.account == pbx["mine"].account_code, d.trace
    d = ask(sip_user="", extension="1000", source_ip="203.0.113.9")
    assert d.allowed and d.account == pbx["theirs"].account_code, d.trace
    d = ask(sip_user="", extension="1000", account_code=pbx["other"].account_code)
    assert d.allowed and d.account == pbx["theirs"].account_code, d.trace


def test_a_disabled_account_is_still_refused_as_disabled(pbx) -> None:
    Account.objects.filter(pk=pbx["alice"].pk).update(status="inactive")
    cache.reset()
    assert ask().reason == "account_disabled"


def test_an_unknown_identity_falls_through_to_the_next(pbx) -> None:
    """As for CDRs: a SIP login nobody has says nothing; the source IP then decides."""
    d = ask(sip_user="mallory", source_ip="198.51.100.9")
    assert d.allowed and d.account == pbx["pbx"].account_code


def test_the_switch_endpoint_takes_the_extension(client, pbx) -> None:
    _t, raw = ApiToken.issue("sw", switch=Pop.objects.create(name="pop-a"))

    def post(**fields: str) -> dict:
        body = {"call_id": f"c-{len(fields)}-{sorted(fields.items())}", "callee": "0114420794609", **fields}
        return client.post(
            "/api/v1/calls/authorize",
            data=json.dumps(body),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {raw}",
        ).json()

    assert post(extension="1000")["reason"] == "unknown_pbx"
    assert post(extension="1000", source_ip="203.0.113.9")["account"] == pbx["theirs"].account_code
