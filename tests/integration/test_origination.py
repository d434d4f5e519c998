"""Origination (inbound) rating through ingestion: both paths, the CLI file import and the API push."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.db.models import Sum

from tarifa.api.models import ApiToken
from tarifa.billing.models import Transaction
from tarifa.cdrs.ingest import ingest
from tarifa.cdrs.models import Cdr
from tarifa.cdrs.penalties import PeriodNotClosed, post_short_call_penalties
from tarifa.core.cdr import CanonicalCdr
from tarifa.core.rating import RateTerms, call_cost
from tarifa.customers.models import Account
from tarifa.dids.models import Did, DidPlan, NpaNxx, OriginRate, VirtualNumber
from tarifa.routing.models import Pop
from tests.factories import T0, cdr
from tests.ingesting import balance_matches_ledger, ingest_in_rollback
from tests.origination_world import inbound, plan_form

pytestmark = pytest.mark.django_db
D = Decimal


def price(rate: str, duration: int, i1: int = 30, i_n: int = 6) -> Decimal:
    return call_cost(RateTerms(price_1=D(rate), price_n=D(rate), interval_1=i1, interval_n=i_n), duration, 4, "half_up")


def test_inbound_calls_are_rated_by_the_plans_origination_terms(origination) -> None:  # type: ignore[no-untyped-def]
    ingest(
        [
            inbound("blend", "12015550100", "+33142000000"),
            inbound("tier", "+12015550100", "+442079460000"),
            inbound("tier-long", "12015550100", "+447700900123"),
            inbound("tf", "18005550199", "+12125550001"),
            inbound("tf-other", "18005550199", "+13125550001"),
            inbound("tf-abroad", "18005550199", "+442079460000"),
            inbound("intra", "12125560100", "+12125550001"),
            inbound("inter", "12125560100", "+15185550001"),
            inbound("interstate", "12125560100", "+12015550001"),
            inbound("lata-unknown", "12125560100", "+13105550001"),
            inbound("anonymous", "12015550100", "anonymous"),
        ],
        source="t",
        fmt="test",
    )
    got = {c.call_id: (c.price, c.destination, c.prefix) for c in Cdr.objects.all()}
    assert got["blend"] == (price("0.0060", 61), "DID inbound", "")
    assert got["tier"] == (price("0.0500", 61), "DID inbound, tiered", "44")
    assert got["tier-long"] == (price("0.1200", 61), "DID inbound, tiered", "447")
    assert got["tf"] == (price("0.0250", 61), "DID inbound, toll-free", "1212")
    assert got["tf-other"] == (price("0.0300", 61), "DID inbound, toll-free", "1")
    assert got["tf-abroad"] == (price("0.0060", 61), "DID inbound, toll-free", "")  # no toll-free rate: blended
    assert got["intra"] == (price("0.0010", 61, 60, 60), "DID inbound, intra-LATA intrastate", "")
    assert got["inter"] == (price("0.0020", 61, 60, 60), "DID inbound, inter-LATA intrastate", "")
    assert got["interstate"] == (price("0.0040", 61, 60, 60), "DID inbound, interstate", "")
    assert got["lata-unknown"] == (price("0.0100", 61, 60, 60), "DID inbound", "")
    assert got["anonymous"] == (price("0.0060", 61), "DID inbound", "")
    assert Cdr.objects.get(call_id="tf").account == origination["alice"]  # the toll-free number's owner pays
    assert Cdr.objects.get(call_id="intra").account == origination["trunk"]
    assert balance_matches_ledger(origination["customer"])


def test_payphone_surcharge_is_added_even_when_included_minutes_cover_the_call(origination) -> None:  # type: ignore[no-untyped-def]
    plan = origination["plan"]
    plan.included_minutes = 10
    plan.save()
    ingest(
        [inbound("pay", "12015550100", "+13055550001"), inbound("home", "12015550100", "+13055560001", minute=1)],
        source="t",
        fmt="test",
    )
    pay, home = Cdr.objects.get(call_id="pay"), Cdr.objects.get(call_id="home")
    assert (pay.price, pay.pool_seconds) == (D("0.2500"), 66)
    assert (home.price, home.pool_seconds) == (D("0.0000"), 66)


def test_out_payment_credits_the_owner_once_per_batch(origination) -> None:  # type: ignore[no-untyped-def]
    ip = origination["ip"]
    calls = [inbound(f"rs{n}", "19005550100", "+12125550001", duration=d, minute=n) for n, d in enumerate((61, 30, 0))]
    report = ingest(calls, source="t", fmt="test", batch_size=10)
    assert report.stored == 3
    rows = {c.call_id: c.out_payment for c in Cdr.objects.all()}
    assert rows == {"rs0": D("0.0300"), "rs1": D("0.0150"), "rs2": D("0")}  # 2 min + 1 min; unanswered nothing
    credit = Transaction.objects.get(kind="credit")
    assert (credit.amount, credit.account_id) == (D("0.0450"), ip.pk)  # the account keeps its own balance
    assert credit.description.startswith("Out-payment for 2 calls started")
    ip.refresh_from_db()
    assert ip.balance == Transaction.objects.filter(account=ip).aggregate(s=Sum("amount"))["s"] == D("0.0450")
    again = ingest(calls, source="t", fmt="test")
    assert again.duplicates == 3 and Transaction.objects.filter(kind="credit").count() == 1


def test_a_virtual_number_uses_its_primary_dids_plan_and_pool(origination) -> None:  # type: ignore[no-untyped-def]
    plan = origination["plan"]
    plan.included_minutes = 1
    plan.save()
    vext = Account.objects.create(customer=origination["customer"], name="vext", kind="extension", dialing_mode="e164")
    VirtualNumber.objects.create(number="305", primary_did=origination["did"], account=vext)
    ingest(
        [inbound("v1", "305", "+442079460000", duration=40), inbound("v2", "305", "+442079460000", minute=1)],
        source="t",
        fmt="test",
    )
    v1, v2 = Cdr.objects.get(call_id="v1"), Cdr.objects.get(call_id="v2")
    assert v1.account == vext and (v1.price, v1.pool_seconds) == (D("0.0000"), 42)
    # 66 s billed, 18 s left in the primary DID's pool: 48 s at the tiered +44 rate
    assert (v2.price, v2.pool_seconds, v2.prefix) == (price("0.0500", 48), 18, "44")


def _mixed() -> list[CanonicalCdr]:
    callers = ["+442079460000", "+447700900123", "+12125550001", "+13055550001", "+15185550001", "+33142000000", ""]
    callees = ["12015550100", "18005550199", "12125560100", "19005550100", "19995550000", "12015550177", "305"]
    calls = []
    for n in range(120):
        if n % 3 == 0:
            calls.append(cdr(f"out{n}", duration=n % 200))
        else:
            calls.append(
                inbound(
                    f"in{n}",
                    callees[n % len(callees)],
                    callers[(n // 7) % len(callers)],
                    duration=(n * 7) % 130,
                    minute=n % 50,
                    leg="a" if n % 11 else "b",
                    disposition="answered" if n % 13 else "busy",
                )
            )
    return calls


@pytest.mark.parametrize("batch", [5000, 37])
def test_both_paths_store_the_same_inbound_rows_and_money(origination, batch: int) -> None:  # type: ignore[no-untyped-def]
    pooled = DidPlan.objects.create(name="Pooled", inbound_rate=D("0.0200"), included_minutes=3)
    Did.objects.create(number="12015550177", status="assigned", account=origination["alice"], plan=pooled)
    vext = Account.objects.create(customer=origination["customer"], name="vext", kind="extension", dialing_mode="nanp")
    VirtualNumber.objects.create(number="305", primary_did=origination["did"], account=vext)
    calls = _mixed()
    rows, _ = ingest_in_rollback(calls, vectorised=False, batch_size=batch)
    fast, _ = ingest_in_rollback(calls, vectorised=True, batch_size=batch)
    assert rows["report"] == fast["report"]
    assert rows["cdrs"] == fast["cdrs"]
    assert rows["transactions"] == fast["transactions"] and rows["balances"] == fast["balances"]
    assert rows["running_ok"] and fast["running_ok"]
    bases = {r["destination"] for r in rows["cdrs"].values() if r["direction"] == "inbound"}
    assert {
        "DID inbound",
        "DID inbound, tiered",
        "DID inbound, toll-free",
        "DID inbound, intra-LATA intrastate",
    } <= bases
    assert any(r["out_payment"] for r in rows["cdrs"].values())
    assert any(t[4] == "credit" for t in rows["transactions"])
    assert any(r["pool_seconds"] for r in rows["cdrs"].values() if r["direction"] == "inbound")
    assert any(r["account_id"] == vext.pk and r["price"] for r in rows["cdrs"].values())
    assert any(r["price"] > D("0.2") for r in rows["cdrs"].values() if r["destination"].startswith("DID"))  # payphone
    if batch == 5000:  # the outbound calls and the inbound calls to DIDs without included minutes went the fast way
        outbound = sum(1 for c in calls if c.direction == "outbound")
        to_pool_or_nowhere = sum(1 for c in calls if c.callee in ("19995550000", "12015550177", "305"))
        assert fast["vectorised"] == len(calls) - to_pool_or_nowhere and outbound < fast["vectorised"]


def test_cdr_import_file_rates_inbound_calls(origination, cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    csv = tmp_path / "in.csv"
    csv.write_text(
        "call_id,callee,caller,start_time,duration,disposition,direction,did\n"
        "f1,12015550100,+442079460000,2026-03-02T10:00:00Z,61,answered,inbound,12015550100\n"
        "f2,18005550199,+12125550001,2026-03-02T10:01:00Z,61,answered,inbound,\n"
        "f3,19005550100,+12125550001,2026-03-02T10:02:00Z,61,answered,inbound,\n"
    )
    Pop.objects.create(name="sw9")
    result = cli("cdr", "import", str(csv), "--format", "tarifa", "--switch", "sw9")
    assert result.exit_code == 0, result.output
    got = {c.call_id: (c.price, c.out_payment) for c in Cdr.objects.all()}
    assert got == {
        "f1": (price("0.0500", 61), D("0")),
        "f2": (price("0.0250", 61), D("0")),
        "f3": (D("0.0000"), D("0.0300")),
    }


def test_api_push_rates_inbound_calls(origination, client) -> None:  # type: ignore[no-untyped-def]
    _token, raw = ApiToken.issue("sbc", switch=Pop.objects.create(name="pop-a"))
    body = [
        {
            "call_id": "a1",
            "callee": "12015550100",
            "caller": "+447700900123",
            "direction": "inbound",
            "start_time": "2026-03-02T10:00:00+00:00",
            "duration": 61,
        }
    ]
    response = client.post(
        "/api/v1/cdrs", data=json.dumps(body), content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {raw}"
    )
    assert response.status_code == 200, response.content
    row = Cdr.objects.get(call_id="a1")
    assert (row.price, row.prefix, row.destination) == (price("0.1200", 61), "447", "DID inbound, tiered")


def test_lata_import_cli(origination, cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    good = tmp_path / "lata.csv"
    good.write_text("npa_nxx,lata,state\n212555,133,NY\n305555,460,FL\n")
    result = cli("lata", "import", str(good))
    assert result.exit_code == 0 and "1 added, 1 changed, 0 removed" in result.output
    assert NpaNxx.objects.get(npa_nxx="212555").lata == "133"
    result = cli("lata", "import", str(good), "--replace")
    assert "0 added, 0 changed, 3 removed" in result.output and NpaNxx.objects.count() == 2


def test_short_call_penalties_post_once_per_customer_and_month(origination, cli) -> None:  # type: ignore[no-untyped-def]
    plan = origination["plan"]
    plan.short_call_seconds, plan.short_call_threshold, plan.short_call_penalty = 6, D("25"), D("0.0500")
    plan.save()
    durations = [3, 5, 2, 30, 60, 90, 120, 0]  # 3 short of 7 answered = 42.9 % > 25 %
    ingest(
        [inbound(f"s{n}", "12015550100", "+33142000000", duration=d, minute=n) for n, d in enumerate(durations)],
        source="t",
        fmt="test",
    )
    now = datetime(2026, 4, 2, tzinfo=UTC)
    first = post_short_call_penalties(T0.date().replace(day=1), now=now)
    assert [(p.calls, p.short, p.amount, p.posted) for p in first] == [(7, 3, D("0.1500"), True)]
    again = post_short_call_penalties(T0.date().replace(day=1), now=now)
    assert [p.posted for p in again] == [False]
    penalty = Transaction.objects.get(kind="penalty")
    assert (
        penalty.amount == D("-0.1500")
        and penalty.reference == f"short-calls:{plan.pk}:{origination['customer'].pk}:2026-03"
    )
    assert balance_matches_ledger(origination["customer"])
    with pytest.raises(PeriodNotClosed):
        post_short_call_penalties(T0.date().replace(day=1), now=datetime(2026, 3, 31, 23, tzinfo=UTC))
    result = cli("origination", "penalties", "--month", "2026-03")
    assert result.exit_code == 0 and "0 penalty(ies) posted, 1 already posted" in result.output
    result = cli("origination", "penalties", "--month", "2026-13")
    assert result.exit_code == 2 and "YYYY-MM" in result.output


def test_origin_rates_are_edited_on_the_plans_page(admin_client) -> None:  # type: ignore[no-untyped-def]
    from django.urls import reverse

    plan = DidPlan.objects.create(name="Tiered", inbound_rate=D("0.0100"))
    url = reverse("admin:dids_didplan_change", args=[plan.pk])
    assert admin_client.get(url).status_code == 200
    refused = admin_client.post(url, plan_form(plan, "44x"))
    assert (
        refused.status_code == 200 and "Origin prefix" in refused.content.decode() and "44x" in refused.content.decode()
    )
    assert not OriginRate.objects.exists()
    saved = admin_client.post(url, plan_form(plan, "44"))
    assert saved.status_code == 302, saved.content.decode()[:2000]
    assert list(OriginRate.objects.values_list("prefix", "rate", "toll_free")) == [("44", D("0.0400"), False)]
    plan.refresh_from_db()
    assert plan.payphone_surcharge == D("0.25") and plan.toll_free_rate is None


def test_rerating_an_inbound_call_after_a_new_origin_rate_posts_the_difference(origination) -> None:  # type: ignore[no-untyped-def]
    from tarifa.cdrs.rerate import Criteria, rerate

    ingest([inbound("r1", "12015550100", "+33142000000")], source="t", fmt="test")
    assert Cdr.objects.get().price == price("0.0060", 61)
    OriginRate.objects.create(plan=origination["plan"], prefix="33", rate=D("0.0600"))
    run = rerate(Criteria(start=T0 - timedelta(days=1), end=T0 + timedelta(days=1)), reason="France tier", by="ops")
    row = Cdr.objects.get()
    assert run.changed == 1 and (row.price, row.prefix, row.destination) == (
        price("0.0600", 61),
        "33",
        "DID inbound, tiered",
    )
    adjustment = Transaction.objects.get(kind="adjustment")
    assert adjustment.amount == price("0.0060", 61) - price("0.0600", 61)
    assert balance_matches_ledger(origination["customer"])


def test_a_file_import_and_api_pushes_of_the_same_inbound_calls_store_the_same_ratings(  # type: ignore[no-untyped-def]
    origination,
    cli,
    client,
    tmp_path: Path,
) -> None:
    """The file goes the vectorised way (one batch of 70), the API pushes of 10 row by row."""
    callers = ["+442079460000", "+447700900123", "+12125550001", "+13055550001", "+15185550001", "", "anonymous"]
    callees = ["12015550100", "+18005550199", "12125560100", "19005550100", "19995550000"]
    calls = [
        {
            "call_id": f"x{n}",
            "callee": callees[n % 5],
            "caller": callers[(n // 5) % 7],
            "direction": "inbound",
            "start_time": f"2026-03-02T10:{n % 60:02d}:00+00:00",
            "duration": (n * 13) % 200,
            "disposition": "answered" if n % 9 else "no_answer",
            "leg": "a" if n % 8 else "b",
        }
        for n in range(70)
    ]
    header = ["call_id", "callee", "caller", "start_time", "duration", "disposition", "direction", "leg"]
    csv = tmp_path / "in.csv"
    csv.write_text(",".join(header) + "\n" + "".join(",".join(str(c[h]) for h in header) + "\n" for c in calls))
    Pop.objects.get_or_create(name="file")
    result = cli("cdr", "import", str(csv), "--format", "tarifa", "--switch", "file")
    assert result.exit_code == 0, result.output
    _token, raw = ApiToken.issue("sbc", switch=Pop.objects.create(name="api"))
    for start in range(0, 70, 10):
        response = client.post(
            "/api/v1/cdrs",
            data=json.dumps(calls[start : start + 10]),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {raw}",
        )
        assert response.status_code == 200 and response.json()["stored"] == 10
    fields = (
        "call_id",
        "account_id",
        "customer_id",
        "number",
        "prefix",
        "destination",
        "billed_seconds",
        "price",
        "cost",
        "margin",
        "rating_status",
        "unrated_reason",
        "pool_seconds",
        "out_payment",
    )
    by_file = sorted(Cdr.objects.filter(switch="file").values_list(*fields))
    by_api = sorted(Cdr.objects.filter(switch="api").values_list(*fields))
    assert len(by_file) == 70 and by_file == by_api
    assert {r[5] for r in by_file} >= {
        "DID inbound",
        "DID inbound, tiered",
        "DID inbound, toll-free",
        "DID inbound, intra-LATA intrastate",
    }
    assert balance_matches_ledger(origination["customer"])
    credits = Transaction.objects.filter(kind="credit")
    assert credits.count() >= 2  # one per balance and batch: the file's and the API's
