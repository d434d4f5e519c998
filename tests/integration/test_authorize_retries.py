"""A switch's retries, operators' simulations and the account's caller ID (issue 11 items 4, 5, 7)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from typer.testing import CliRunner

from tarifa.calls import cache
from tarifa.calls.authorize import CallRequest, authorize_call, simulate_for
from tarifa.calls.models import CallRate, Refusal, Reservation
from tarifa.customers.models import Account, Customer, SipDevice
from tarifa.dids.models import Did
from tarifa.routing.models import Connection, Pop
from tests.factories import NOW, UK

pytestmark = pytest.mark.django_db


def again(call_id: str, callee: str = "011" + UK, **kw):  # type: ignore[no-untyped-def]
    now = kw.pop("now", NOW)
    return authorize_call(CallRequest(call_id=call_id, callee=callee, sip_user="alice", switch="sw", **kw), now=now)


def _answer(d) -> tuple:  # type: ignore[no-untyped-def,type-arg]
    return (d.allowed, d.reason, d.sip_code, d.max_duration, d.reserved, d.reservation_id, d.routes, d.number)


# --- item 4: a retried authorisation gets the same answer and the same reservation ---------------


@pytest.mark.parametrize(
    "limit",
    [
        lambda net: Customer.objects.filter(pk=net["customer"].pk).update(max_call_sessions=1),
        lambda net: Account.objects.filter(pk=net["alice"].pk).update(max_channels=1),
        lambda net: SipDevice.objects.filter(login="alice").update(max_call_sessions=1),
        lambda net: Customer.objects.filter(pk=net["customer"].pk).update(calls_per_second=1),
        lambda net: SipDevice.objects.filter(login="alice").update(calls_per_second=1),
    ],
    ids=["customer_sessions", "account_channels", "device_sessions", "customer_cps", "device_cps"],
)
def test_a_retry_at_the_limit_gets_the_same_answer_and_reservation(net, limit) -> None:
    limit(net)
    cache.reset()
    first = again("retry-1")
    assert first.allowed and first.reservation_id
    for _ in range(2):
        retry = again("retry-1")
        assert _answer(retry) == _answer(first)
        assert any("already holds reservation" in step for step in retry.trace)
    assert again("other").reason in ("concurrent_limit", "cps_limit")  # another call is still refused
    assert Reservation.objects.filter(call_id="retry-1").count() == 1
    # the retries are counted nowhere: one call in each CPS counter, no refusal but the other call's
    assert set(CallRate.objects.values_list("count", flat=True)) == {1}
    assert sum(Refusal.objects.values_list("count", flat=True)) == 1


def test_a_retry_when_the_funds_are_used_by_the_call_itself(net) -> None:
    Customer.objects.filter(pk=net["customer"].pk).update(balance=Decimal("0.50"))
    cache.reset()
    first = again("all-in")
    assert first.allowed and first.reserved == "0.5"
    retry = again("all-in")
    assert _answer(retry) == _answer(first) and Reservation.objects.count() == 1


def test_a_retry_below_the_limits_is_not_counted_twice(net) -> None:
    Connection.objects.filter(pk=net["cheap"].pk).update(max_channels=1, max_cps=5)
    cache.reset()
    first = again("twice")
    retry = again("twice")
    # cheap's one channel is this call's: the retry still names it first, as the first answer did
    assert _answer(retry) == _answer(first) and [r["connection"] for r in retry.routes] == ["cheap", "dear"]
    assert dict(CallRate.objects.values_list("scope", "count")) == {
        f"c:{net['customer'].pk}": 1,
        f"n:{net['cheap'].pk}": 1,
    }
    assert again("next").routes[0]["connection"] == "dear"


def test_a_retry_after_the_call_ended_is_decided_again(net) -> None:
    from tarifa.calls.authorize import end_call

    Customer.objects.filter(pk=net["customer"].pk).update(max_call_sessions=1)
    cache.reset()
    first = again("ended")
    assert end_call("sw", "ended")
    later = again("ended", now=NOW + timedelta(seconds=2))
    assert later.allowed and later.reservation_id != first.reservation_id


# --- item 5: simulations change nothing ---------------------------------------------------------


def _nothing_written() -> None:
    assert not Refusal.objects.exists() and not Reservation.objects.exists() and not CallRate.objects.exists()


def test_a_simulation_counts_no_refusal_reserves_nothing_and_counts_no_call(net) -> None:
    Customer.objects.filter(pk=net["customer"].pk).update(calls_per_second=1)
    net["alice"].pop_restriction.set([Pop.objects.create(name="pop-lon")])
    cache.reset()
    refused = simulate_for("alice", "011" + UK, pop="pop-nyc")
    assert refused.reason == "pop_not_allowed"
    allowed = simulate_for("alice", "011" + UK, pop="pop-lon")
    assert allowed.allowed and allowed.reservation_id is None
    assert simulate_for("alice", "011882123456", pop="pop-lon").reason == "destination_forbidden"
    _nothing_written()


def test_the_simulate_command_changes_nothing(net) -> None:
    import typer

    from tarifa.calls.commands import register

    root = typer.Typer()
    register(root)  # `tarifa call ...` as cli.main registers it
    runner = CliRunner()
    for callee in ("011882123456", "011" + UK, "911"):
        result = runner.invoke(root, ["call", "simulate", "--account", "alice", "--callee", callee, "--json"])
        assert result.exit_code == 0, result.output
    _nothing_written()


def test_the_admins_simulate_page_changes_nothing(client, net) -> None:
    client.force_login(get_user_model().objects.create_superuser("boss", "b@example.com", "Boss-pass1"))
    url = reverse("admin:customers_account_simulate_call", args=[net["alice"].pk])
    assert "Refused: destination_forbidden" in client.post(url, {"callee": "011882123456"}).content.decode()
    assert "Allowed for" in client.post(url, {"callee": "011" + UK}).content.decode()
    _nothing_written()


# --- item 7: the account's caller ID number ----------------------------------------------------


def test_the_accounts_caller_id_is_used_when_the_switch_sends_none(net) -> None:
    Account.objects.filter(pk=net["alice"].pk).update(caller_id_number="12015550142")
    cache.reset()
    assert again("cid-1").caller_id == "12015550142"
    assert again("cid-2", caller="12015550100").caller_id == "12015550100"  # the device's own, when it sends one
    Account.objects.filter(pk=net["alice"].pk).update(caller_id_number="")
    cache.reset()
    assert again("cid-3").caller_id == ""


def test_the_accounts_caller_id_goes_through_the_customers_source_rules(net) -> None:
    from tarifa.customers.models import TranslationRule

    Account.objects.filter(pk=net["alice"].pk).update(caller_id_number="12015550142")
    TranslationRule.objects.create(customer=net["customer"], kind="source", match=r"^1", replace="+1")
    cache.reset()
    assert again("cid-rule").caller_id == "+12015550142"


def test_an_emergency_call_keeps_the_accounts_caller_id_when_it_is_one_of_its_dids(net) -> None:
    Did.objects.create(number="12015550142", status="assigned", account=net["alice"])
    Account.objects.filter(pk=net["alice"].pk).update(caller_id_number="12015550142")
    cache.reset()
    assert again("e-own", callee="911").caller_id == "12015550142"
    Account.objects.filter(pk=net["alice"].pk).update(caller_id_number="12015550777")
    cache.reset()
    assert again("e-other", callee="911").caller_id == "12015550199"  # not a DID of the account: the e911 one
