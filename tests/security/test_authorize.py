"""Attacks on the call authorisation: numbers a fraudster or a misconfiguration would use to make
a call reach somewhere it must not, or keep an emergency call from reaching where it must."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from tarifa.calls import cache
from tarifa.core.authorization import Refusal
from tarifa.customers.models import Account, SipDevice, TranslationRule
from tarifa.rating.models import Rate
from tarifa.routing.models import Connection, DestinationRate, Pop
from tests.factories import ask

pytestmark = pytest.mark.django_db


# --- emergency numbers reach the vendor as emergency numbers ------------------------------------


def test_a_connections_generic_rewrite_never_applies_to_an_emergency_number(net) -> None:
    """The demo's ``^(\\d+)$ -> 00\\1`` on a vendor connection turned 911 into 00911."""
    TranslationRule.objects.create(connection=net["dear"], kind="destination", match=r"^(\d+)$", replace=r"00\1")
    TranslationRule.objects.create(connection=net["cheap"], kind="destination", match=r"^9", replace="8")
    cache.reset()
    d = ask(callee="911")
    assert d.allowed and d.destination_class == "emergency"
    assert {r["connection"]: r["number"] for r in d.routes} == {"cheap": "99#911", "dear": "911"}


def test_a_connection_declares_how_it_wants_emergency_calls(net) -> None:
    Connection.objects.filter(pk=net["dear"].pk).update(emergency_format="*1{number}")
    TranslationRule.objects.create(connection=net["dear"], kind="destination", match=r"^(\d+)$", replace=r"00\1")
    cache.reset()
    d = ask(callee="911")
    assert {r["connection"]: r["number"] for r in d.routes} == {"cheap": "99#911", "dear": "*1911"}
    assert ask().routes[1]["number"] == "00442079460958"  # other calls keep the connection's rules


@pytest.mark.parametrize("value", ["00{number}x", "{number}{number}", "112", "{numero}", "+1 {number}"])
def test_an_emergency_format_must_name_the_number_once_and_hold_only_dial_characters(net, value) -> None:
    conn = net["dear"]
    conn.emergency_format = value
    with pytest.raises(ValidationError) as caught:
        conn.full_clean()
    message = " ".join(caught.value.message_dict["emergency_format"])
    assert "Emergency format" in message and value in message


def test_a_customers_generic_rewrite_does_not_hide_an_emergency_number(net) -> None:
    """911 dialled directly is an emergency call even when the customer's rules would rewrite it
    (a PBX's outside-line rule ``^9(\\d+)$ -> \\1`` would make it 11)."""
    TranslationRule.objects.create(customer=net["customer"], kind="destination", match=r"^9(\d+)$", replace=r"\1")
    cache.reset()
    d = ask(callee="911")
    assert d.allowed and d.destination_class == "emergency" and d.number == "911"
    assert {r["number"] for r in d.routes} == {"99#911", "911"}
    # and 9 + 911 through the outside-line rule is one too
    assert ask(callee="9911").destination_class == "emergency"


def test_an_identified_accounts_emergency_call_ignores_pop_and_ip_restrictions(net) -> None:
    """Decided (docs/authorization.md): the POP and IP restrictions guard the account's money
    against stolen credentials; an emergency call costs nothing and must connect (seed 001)."""
    net["alice"].ip_restriction = ["192.0.2.0/24"]
    net["alice"].save()
    net["alice"].pop_restriction.set([Pop.objects.create(name="pop-lon")])
    cache.reset()
    for kw in ({}, {"pop": "pop-nyc"}, {"source_ip": "203.0.113.5", "pop": "pop-nyc"}):
        d = ask(callee="911", **kw)
        assert d.allowed and d.destination_class == "emergency", (kw, d.reason)
        assert any("restrictions do not apply to emergency calls" in step for step in d.trace)
        # ... but an ordinary call from there is still refused
        assert ask(**kw).reason in ("pop_not_allowed", "ip_not_allowed")


def test_an_inactive_account_is_refused_even_for_emergency_calls(net) -> None:
    Account.objects.filter(pk=net["alice"].pk).update(status="inactive")
    cache.reset()
    assert ask(callee="911").reason == "account_disabled"


# --- premium-rate numbers ----------------------------------------------------------------------


