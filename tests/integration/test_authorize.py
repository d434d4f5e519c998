"""Call authorisation: every refusal reason, funds and max duration, routing, reservations."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from tarifa.billing import ledger
from tarifa.billing.models import Transaction
from tarifa.calls import cache
from tarifa.calls.authorize import CallRequest, authorize_call, end_call
from tarifa.calls.models import Refusal, Reservation
from tarifa.core.rating import RateTerms, call_cost, max_duration
from tarifa.customers.models import Account, Customer, SipDevice, TranslationRule
from tarifa.dids.models import Did, DidPlan
from tarifa.rating.models import Rate, Tariff
from tarifa.routing.models import (
    Connection,
    DestinationSet,
    Pop,
    RouteOffer,
    RoutingEntry,
    RoutingGroup,
)
from tests.factories import NOW, UK, ask

pytestmark = pytest.mark.django_db


def test_allowed_call_with_routes_duration_and_reservation(net) -> None:
    d = ask()
    assert d.allowed and d.reason == "" and d.sip_code == 200
    assert d.number == UK and d.destination_class == "international" and d.country == "GB"
    assert d.rate["prefix"] == "44" and d.rate["price_1"] == "0.02"
    # least cost first; the tech prefix of the cheap connection is in front of the number
    assert [r["connection"] for r in d.routes] == ["cheap", "dear"]
    assert d.routes[0]["number"] == "99#" + UK and d.routes[0]["vendor_price"] == "0.01"
    terms = RateTerms(price_1=Decimal("0.02"), price_n=Decimal("0.02"))
    expected = max_duration(terms, Decimal("10"), 4, "half_up", 7200)
    assert d.max_duration == expected == 7200  # capped by the customer's max call duration
    held = Reservation.objects.get(pk=d.reservation_id)
    assert held.amount == call_cost(terms, expected, 4, "half_up") and held.connection == net["cheap"]
    assert d.media["rtp_timeout"] == 60 and d.media["rtp_hold_timeout"] == 600


def test_reservations_reduce_available_funds(net) -> None:
    Customer.objects.filter(pk=net["customer"].pk).update(max_call_duration=86400)
    first = ask()
    second = ask()
    terms = RateTerms(price_1=Decimal("0.02"), price_n=Decimal("0.02"))
    left = Decimal("10") - Decimal(first.reserved)
    assert second.max_duration == max_duration(terms, left, 4, "half_up", 14400)
    assert Decimal(first.reserved) + Decimal(second.reserved) <= Decimal("10")


def test_end_call_releases_the_reservation(net) -> None:
    ask(call_id="e1")
    assert Reservation.objects.filter(call_id="e1").exists()
    assert end_call("sw", "e1") is True
    assert not Reservation.objects.filter(call_id="e1").exists()
    assert end_call("sw", "e1") is False


def test_unknown_account(net) -> None:
    d = ask(sip_user="mallory")
    assert (d.allowed, d.reason, d.sip_code) == (False, "unknown_account", 403)


def test_account_disabled(net) -> None:
    Account.objects.filter(pk=net["alice"].pk).update(status="inactive")
    cache.reset()
    assert ask().reason == "account_disabled"


def test_ip_not_allowed(net) -> None:
    net["alice"].ip_restriction = ["192.0.2.0/24"]
    net["alice"].save()
    cache.reset()
    assert ask(source_ip="203.0.113.5").reason == "ip_not_allowed"
    assert ask(source_ip="192.0.2.77").allowed


def test_pop_not_allowed(net) -> None:
    net["alice"].pop_restriction.set([Pop.objects.create(name="pop-lon")])
    cache.reset()
    assert ask(pop="pop-nyc").reason == "pop_not_allowed"
    assert ask(pop="pop-lon").allowed


def test_invalid_number(net) -> None:
    d = ask(callee="12ab")
    assert (d.reason, d.sip_code) == ("invalid_number", 484)


def test_insufficient_funds(net) -> None:
    ledger.post_one(
        ledger.Posting(customer_id=net["customer"].pk, amount=Decimal("-10"), kind="adjustment", reference="x")
    )
    d = ask()
    assert (d.reason, d.sip_code) == ("insufficient_funds", 402)


def test_postpaid_credit_limit_counts(net) -> None:
    ledger.post_one(
        ledger.Posting(customer_id=net["customer"].pk, amount=Decimal("-10"), kind="adjustment", reference="x")
    )
    Customer.objects.filter(pk=net["customer"].pk).update(billing_type="postpaid", credit_limit=Decimal("1.00"))
    cache.reset()
    d = ask()
    assert d.allowed and d.max_duration == 3000  # 1.00 at 0.02/min = 50 minutes


def test_daily_spending_limit(net) -> None:
    Customer.objects.filter(pk=net["customer"].pk).update(daily_spending_limit=Decimal("0.10"))
    cache.reset()
    d = ask()
    assert d.allowed and d.max_duration == 300  # 0.10 at 0.02/min


def test_destination_forbidden_and_411(net) -> None:
    assert ask(callee="011882123456").reason == "destination_forbidden"
    assert ask(callee="411").reason == "destination_forbidden"
    Account.objects.filter(pk=net["alice"].pk).update(allow_411=True)
    cache.reset()
    d = ask(callee="411")
    assert d.allowed and d.destination_class == "directory" and d.rate["price_1"] == "0.99"


def test_international_disabled_by_default_for_new_accounts(net) -> None:
    fresh = Account.objects.create(customer=net["customer"], name="new", dialing_mode="nanp")
    SipDevice.objects.create(account=fresh, login="newbie", secret="x")
    cache.reset()
    d = ask(sip_user="newbie")
    assert (d.reason, d.sip_code) == ("international_disabled", 403)
    assert ask(sip_user="newbie", callee="2125550100").allowed  # domestic still goes


def test_country_not_allowed(net) -> None:
    Account.objects.filter(pk=net["alice"].pk).update(allowed_countries=["FR", "DE"])
    cache.reset()
    assert ask().reason == "country_not_allowed"
    assert ask(callee="01133142685300").allowed


def test_rate_above_cap_seed_example(net) -> None:
    # seed 001: cap 0.150/min, UK mobile 4470 at 0.3048/min -> refused
    Account.objects.filter(pk=net["alice"].pk).update(international_rate_cap=Decimal("0.150"))
    cache.reset()
    d = ask(callee="011447012345678")
    assert (d.reason, d.rate["price_1"]) == ("rate_above_cap", "0.3048")
    assert ask().allowed  # UK landline at 0.02 is under the cap


def test_max_call_time_per_class(net) -> None:
    Account.objects.filter(pk=net["alice"].pk).update(max_call_time_international=600, max_call_time_domestic=120)
    cache.reset()
    assert ask().max_duration == 600
    assert ask(callee="2125550100").max_duration == 120


def test_no_rate(net) -> None:
    assert ask(callee="01161212345678").reason == "no_rate"


def test_concurrent_limit(net) -> None:
    Account.objects.filter(pk=net["alice"].pk).update(max_channels=2)
    cache.reset()
    assert ask().allowed and ask().allowed
    d = ask()
    assert (d.reason, d.sip_code) == ("concurrent_limit", 486)
    Customer.objects.filter(pk=net["customer"].pk).update(max_call_sessions=1)
    cache.reset()
    assert ask(sip_user="", source_ip="198.51.100.9", callee=UK).reason == "concurrent_limit"


def test_cps_limit(net) -> None:
    Customer.objects.filter(pk=net["customer"].pk).update(calls_per_second=3)
    cache.reset()
    results = [ask().reason for _ in range(5)]
    assert results == ["", "", "", "cps_limit", "cps_limit"]
    later = authorize_call(
        CallRequest(call_id="next-second", callee="011" + UK, sip_user="alice", switch="sw"),
        now=NOW + timedelta(seconds=1),
    )
    assert later.allowed


def test_no_route(net) -> None:
    RoutingEntry.objects.all().delete()
    cache.reset()
    assert ask().reason == "no_route"


def test_connection_at_capacity_is_dropped(net) -> None:
    Connection.objects.filter(pk=net["cheap"].pk).update(max_channels=1)
    cache.reset()
    assert [r["connection"] for r in ask().routes] == ["cheap", "dear"]
    assert [r["connection"] for r in ask().routes] == ["dear"]


def test_loss_route(net) -> None:
    Customer.objects.filter(pk=net["customer"].pk).update(deny_loss_routes=True)
    cache.reset()
    d = ask(callee="0114915112345678")  # sell 0.01, vendors 0.005 and 0.006: both kept
    assert [r["connection"] for r in d.routes] == ["cheap", "dear"]
    Rate.objects.filter(tariff=net["tariff"], prefix="33").update(price_1=Decimal("0.025"), price_n=Decimal("0.025"))
    cache.reset()
    d = ask(callee="01133142685300")  # sell 0.025, vendors 0.02 and 0.04: the dear one is a loss
    assert [r["connection"] for r in d.routes] == ["cheap"]
    Rate.objects.filter(tariff=net["tariff"], prefix="33").update(price_1=Decimal("0.01"), price_n=Decimal("0.01"))
    cache.reset()
    assert ask(callee="01133142685300").reason == "loss_route"


def test_emergency_always_goes_with_e911_caller_id(net) -> None:
    ledger.post_one(
        ledger.Posting(customer_id=net["customer"].pk, amount=Decimal("-50"), kind="adjustment", reference="x")
    )
    Account.objects.filter(pk=net["alice"].pk).update(allow_international=False, status="active")
    cache.reset()
    d = ask(callee="911", caller="5555")
    assert d.allowed and d.destination_class == "emergency" and d.caller_id == "12015550199"
    assert d.routes and d.reserved == "0"


def test_translation_rules_change_cli_by_destination_prefix(net) -> None:
    TranslationRule.objects.create(
        customer=net["customer"], kind="source", match=r"^.*$", replace="441234567890", dst_prefix="44"
    )
    TranslationRule.objects.create(customer=net["customer"], kind="destination", match=r"^9(\d+)$", replace=r"\1")
    cache.reset()
    d = ask(callee="9011" + UK, caller="12015550100")
    assert d.allowed and d.number == UK and d.caller_id == "441234567890"
    assert ask(callee="92125550100", caller="12015550100").caller_id == "12015550100"


def test_connection_translation_on_the_way_out(net) -> None:
    TranslationRule.objects.create(connection=net["dear"], kind="destination", match=r"^(\d+)$", replace=r"00\1")
    cache.reset()
    routes = {r["connection"]: r["number"] for r in ask().routes}
    assert routes == {"cheap": "99#" + UK, "dear": "00" + UK}


def test_priority_and_weighted_policies(net) -> None:
    RoutingGroup.objects.filter(pk=net["group"].pk).update(policy="priority")
    cache.reset()
    assert [r["connection"] for r in ask().routes] == ["dear", "cheap"]  # dear has priority 0
    RoutingGroup.objects.filter(pk=net["group"].pk).update(policy="weighted")
    RoutingEntry.objects.filter(connection=net["cheap"]).update(weight=1000)
    RoutingEntry.objects.filter(connection=net["dear"]).update(weight=1)
    cache.reset()
    firsts = []
    for n in range(20):
        d = authorize_call(CallRequest(call_id=f"w{n}", callee="011" + UK, sip_user="alice", switch="sw"), now=NOW)
        firsts.append(d.routes[0]["connection"])
        end_call("sw", f"w{n}")
    assert firsts.count("cheap") >= 17


def test_inbound_did(net) -> None:
    plan = DidPlan.objects.create(name="In", inbound_rate=Decimal("0.006"))
    Did.objects.create(number="12015550100", status="assigned", account=net["alice"], plan=plan)
    cache.reset()
    d = authorize_call(CallRequest(call_id="in1", callee="12015550100", did="12015550100", switch="sw"), now=NOW)
    assert d.allowed and d.destination_class == "inbound" and d.routes == [{"type": "sip_device", "login": "alice"}]
    assert d.max_duration == 7200 and Reservation.objects.filter(call_id="in1").exists()


def test_refusals_are_counted_per_reason_and_customer(net) -> None:
    ask(sip_user="mallory")
    ask(callee="011882123456")
    ask(callee="011882123456")
    counts = {(r.customer_id, r.reason): r.count for r in Refusal.objects.all()}
    assert counts == {(None, "unknown_account"): 1, (net["customer"].pk, "destination_forbidden"): 2}


def test_cache_follows_rate_changes(net) -> None:
    assert ask().rate["price_1"] == "0.02"
    Rate.objects.filter(tariff=net["tariff"], prefix="44").update(price_1=Decimal("0.03"))
    cache.reset()
    assert ask().rate["price_1"] == "0.03"


def test_simulation_reserves_nothing_and_explains(net) -> None:
    d = authorize_call(
        CallRequest(call_id="sim", callee="011" + UK, sip_user="alice", switch="sw"), reserve=False, now=NOW
    )
    assert d.allowed and d.reservation_id is None and not Reservation.objects.exists()
    text = "\n".join(d.trace)
    assert "SIP user 'alice'" in text and "rate 44" in text and "ALLOWED" in text and "simulation" in text


def test_premium_route_choice_is_priced_by_its_group_tariff(net) -> None:
    premium_tariff = Tariff.objects.create(name="Premium")
    Rate.objects.create(tariff=premium_tariff, prefix="44", price_1=Decimal("0.05"), price_n=Decimal("0.05"))
    premium = RoutingGroup.objects.create(name="Premium", policy="priority", tariff=premium_tariff)
    RoutingEntry.objects.create(
        group=premium, connection=net["dear"], destination_set=DestinationSet.objects.get(name="Dear set")
    )
    RouteOffer.objects.create(destination_class="international", choice="premium", routing_group=premium)
    cache.reset()
    assert ask().rate["price_1"] == "0.02"  # value route: the customer's tariff
    Account.objects.filter(pk=net["alice"].pk).update(international_route="premium")
    cache.reset()
    d = ask()
    assert d.rate["price_1"] == "0.05" and [r["connection"] for r in d.routes] == ["dear"]


def test_worker_expires_reservations_of_calls_that_never_ended(net) -> None:
    from tarifa.calls.models import CallRate
    from tarifa.calls.reservations import sweep

    Account.objects.filter(pk=net["alice"].pk).update(max_channels=1)
    cache.reset()
    first = ask(call_id="lost")
    assert first.allowed and ask().reason == "concurrent_limit"
    held = Reservation.objects.get(call_id="lost")
    later = held.expires_at + timedelta(seconds=1)
    # Past its expiry the stale reservation no longer counts, even before the sweep ...
    assert authorize_call(
        CallRequest(call_id="after", callee="011" + UK, sip_user="alice", switch="sw"), now=later
    ).allowed
    # ... and the worker removes it and old CPS counters.
    expired, purged = sweep(later + timedelta(hours=3))
    assert expired >= 1 and purged >= 1
    assert not Reservation.objects.filter(call_id="lost").exists() and not CallRate.objects.exists()


def test_worker_drops_reservations_of_an_account_deleted_meanwhile(net) -> None:
    """Reservations have no database constraint: an account deleted while one of its calls was
    being authorised leaves a reservation naming it, which the worker's sweep removes."""
    from django.db import connection

    from tarifa.calls.reservations import sweep

    kept = ask(call_id="kept")
    pbx = ask(call_id="pbx", source_ip="198.51.100.9", sip_user="")
    assert kept.allowed and pbx.allowed
    with connection.cursor() as cursor:  # as if the account's row went between the listing and the insert
        cursor.execute("UPDATE calls_reservation SET account_id = %s WHERE call_id = 'pbx'", [net["pbx"].pk + 10_000])
    expired, _purged = sweep(NOW)
    assert expired == 1
    assert list(Reservation.objects.values_list("call_id", flat=True)) == ["kept"]


