"""Defects a new-user trial of issue 14 found (services, DIDs, origination): one test per fix."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from django.urls import reverse

from tarifa.cdrs.ingest import ingest
from tarifa.cdrs.models import Cdr
from tarifa.cdrs.penalties import post_short_call_penalties
from tarifa.core.dids import NOT_ACTIVE_YET
from tarifa.customers.models import Account
from tarifa.dids.models import Did, DidPlan, NpaNxx
from tarifa.routing.models import Pop, Vendor
from tests.factories import T0
from tests.ingesting import ingest_in_rollback
from tests.origination_world import inbound
from tests.services_page import errors, page_data

pytestmark = pytest.mark.django_db
D = Decimal


def test_short_call_penalties_count_calls_by_the_did_they_were_rated_as(origination) -> None:  # type: ignore[no-untyped-def]
    """Calls a switch identified by the ``did`` field (callee an extension) count for the DID's
    plan; a call whose ``did`` field names another DID counts for that one, not its callee's."""
    plan = origination["plan"]
    plan.short_call_seconds, plan.short_call_threshold, plan.short_call_penalty = 6, D("25"), D("0.0500")
    plan.save()
    calls = [inbound(f"c{n}", "12015550100", "+33142000000", duration=60, minute=n) for n in range(4)]
    calls += [inbound(f"d{n}", "5000", "+33142000000", duration=3, minute=10 + n, did="+12015550100") for n in range(4)]
    # rated as the LATA plan's DID (the did field wins), not as its callee 12015550100
    calls.append(inbound("x1", "12015550100", "+33142000000", duration=2, minute=20, did="12125560100"))
    ingest(calls, source="t", fmt="test")
    assert Cdr.objects.filter(rating_status="rated").count() == 9
    posted = post_short_call_penalties(T0.date().replace(day=1), now=datetime(2026, 4, 2, tzinfo=UTC))
    assert [(p.plan, p.calls, p.short, p.amount) for p in posted] == [(plan.name, 8, 4, D("0.2000"))]