@pytest.fixture
def priced(net):  # type: ignore[no-untyped-def]
    """A 1-900 price in the tariff and at the vendors: only the restriction stands in the way."""
    Rate.objects.create(
        tariff=net["tariff"], prefix="1900", destination="US premium", price_1=Decimal("2.50"), price_n=Decimal("2.50")
    )
    for dset in {e.destination_set for e in net["group"].entries.all()}:
        DestinationRate.objects.create(
            destination_set=dset, prefix="1900", price_1=Decimal("1.50"), price_n=Decimal("1.50")
        )
    cache.reset()
    return net


def test_a_premium_rate_number_is_refused_for_a_new_account(priced) -> None:
    fresh = Account.objects.create(customer=priced["customer"], name="new", dialing_mode="nanp")
    SipDevice.objects.create(account=fresh, login="newbie", secret="x")
    cache.reset()
    assert fresh.allow_premium_rate is False
    d = ask(sip_user="newbie", callee="19005551234")
    assert (d.allowed, d.reason, d.sip_code) == (False, "premium_rate_disabled", Refusal.PREMIUM_RATE_DISABLED.sip_code)
    assert d.destination_class == "premium_rate" and d.sip_code == 403
    assert any("premium_rate" in step and "type premium_rate" in step for step in d.trace)
    assert not d.routes and d.reservation_id is None


def test_premium_rate_needs_its_own_permission_even_with_international_allowed(priced) -> None:
    assert ask(callee="19005551234").reason == "premium_rate_disabled"  # alice: international allowed
    Account.objects.filter(pk=priced["alice"].pk).update(allow_premium_rate=True)
    cache.reset()
    d = ask(callee="19005551234")
    assert d.allowed and d.destination_class == "premium_rate" and d.rate["prefix"] == "1900"
    assert any("premium-rate calls allowed" in step for step in d.trace)


def test_a_premium_rate_number_abroad_also_needs_international_permission(net) -> None:
    Rate.objects.create(
        tariff=net["tariff"], prefix="449", destination="UK premium", price_1=Decimal("1.50"), price_n=Decimal("1.50")
    )
    Account.objects.filter(pk=net["alice"].pk).update(allow_premium_rate=True, allow_international=False)
    cache.reset()
    d = ask(callee="011449098790000")  # a UK 09 premium-rate number
    assert (d.reason, d.destination_class, d.country) == ("international_disabled", "premium_rate", "GB")
    Account.objects.filter(pk=net["alice"].pk).update(allow_international=True, international_rate_cap=Decimal("1"))
    cache.reset()
    assert ask(callee="011449098790000").reason == "rate_above_cap"


def test_a_number_libphonenumber_does_not_know_is_not_passed_off_as_a_known_country(net) -> None:
    """An unassigned NANP area code is not "domestic US", a range the UK never assigned is not
    "GB": the country is unknown, the call needs the international permission, the allowed-countries
    list does not contain it, and the rate deck prices it."""
    Account.objects.filter(pk=net["alice"].pk).update(allow_international=False)
    cache.reset()
    nanp = ask(callee="19995550100")
    assert (nanp.reason, nanp.destination_class, nanp.country) == ("international_disabled", "unknown", "")
    Account.objects.filter(pk=net["alice"].pk).update(allow_international=True, allowed_countries=["GB", "US"])
    cache.reset()
    uk = ask(callee="011441632960000")
    assert (uk.reason, uk.destination_class, uk.country) == ("country_not_allowed", "international", "")
    Account.objects.filter(pk=net["alice"].pk).update(allowed_countries=[])
    cache.reset()
    allowed = ask(callee="19995550100")
    assert allowed.allowed and allowed.rate["prefix"] == "1"  # the deck decides the price


# --- directory assistance only through 411 -----------------------------------------------------


@pytest.mark.parametrize("callee", ["2125551212", "12125551212", "1-416-555-1212", "+1 (876) 555 1212"])
def test_npa_555_1212_is_refused_even_with_411_allowed(net, callee) -> None:
    Account.objects.filter(pk=net["alice"].pk).update(allow_411=True)
    cache.reset()
    d = ask(callee=callee)
    assert (d.allowed, d.reason, d.sip_code) == (False, "directory_411_only", 403)
    assert d.destination_class == "directory" and "dial 411" in d.trace[-1]
    assert ask(callee="411").allowed
    assert ask(callee="2125551213").allowed  # only 555-1212 itself