def test_own_balance_reservations_do_not_use_the_customer_balance(net) -> None:
    own = Account.objects.create(
        customer=net["customer"], name="own", dialing_mode="nanp", allow_international=True, balance_mode="own"
    )
    SipDevice.objects.create(account=own, login="ownie", secret="x")
    Account.objects.filter(pk=own.pk).update(balance=Decimal("100"))
    Customer.objects.filter(pk=net["customer"].pk).update(max_call_duration=86400)
    cache.reset()
    sibling = ask(sip_user="ownie")
    assert sibling.allowed and Decimal(sibling.reserved) > Decimal("2")
    shared = ask()  # still sees the customer's whole 10.00
    terms = RateTerms(price_1=Decimal("0.02"), price_n=Decimal("0.02"))
    assert shared.max_duration == max_duration(terms, Decimal("10"), 4, "half_up", 14400)


def test_spending_limit_days_begin_at_the_customers_midnight(net) -> None:
    """A charge at 03:00 UTC on NOW's date is yesterday evening in New York: it counts against
    today's limit of a UTC customer, not of a New York one."""
    charge = ledger.post_one(
        ledger.Posting(customer_id=net["customer"].pk, amount=Decimal("-0.05"), kind="call_charge", reference="evening")
    )
    assert charge is not None
    Transaction.objects.filter(reference="evening").update(created_at=NOW.replace(hour=3))
    Customer.objects.filter(pk=net["customer"].pk).update(daily_spending_limit=Decimal("0.10"), time_zone="UTC")
    cache.reset()
    utc = authorize_call(CallRequest(callee="011" + UK, sip_user="alice", call_id="tz-1", switch="sw"), now=NOW)
    assert utc.allowed and utc.max_duration == 120 and Decimal(utc.reserved) == Decimal("0.04")  # 0.05 left: 2 minutes
    Customer.objects.filter(pk=net["customer"].pk).update(time_zone="America/New_York")
    cache.reset()
    ny = authorize_call(
        CallRequest(callee="011" + UK, sip_user="alice", call_id="tz-2", switch="sw"), now=NOW, reserve=False
    )
    # New York's day began at 04:00 UTC: the evening charge is yesterday's; tz-1's reservation counts
    assert ny.allowed and ny.max_duration == 180  # 0.10 - 0.04 reserved = 0.06: 3 minutes
    assert any("since 2026-05-04 04:00 UTC" in line for line in ny.trace)
