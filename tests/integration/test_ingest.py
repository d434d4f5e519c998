"""CDR ingestion: matching, two-sided rating, exactly-once posting, pools, unratable calls, re-rating."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from tarifa.billing.models import IncludedMinutes, MinutePoolUsage, ServicePlan, Transaction
from tarifa.calls.models import Reservation
from tarifa.cdrs.ingest import ingest
from tarifa.cdrs.models import Cdr, RerateRun
from tarifa.cdrs.rerate import Criteria, rerate
from tarifa.core.cdr import CanonicalCdr, LineError
from tarifa.customers.models import Account
from tarifa.dids.models import VirtualNumber
from tarifa.rating.models import Rate
from tests.factories import T0, cdr
from tests.ingesting import balance_matches_ledger

pytestmark = pytest.mark.django_db


def test_rated_on_both_sides_and_posted_once(world) -> None:
    report = ingest([cdr("c1", duration=90)], source="t", fmt="test")
    assert (report.stored, report.duplicates, report.unrated) == (1, 0, 0)
    row = Cdr.objects.get(call_id="c1")
    assert row.account == world["alice"] and row.customer == world["customer"]
    assert (row.prefix, row.billed_seconds) == ("44", 120)
    assert row.price == Decimal("0.0400") and row.cost == Decimal("0.030000") and row.margin == Decimal("0.0100")
    assert row.connection == world["conn"]
    tx = row.transaction
    assert tx.amount == Decimal("-0.0400") and tx.kind == "call_charge" and list(tx.calls.all()) == [row]
    assert balance_matches_ledger(world["customer"]) and world["customer"].balance == Decimal("-0.0400")
    again = ingest([cdr("c1", duration=90), cdr("c2")], source="t", fmt="test")
    assert (again.stored, again.duplicates) == (1, 1)
    assert Cdr.objects.get(call_id="c1").transaction == tx and Transaction.objects.count() == 2
    assert Cdr.objects.get(call_id="c2").transaction.amount == Decimal("-0.0200")
    assert balance_matches_ledger(world["customer"])


def test_duplicates_inside_one_batch(world) -> None:
    report = ingest([cdr("d1"), cdr("d1"), cdr("d1", leg="b")], source="t", fmt="test")
    assert (report.stored, report.duplicates) == (2, 1)
    b_leg = Cdr.objects.get(call_id="d1", leg="b")
    assert b_leg.price == 0 and b_leg.cost == Decimal("0.015000")  # vendor cost kept, customer not charged twice
    assert Transaction.objects.count() == 1


def test_unanswered_calls_cost_nothing(world) -> None:
    ingest(
        [cdr("u1", duration=0, disposition="no_answer"), cdr("u2", duration=30, disposition="busy")],
        source="t",
        fmt="test",
    )
    rows = Cdr.objects.filter(call_id__in=["u1", "u2"])
    assert all(r.price == 0 and r.cost == 0 and r.rating_status == "rated" for r in rows)
    assert not Transaction.objects.exists()


@pytest.mark.parametrize(
    ("kwargs", "account"),
    [
        ({"sip_user": "", "trunk": "tr-1"}, "trunk"),
        ({"sip_user": "", "source_ip": "198.51.100.7"}, "ip"),
        ({"sip_user": "", "extension": "201", "source_ip": "198.51.100.7"}, "ext"),  # from its customer's PBX
        ({"sip_user": "", "account_code": "__ALICE__"}, "alice"),
    ],
)
def test_matching_by_identity(world, kwargs: dict, account: str) -> None:
    if kwargs.get("account_code") == "__ALICE__":
        kwargs["account_code"] = world["alice"].account_code
    ingest([cdr("m1", **kwargs)], source="t", fmt="test")
    assert Cdr.objects.get(call_id="m1").account == world[account]


def test_own_balance_account(world) -> None:
    ingest([cdr("o1", sip_user="", source_ip="198.51.100.7")], source="t", fmt="test")
    world["ip"].refresh_from_db()
    assert world["ip"].balance == Decimal("-0.0200")
    world["customer"].refresh_from_db()
    assert world["customer"].balance == 0
    assert Transaction.objects.get().account == world["ip"]


def test_unratable_calls_are_kept_with_a_reason(world) -> None:
    report = ingest(
        [
            cdr("n1", sip_user="nobody"),
            cdr("n2", callee="999123456"),
            cdr("n3", callee="12ab"),
        ],
        source="t",
        fmt="test",
    )
    assert report.unrated == 3
    reasons = dict(Cdr.objects.values_list("call_id", "unrated_reason"))
    assert reasons == {"n1": "no_account", "n2": "no_rate", "n3": "invalid_number"}
    assert not Transaction.objects.exists()


def test_rejected_lines_do_not_stop_good_ones(world) -> None:
    report = ingest([cdr("g1"), LineError(2, "bad time"), cdr("g2"), cdr("x" * 300)], source="t", fmt="test")
    assert report.stored == 2 and len(report.rejected) == 2
    assert "longer than 255" in report.rejected[1].reason


def test_inbound_did_with_included_minutes(world) -> None:
    # Plan: 2 included minutes, then 0.006/min. Calls: 90 s (covered), 60 s (30 s covered + 30 s -> 1 min charged).
    calls = [
        CanonicalCdr(
            call_id=f"in{n}",
            callee="12015550100",
            start_time=T0 + timedelta(minutes=n),
            duration=d,
            switch="sw1",
            direction="inbound",
            did="12015550100",
        )
        for n, d in enumerate((90, 60))
    ]
    ingest(calls, source="t", fmt="test")
    first, second = Cdr.objects.order_by("call_id")
    assert (first.price, first.pool_seconds, first.billed_seconds) == (Decimal("0"), 120, 120)
    assert second.pool_seconds == 0 and second.price == Decimal("0.0060")
    assert MinutePoolUsage.objects.get().seconds_used == 120


def test_service_plan_pool_consumed_before_money(world) -> None:
    plan = ServicePlan.objects.create(name="Biz")
    IncludedMinutes.objects.create(plan=plan, name="UK", prefixes=["44"], minutes=3)
    world["alice"].service_plan = plan
    world["alice"].save()
    ingest([cdr("p1", duration=120), cdr("p2", duration=120), cdr("p3", callee="12015550123")], source="t", fmt="test")
    p1, p2, p3 = Cdr.objects.order_by("call_id")
    assert (p1.price, p1.pool_seconds) == (Decimal("0"), 120)
    assert (p2.price, p2.pool_seconds) == (Decimal("0.0200"), 60)  # 60 s left covered, 60 s charged
    assert p3.pool_seconds == 0 and p3.price == Decimal("0.0100")  # not a UK call: no pool
    usage = MinutePoolUsage.objects.get(account=world["alice"])
    assert (usage.seconds_used, usage.period_start) == (180, date(2026, 3, 1))


def test_virtual_number_uses_primary_did_pricing(world) -> None:
    plan = ServicePlan.objects.create(name="Premium")
    IncludedMinutes.objects.create(plan=plan, name="US", prefixes=["1"], minutes=10)
    world["alice"].service_plan = plan
    world["alice"].save()
    ext_account = Account.objects.create(customer=world["customer"], name="vext", kind="extension", dialing_mode="e164")
    VirtualNumber.objects.create(number="305", primary_did=world["did"], account=ext_account)
    ingest(
        [cdr("v1", callee="12015550123", sip_user="", extension="305", source_ip="198.51.100.7")],
        source="t",
        fmt="test",
    )
    row = Cdr.objects.get(call_id="v1")
    assert row.account == ext_account
    assert row.price == 0 and row.pool_seconds == 60  # shares the primary DID owner's included minutes


def test_reservation_released_with_the_cdr(world) -> None:
    Reservation.objects.create(
        switch="sw1",
        call_id="r1",
        customer=world["customer"],
        account=world["alice"],
        amount=Decimal("1"),
        max_duration=600,
        created_at=T0,
        expires_at=T0 + timedelta(hours=1),
    )
    ingest([cdr("r1")], source="t", fmt="test")
    assert not Reservation.objects.exists()


def test_rerate_unratable_after_fixing_the_tariff(world) -> None:
    ingest([cdr("f1", callee="33142685300", duration=60)], source="t", fmt="test")
    assert Cdr.objects.get(call_id="f1").unrated_reason == "no_rate"
    Rate.objects.create(
        tariff=world["tariff"], prefix="33", destination="France", price_1=Decimal("0.03"), price_n=Decimal("0.03")
    )
    run = rerate(Criteria(unrated_only=True), reason="added France", by="ops")
    assert (run.examined, run.changed, run.still_unrated) == (1, 1, 0)
    row = Cdr.objects.get(call_id="f1")
    assert row.rating_status == "rated" and row.price == Decimal("0.0300") and row.rerate_run == run
    tx = Transaction.objects.get(cdr=row)
    assert tx.amount == Decimal("-0.0300") and "added France" in tx.description
    assert RerateRun.objects.get().started_by == "ops"
    assert balance_matches_ledger(world["customer"])


def test_rerate_posts_only_the_difference(world) -> None:
    ingest([cdr(f"k{n}", duration=60) for n in range(3)], source="t", fmt="test")
    assert world["customer"].__class__.objects.get(pk=world["customer"].pk).balance == Decimal("-0.0600")
    Rate.objects.filter(tariff=world["tariff"], prefix="44").update(price_1=Decimal("0.025"), price_n=Decimal("0.025"))
    run = rerate(
        Criteria(start=T0 - timedelta(days=1), end=T0 + timedelta(days=1), customer="cust1"),
        reason="UK price correction",
        by="ops",
    )
    assert run.changed == 3 and run.adjustment_total == Decimal("0.0150")
    adjustments = Transaction.objects.filter(kind="adjustment")
    assert adjustments.count() == 3 and {a.amount for a in adjustments} == {Decimal("-0.0050")}
    assert balance_matches_ledger(world["customer"])
    assert world["customer"].balance == Decimal("-0.0750")
    # Re-rating again changes nothing.
    assert rerate(Criteria(customer="cust1"), reason="again", by="ops").changed == 0


def test_dashboard_counts_unratable_cdrs(world, client) -> None:
    from django.contrib.auth import get_user_model

    ingest([cdr("z1", sip_user="ghost"), cdr("z2", sip_user="ghost"), cdr("z3")], source="t", fmt="test")
    client.force_login(get_user_model().objects.create_superuser("boss", "b@example.com", "Boss-pass1"))
    page = client.get("/admin/").content.decode()
    start = page.index('id="unratable-count"')
    assert ">2<" in page[start : start + 600].replace(" ", "").replace("\n", "")
    assert "no_account</a>: 2" in page
    listing = client.get("/admin/cdrs/cdr/", {"rating_status__exact": "unrated", "unrated_reason": "no_account"})
    assert {c.call_id for c in listing.context["cl"].queryset} == {"z1", "z2"}


def test_b_legs_use_no_included_minutes_and_long_fields_are_refused_per_line(world) -> None:
    plan = ServicePlan.objects.create(name="Biz2")
    IncludedMinutes.objects.create(plan=plan, name="UK", prefixes=["44"], minutes=10)
    world["alice"].service_plan = plan
    world["alice"].save()
    report = ingest(
        [cdr("b1", duration=300), cdr("b1", duration=300, leg="b"), cdr("b2", connection="c" * 101)],
        source="t",
        fmt="test",
    )
    assert (
        report.stored == 2
        and len(report.rejected) == 1
        and "connection is longer than 100" in report.rejected[0].reason
    )
    assert MinutePoolUsage.objects.get(account=world["alice"]).seconds_used == 300
    assert Cdr.objects.get(call_id="b1", leg="b").pool_seconds == 0


def test_a_charge_lists_its_calls_in_the_back_office(world, admin_client) -> None:  # type: ignore[no-untyped-def]
    from django.urls import reverse

    ingest(
        [cdr("l1"), cdr("l2", duration=120), cdr("l3", sip_user="", source_ip="198.51.100.7")], source="t", fmt="test"
    )
    charge = Transaction.objects.get(customer=world["customer"], account__isnull=True)
    assert charge.amount == Decimal("-0.0600") and charge.description.startswith("2 calls started 2026-03-02 10:00:00")
    listing = admin_client.get(reverse("admin:billing_transaction_changelist")).content.decode()
    assert f"?transaction__id__exact={charge.pk}" in listing
    calls = admin_client.get(reverse("admin:cdrs_cdr_changelist") + f"?transaction__id__exact={charge.pk}")
    assert calls.status_code == 200
    page = calls.content.decode()
    assert "0.0400" in page and "0.0200" in page
    assert calls.context["cl"].result_count == 2