def test_lata_import_cli_refuses_a_header_only_file_with_replace(origination, cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    before = NpaNxx.objects.count()
    empty = tmp_path / "header-only.csv"
    empty.write_text("npa_nxx,lata,state\n")
    result = cli("lata", "import", str(empty), "--replace")
    assert result.exit_code == 2 and "has no rows" in result.output
    assert NpaNxx.objects.count() == before > 0


def test_did_order_inventory_only_does_not_claim_no_provider_is_configured(  # type: ignore[no-untyped-def]
    origination,
    cli,
    monkeypatch,
) -> None:
    monkeypatch.setenv("TARIFA_DID_PROVIDER_URL", "http://127.0.0.1:9/")  # never asked
    account, plan = origination["alice"], origination["plan"]
    args = ("did", "order", "--country", "US", "--area-code", "907", "--account", account.account_code)
    result = cli(*args, "--plan", plan.name, "--inventory-only")
    assert result.exit_code == 2, result.output
    assert "the provider was not asked (inventory only)" in result.output
    assert "no provider is configured" not in result.output
    monkeypatch.delenv("TARIFA_DID_PROVIDER_URL")
    result = cli(*args, "--plan", plan.name)
    assert result.exit_code == 2 and "no provider is configured" in result.output


def test_penalties_refuse_a_month_not_written_yyyy_mm_and_show_currency_decimals(origination, cli) -> None:  # type: ignore[no-untyped-def]
    for month in ("2026-1", "26-03", "2026-03-01", "2026-3 "):
        result = cli("origination", "penalties", "--month", month)
        said = " ".join(re.sub(r"[│╭╮╰╯─]", " ", result.output).split())  # Rich's box may wrap the line
        assert result.exit_code == 2 and "must be a month as YYYY-MM" in said, (month, said)
    plan = origination["plan"]
    plan.short_call_seconds, plan.short_call_threshold, plan.short_call_penalty = 6, D("10"), D("7")
    plan.short_call_mode = "flat"
    plan.save()
    ingest(
        [inbound(f"s{n}", "12015550100", "+33142000000", duration=d, minute=n) for n, d in enumerate([3, 60])],
        source="t",
        fmt="test",
    )
    result = cli("origination", "penalties", "--month", "2026-03")
    currency = origination["customer"].currency
    assert result.exit_code == 0 and f"1 of 2 short, 7.00 {currency} posted" in result.output, result.output


def test_did_search_refuses_an_unknown_country_and_an_empty_pattern_and_shows_cost_decimals(origination, cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("did", "search", "--country", "XX")
    assert result.exit_code == 2 and "country 'XX' is refused: is not a country" in result.output
    result = cli("did", "search", "--pattern", "")
    assert result.exit_code == 2 and "pattern '' is refused" in result.output
    Vendor.objects.create(name="DID stock", currency="USD")
    for number, cost in (("12125550001", "0.35"), ("12125550002", "0.5"), ("12125550003", "0"), ("12125550004", "1.2")):
        Did.objects.create(number=number, monthly_cost=D(cost), vendor=Vendor.objects.get(name="DID stock"))
    result = cli("did", "search", "--country", "US", "--area-code", "212")
    costs = [line.rsplit("\t", 1)[1] for line in result.output.splitlines() if line.startswith("+1212555000")]
    assert costs == ["0.35 USD", "0.50 USD", "0.00 USD", "1.20 USD"], result.output


def test_a_refused_delete_names_at_most_ten_protected_records_and_counts_the_rest(shop, admin_client) -> None:  # type: ignore[no-untyped-def]
    """Deleting an account with CDRs from the customer's page: refused, naming ten CDRs, not all."""
    account = Account.objects.create(customer=shop["mine"], name="trunk", kind="trunk", identifier="tr-9")
    Cdr.objects.bulk_create(
        Cdr(call_id=f"p{n}", callee="442079460000", start_time=T0, account=account, customer=shop["mine"])
        for n in range(25)
    )
    url = shop["url"]
    data = page_data(admin_client, url)
    row = next(k for k, v in data.items() if k.startswith("accounts-") and k.endswith("-id") and v == str(account.pk))
    data[row.replace("-id", "-DELETE")] = "on"
    response = admin_client.post(url, data)
    assert response.status_code == 200 and Account.objects.filter(pk=account.pk).exists()
    said = " ".join(str(e) for e in errors(response))
    assert "... and 15 more" in said, said[:3000]
    assert len(said) < 3000


def test_the_delete_page_names_at_most_ten_protecting_records(admin_client) -> None:  # type: ignore[no-untyped-def]
    plan = DidPlan.objects.create(name="Busy plan")
    Did.objects.bulk_create(Did(number=f"1201555{n:04d}", plan=plan) for n in range(25))
    page = admin_client.get(reverse("admin:dids_didplan_delete", args=[plan.pk])).content.decode()
    assert "protected related objects" in page and "... and 15 more" in page
    assert sum(f"1201555{n:04d}" in page for n in range(25)) == 10


def test_cdr_import_refuses_a_switch_that_is_no_pop(origination, cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    Pop.objects.create(name="pop-lon")
    csv = tmp_path / "in.csv"
    csv.write_text("call_id,callee,start_time,duration\nx1,442079460000,2026-03-02T10:00:00Z,61\n")
    result = cli("cdr", "import", str(csv), "--format", "tarifa", "--switch", "test1")
    said = " ".join(result.output.split())
    assert result.exit_code == 2 and "--switch 'test1' is refused: no POP has that name (known: 'pop-lon')" in said
    assert not Cdr.objects.exists()


@pytest.mark.parametrize("vectorised", [False, True])
def test_an_inbound_call_before_its_dids_activation_is_left_unrated(origination, vectorised: bool) -> None:  # type: ignore[no-untyped-def]
    did = Did.objects.get(number="12015550100")
    did.activation_date = T0.date()
    did.save()
    early = [
        inbound("e1", "12015550100", "+442079460000", minute=-11 * 60),  # the day before, 23:00 UTC
        inbound("e2", "5000", "+442079460000", minute=-11 * 60 + 1, did="+12015550100"),
    ]
    calls = [*early, *(inbound(f"ok{n}", "12015550100", "+442079460000", minute=n) for n in range(60))]
    got, _ = ingest_in_rollback(calls, vectorised=vectorised, batch_size=5000)
    by_call = {c["call_id"]: c for c in got["cdrs"].values()}
    for call_id in ("e1", "e2"):
        assert (by_call[call_id]["rating_status"], by_call[call_id]["unrated_reason"], by_call[call_id]["price"]) == (
            "unrated",
            NOT_ACTIVE_YET,
            D("0"),
        ), by_call[call_id]
    assert all(by_call[f"ok{n}"]["rating_status"] == "rated" and by_call[f"ok{n}"]["price"] for n in range(60))
    if vectorised:  # (below 50 CDRs a batch goes row by row)
        assert got["vectorised"] == 60


def test_both_paths_agree_on_calls_before_a_dids_activation(origination) -> None:  # type: ignore[no-untyped-def]
    did = Did.objects.get(number="12015550100")
    did.activation_date = T0.date()
    did.save()
    calls = [inbound(f"c{n}", "12015550100", "+442079460000", minute=n * 23 - 700) for n in range(80)]
    rows, _ = ingest_in_rollback(calls, vectorised=False, batch_size=5000)
    fast, _ = ingest_in_rollback(calls, vectorised=True, batch_size=5000)
    assert fast["vectorised"] > 0
    assert rows["cdrs"] == fast["cdrs"] and rows["transactions"] == fast["transactions"]
    assert {r["rating_status"] for r in rows["cdrs"].values()} == {"rated", "unrated"}
