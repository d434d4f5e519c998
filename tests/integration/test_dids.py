"""The DID inventory on a real database: import (CSV, XLSX, all or nothing), search, assign,
release and quarantine, status changes, ordering from the inventory and from a fake provider."""

from __future__ import annotations

import io
from datetime import date, timedelta
from decimal import Decimal

import openpyxl
import pytest
from typer.testing import CliRunner

from tarifa.customers.models import Account
from tarifa.dids.imports import ImportRejected, import_file
from tarifa.dids.models import Did
from tarifa.dids.ordering import order_did
from tarifa.dids.providers import HttpDidProvider
from tarifa.dids.service import DidOptions, DidRefused, assign_did, find_did, release_did, search_dids, set_status
from tarifa.routing.models import Vendor
from tests.fake_did_provider import FakeProvider, running

pytestmark = pytest.mark.django_db

D = date(2026, 3, 10)
HEADER = "number,vendor,monthly_cost,plan,status\n"


@pytest.fixture
def world(did_buyer):  # type: ignore[no-untyped-def]
    other = Account.objects.create(customer=did_buyer["customer"], name="acme-other", kind="did")
    vendor = Vendor.objects.create(name="Carrier")
    return {"account": did_buyer["account"], "other": other, "vendor": vendor, "plan": did_buyer["plan"]}


def _csv(*lines: str) -> bytes:
    return (HEADER + "".join(line + "\n" for line in lines)).encode()


# --- import ---------------------------------------------------------------------------------------


def test_import_csv_adds_numbers_with_derived_country_and_area_code(world) -> None:
    result = import_file(_csv("+1 212 555 1234,Carrier,0.35,US local,", "442079460958,,,,porting"), "stock.csv")
    assert result.added == 2
    nyc = Did.objects.get(number="12125551234")
    assert (nyc.country, nyc.area_code, nyc.local_number, nyc.vendor, nyc.plan, nyc.monthly_cost, nyc.status) == (
        "US",
        "212",
        "5551234",
        world["vendor"],
        world["plan"],
        Decimal("0.35"),
        "available",
    )
    london = Did.objects.get(number="442079460958")
    assert (london.country, london.area_code, london.status, london.vendor) == ("GB", "20", "porting", None)


def test_import_xlsx(world) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["number", "vendor", "monthly_cost"])
    sheet.append(["+12125550001", "Carrier", 0.4])
    sheet.append([12125550002, None, None])  # a number typed as a number cell
    buffer = io.BytesIO()
    book.save(buffer)
    assert import_file(buffer.getvalue(), "stock.xlsx").added == 2
    assert Did.objects.get(number="12125550001").monthly_cost == Decimal("0.4")
    assert Did.objects.filter(number="12125550002", area_code="212").exists()


def test_a_file_with_any_bad_row_imports_nothing_and_names_each_error(world) -> None:
    Did.objects.create(number="12125550000")
    data = _csv(
        "12125551234,Carrier,0.35,,",  # 2 good
        "12125551234,,,,",  # 3 duplicate in the file
        "12125550000,,,,",  # 4 already stored
        "1212,,,,",  # 5 invalid number
        "12125551111,Nobody,,,",  # 6 unknown vendor
        "12125552222,,,Gold,",  # 7 unknown plan
        "12125553333,,abc,,",  # 8 bad amount
    )
    with pytest.raises(ImportRejected) as caught:
        import_file(data, "bad.csv")
    assert [(e.file, e.line, e.field) for e in caught.value.errors] == [
        ("bad.csv", 3, "number"),
        ("bad.csv", 4, "number"),
        ("bad.csv", 5, "number"),
        ("bad.csv", 6, "vendor"),
        ("bad.csv", 7, "plan"),
        ("bad.csv", 8, "monthly_cost"),
    ]
    assert str(caught.value.errors[3]) == "bad.csv line 6: vendor 'Nobody' is refused: no vendor has this name"
    assert list(Did.objects.values_list("number", flat=True)) == ["12125550000"]  # line 2 was not stored either


def test_a_broken_file_is_refused_with_its_name(world) -> None:
    with pytest.raises(ImportRejected) as caught:
        import_file(b"\xff\xfe not utf-8", "x.csv")
    assert str(caught.value.errors[0]).startswith("x.csv: file 'x.csv' is refused: is not UTF-8 text")
    with pytest.raises(ImportRejected, match="1 error"):
        import_file(b"PK\x03\x04 nonsense", "x.xlsx")
    with pytest.raises(ImportRejected) as empty:
        import_file(HEADER.encode(), "empty.csv")
    assert str(empty.value.errors[0]).startswith("empty.csv: file 'empty.csv' is refused: has no rows")


def test_cli_import_and_search(world, tmp_path, monkeypatch) -> None:
    from tarifa import cli as root
    from tarifa import config

    monkeypatch.setattr(config, "embedded_database", lambda: None)
    if not any(group.name == "did" for group in root.app.registered_groups):
        root._register_commands()
    bad = tmp_path / "bad.csv"
    bad.write_bytes(_csv("12125551234,Nobody,,,"))
    refused = CliRunner().invoke(root.app, ["did", "import", str(bad)])
    assert refused.exit_code == 2
    assert "bad.csv line 2: vendor 'Nobody' is refused: no vendor has this name" in refused.output
    good = tmp_path / "good.csv"
    good.write_bytes(_csv("12125551234,Carrier,,,", "12125559999,,,,", "12015551234,,,,"))
    assert CliRunner().invoke(root.app, ["did", "import", str(good)]).exit_code == 0
    found = CliRunner().invoke(
        root.app, ["did", "search", "--country", "US", "--area-code", "212", "--pattern", "555*"]
    )
    assert found.exit_code == 0, found.output
    assert "+12125551234" in found.output and "+12125559999" in found.output and "+12015551234" not in found.output
    wrong = CliRunner().invoke(root.app, ["did", "search", "--pattern", "5;DROP"])
    assert wrong.exit_code == 2 and "pattern '5;DROP' is refused" in wrong.output


# --- search ---------------------------------------------------------------------------------------


def test_search_by_country_area_code_and_pattern(world) -> None:
    for number in ("12125551234", "12125559876", "12025551234", "442079460958"):
        Did.objects.create(number=number)
    Did.objects.create(number="12125550000", status="quarantined", quarantine_until=D + timedelta(days=1))
    Did.objects.create(number="12125550001", status="quarantined", quarantine_until=D)  # ends today: sellable
    numbers = lambda **kw: [d.number for d in search_dids(on=D, **kw)]  # noqa: E731
    assert numbers(country="US", area_code="212") == ["12125550001", "12125551234", "12125559876"]
    assert numbers(country="us", pattern="555*") == ["12025551234", "12125550001", "12125551234", "12125559876"]
    assert numbers(pattern="*1234") == ["12025551234", "12125551234"]
    assert numbers(country="GB") == ["442079460958"]
    assert [d.number for d in search_dids(status="quarantined", on=D)] == ["12125550000"]
    with pytest.raises(DidRefused, match="country 'USA' is refused"):
        search_dids(country="USA")


# --- assign, release, quarantine ------------------------------------------------------------------


def test_assign_release_quarantine_and_sell_again(world) -> None:
    did = Did.objects.create(number="12125551234")
    assigned = assign_did(
        did,
        world["account"],
        world["plan"],
        D,
        DidOptions(
            mac_address="00:1A:2B:3C:4D:5E",
            username="acme1",
            password="Str0ng-secret-1",
            cost_center="NYC office",
            out_payment_rate=Decimal("0.005"),
        ),
        on=D,
    )
    assert (assigned.status, assigned.account, assigned.plan, assigned.activation_date) == (
        "assigned",
        world["account"],
        world["plan"],
        D,
    )
    assert Did.objects.get(pk=did.pk).password == "Str0ng-secret-1"

    with pytest.raises(DidRefused) as taken:
        assign_did(did, world["other"], world["plan"], D, on=D)
    assert (
        str(taken.value) == f"number '12125551234' is refused: cannot be assigned: it is assigned to {world['account']}"
    )

    released = release_did(did, D + timedelta(days=30), quarantine_days=60)
    assert (released.status, released.account, released.plan, released.quarantine_until) == (
        "quarantined",
        None,
        None,
        D + timedelta(days=90),
    )
    assert (released.password, released.username, released.mac_address, released.cost_center) == ("", "", "", "")

    with pytest.raises(DidRefused) as quarantined:
        assign_did(did, world["other"], world["plan"], on=D + timedelta(days=89))
    assert "it is quarantined after release until 2026-06-08 (available from that day)" in str(quarantined.value)
    assert search_dids(on=D + timedelta(days=89)).count() == 0
    assert list(search_dids(on=D + timedelta(days=90))) == [did]
    again = assign_did(did, world["other"], world["plan"], on=D + timedelta(days=90))
    assert (again.status, again.account, again.quarantine_until) == ("assigned", world["other"], None)


def test_release_uses_the_configured_quarantine(world, monkeypatch) -> None:
    did = assign_did(Did.objects.create(number="12125551234"), world["account"], world["plan"], D, on=D)
    monkeypatch.setenv("TARIFA_DID_QUARANTINE_DAYS", "7")
    assert release_did(did, D).quarantine_until == D + timedelta(days=7)


def test_release_refusals(world) -> None:
    did = Did.objects.create(number="12125551234")
    with pytest.raises(DidRefused, match="cannot be released: it is available"):
        release_did(did, D)
    assign_did(did, world["account"], world["plan"], D, on=D)
    with pytest.raises(DidRefused, match="must be on or after the activation date 2026-03-10"):
        release_did(did, D - timedelta(days=1))
    with pytest.raises(DidRefused, match="0 to 3650"):
        release_did(did, D, quarantine_days=5000)
    from tarifa.dids.models import VirtualNumber

    VirtualNumber.objects.create(number="201", primary_did=did, account=world["account"])
    with pytest.raises(DidRefused, match="it is the primary DID of the virtual numbers 201; move or remove them first"):
        release_did(did, D)
    assert Did.objects.get(pk=did.pk).status == "assigned"  # nothing changed


def test_assign_refuses_bad_optional_fields_and_changes_nothing(world) -> None:
    did = Did.objects.create(number="12125551234")
    with pytest.raises(DidRefused, match="MAC address 'nope' is refused"):
        assign_did(did, world["account"], world["plan"], D, DidOptions(mac_address="nope"), on=D)
    with pytest.raises(DidRefused, match=r"Password .* is refused"):
        assign_did(did, world["account"], world["plan"], D, DidOptions(password="short"), on=D)
    stored = Did.objects.get(pk=did.pk)
    assert (stored.status, stored.account, stored.password) == ("available", None, "")
    world["account"].status = "inactive"
    world["account"].save()
    with pytest.raises(DidRefused, match="is inactive"):
        assign_did(did, world["account"], world["plan"], D, on=D)


def test_status_changes_follow_the_transitions(world) -> None:
    did = Did.objects.create(number="12125551234")
    assert set_status(did, "porting").status == "porting"
    with pytest.raises(DidRefused) as caught:
        assign_did(did, world["account"], world["plan"], D, on=D)
    assert "it is being ported" in str(caught.value)
    assert set_status(did, "available").status == "available"
    assert set_status(did, "disabled").status == "disabled"
    with pytest.raises(DidRefused, match="a DID that is disabled can only become assigned, available, quarantined"):
        set_status(did, "porting")
    with pytest.raises(DidRefused, match="use assign or release"):
        set_status(did, "assigned")


def test_find_did_and_the_cli_assign_release(world, monkeypatch) -> None:
    from tarifa import cli as root
    from tarifa import config

    monkeypatch.setattr(config, "embedded_database", lambda: None)
    if not any(group.name == "did" for group in root.app.registered_groups):
        root._register_commands()
    Did.objects.create(number="12125551234")
    assert find_did("+1 (212) 555-1234").number == "12125551234"
    run = lambda *args: CliRunner().invoke(root.app, list(args))  # noqa: E731
    done = run(
        "did",
        "assign",
        "+12125551234",
        "--account",
        "acme-did",
        "--plan",
        "US local",
        "--activation-date",
        "2026-03-10",
        "--cost-center",
        "NYC",
    )
    assert done.exit_code == 0, done.output
    refused = run("did", "assign", "+12125551234", "--account", "acme-other", "--plan", "US local")
    assert refused.exit_code == 2 and f"it is assigned to {world['account']}" in refused.output
    unknown = run("did", "assign", "+12125551234", "--account", "nobody", "--plan", "US local")
    assert unknown.exit_code == 2 and "--account 'nobody' is refused" in unknown.output
    released = run("did", "release", "+12125551234", "--on", "2026-04-01", "--quarantine-days", "30")
    assert released.exit_code == 0 and "quarantined until 2026-05-01" in released.output


def test_a_release_date_after_today_is_refused(world) -> None:
    from tarifa.dids.service import today

    did = assign_did(Did.objects.create(number="12125551234"), world["account"], world["plan"], D, on=D)
    ahead = today() + timedelta(days=1)
    with pytest.raises(DidRefused) as refused:
        release_did(did, ahead)
    assert str(refused.value) == (
        f"release date '{ahead.isoformat()}' is refused: must not be after today ({today().isoformat()}); "
        "a number is released on the day it leaves, never ahead"
    )
    stored = Did.objects.get(pk=did.pk)
    assert (stored.status, stored.account) == ("assigned", world["account"])
    assert release_did(did, today()).status == "quarantined"


def _charged_through_november(world) -> Did:  # type: ignore[no-untyped-def]
    from tarifa.services.recurring import run_charges

    did = assign_did(Did.objects.create(number="12125551234"), world["account"], world["plan"], date(2026, 10, 1))
    run_charges(date(2026, 12, 1))  # October and November, in arrears
    return did


def test_a_release_inside_a_charged_period_is_refused_naming_the_first_allowed_day(world) -> None:
    did = _charged_through_november(world)
    with pytest.raises(DidRefused) as refused:
        release_did(did, date(2026, 11, 15))
    assert str(refused.value) == (
        "release date '2026-11-15' is refused: the number is already charged through 2026-11-30: "
        "release it on or after 2026-12-01"
    )
    assert Did.objects.get(pk=did.pk).account == world["account"]
    assert release_did(did, date(2026, 12, 1), quarantine_days=0).status == "quarantined"


def test_an_assignment_into_the_previous_owners_charged_days_is_refused(world) -> None:
    from tarifa.billing.models import ServiceCharge

    did = _charged_through_november(world)
    release_did(did, date(2026, 12, 1), quarantine_days=0)
    with pytest.raises(DidRefused) as refused:
        assign_did(did, world["other"], world["plan"], date(2026, 11, 20))
    assert refused.value.field == "activation_date"
    assert str(refused.value) == (
        "Activation date '2026-11-20' is refused: the number was charged to its previous owner through "
        "2026-11-30; the activation date must be 2026-12-01 or later"
    )
    assert Did.objects.get(pk=did.pk).status == "quarantined"
    again = assign_did(did, world["other"], world["plan"], date(2026, 12, 1))
    assert (again.account, again.activation_date) == (world["other"], date(2026, 12, 1))
    assert not ServiceCharge.objects.filter(account=world["other"]).exists()


def test_an_assigned_did_keeps_its_plan_and_activation_date(world) -> None:
    from django.core.exceptions import ValidationError

    did = assign_did(Did.objects.create(number="12125551234"), world["account"], world["plan"], D, on=D)
    did.plan, did.activation_date = None, None
    with pytest.raises(ValidationError) as refused:
        did.full_clean()
    assert refused.value.message_dict == {
        "plan": ["Plan (empty) is refused: an assigned DID needs a DID plan (its monthly fee and rates)"],
        "activation_date": ["Activation date (empty) is refused: an assigned DID needs the day its service starts"],
    }


def test_the_did_change_page_and_the_cli_refuse_what_the_rules_refuse(world, client, monkeypatch) -> None:
    from django.contrib.auth import get_user_model

    from tarifa import cli as root
    from tarifa import config
    from tests.factories import page_values, text

    did = _charged_through_november(world)
    client.force_login(get_user_model().objects.create_superuser("boss", "b@example.com", "Boss-pass1"))
    url = f"/admin/dids/did/{did.pk}/change/"
    data = page_values(client.get(url).context["adminform"].form)
    for change, message in (
        ({"plan": "", "activation_date": ""}, "Plan (empty) is refused: an assigned DID needs a DID plan"),
        (
            {"activation_date": "2026-10-02"},
            "Activation date '2026-10-02' is refused: charges were posted from 2026-10-01 for the activation date "
            "2026-10-01; release the number and assign it again",
        ),
    ):
        answer = client.post(url, {**data, **change})
        assert answer.status_code == 200 and message in text(answer)
    stored = Did.objects.get(pk=did.pk)
    assert (stored.plan, stored.activation_date) == (world["plan"], date(2026, 10, 1))

    monkeypatch.setattr(config, "embedded_database", lambda: None)
    if not any(group.name == "did" for group in root.app.registered_groups):
        root._register_commands()
    run = lambda *args: CliRunner().invoke(root.app, list(args))  # noqa: E731
    assert run("did", "release", "+12125551234", "--on", "2026-12-01", "--quarantine-days", "0").exit_code == 0
    refused = run(
        "did",
        "assign",
        "+12125551234",
        "--account",
        "acme-other",
        "--plan",
        "US local",
        "--activation-date",
        "2026-11-30",
    )
    assert refused.exit_code == 2, refused.output
    assert "the number was charged to its previous owner through 2026-11-30" in refused.output


def test_a_porting_number_that_keeps_its_account_can_be_released(world) -> None:
    did = assign_did(Did.objects.create(number="12125551234"), world["account"], world["plan"], D, on=D)
    porting = set_status(did, "porting")
    assert (porting.status, porting.account) == ("porting", world["account"])
    with pytest.raises(DidRefused, match="release it instead"):
        set_status(did, "available")
    released = release_did(did, D + timedelta(days=3), quarantine_days=0)
    assert (released.status, released.account) == ("quarantined", None)
    unowned = set_status(Did.objects.create(number="12125551235"), "porting")
    with pytest.raises(DidRefused, match="cannot be released: it is porting, not on an account"):
        release_did(unowned, D)


# --- ordering ---------------------------------------------------------------------------------------


def test_order_picks_from_the_inventory_first(world) -> None:
    Did.objects.create(number="12125551234")
    result = order_did(world["account"], world["plan"], country="US", area_code="212", use_provider=False, on=D)
    assert result.source == "inventory" and result.did.account == world["account"]
    with pytest.raises(DidRefused, match="no available number in the inventory, and the provider was not asked"):
        order_did(world["account"], world["plan"], country="US", area_code="212", use_provider=False, on=D)


def test_order_from_the_provider_when_the_inventory_has_none(world) -> None:
    with running(FakeProvider(["+12125550100", "+12125550101"])) as fake:
        provider = HttpDidProvider(fake.url, fake.token, timeout_seconds=5)
        result = order_did(world["account"], world["plan"], country="US", area_code="212", provider=provider, on=D)
    assert result.source == "provider"
    did = Did.objects.get(number="12125550100")
    assert (did.status, did.account, did.monthly_cost, did.area_code) == (
        "assigned",
        world["account"],
        Decimal("0.5"),
        "212",
    )
    assert fake.orders == ["+12125550100"] and fake.releases == []


@pytest.mark.parametrize("failure", ["refused", "timeout", "other number", "bad token", "nonsense"])
def test_a_failed_provider_order_leaves_nothing_half_assigned(world, failure: str) -> None:
    fake = FakeProvider(["+12125550100"])
    timeout = 5.0
    if failure == "refused":
        fake.refuse_orders = True
    elif failure == "timeout":
        fake.order_delay, timeout = 1.5, 0.5
    elif failure == "other number":
        fake.sell_instead = "+12125550999"
    elif failure == "nonsense":
        fake.search_answer = {"numbers": [{"number": "=HYPERLINK(1)", "monthly_cost": "x"}]}
    with running(fake):
        token = "wrong" if failure == "bad token" else fake.token
        provider = HttpDidProvider(fake.url, token, timeout_seconds=timeout)
        with pytest.raises(DidRefused) as caught:
            order_did(world["account"], world["plan"], country="US", area_code="212", provider=provider, on=D)
    assert not Did.objects.exists()  # no row in a wrong state
    message = str(caught.value)
    start = "country / area code 'US / 212' is refused: no available number in the inventory, and the provider"
    assert message.startswith(
        start
        if failure in ("bad token", "nonsense")
        else "number '12125550100' is refused: the order failed, nothing was assigned: the provider"
    ), message
    expected = {
        "refused": "HTTP 409 (number no longer available)",
        "timeout": "did not answer POST /orders within 0.5 s",
        "other number": "sold 12125550999 instead",
        "bad token": "HTTP 401",
        "nonsense": "the provider's number '=HYPERLINK(1)' is refused",
    }[failure]
    assert expected in message
    if failure in ("refused", "timeout"):
        assert fake.releases == ["+12125550100"]  # given back: we pay for nothing we did not assign
    if failure == "other number":
        assert fake.releases == ["+12125550999", "+12125550100"]


def test_a_provider_order_whose_assignment_fails_is_released(world) -> None:
    plan = world["plan"]
    with running(FakeProvider(["+12125550100"])) as fake:
        provider = HttpDidProvider(fake.url, fake.token, timeout_seconds=5)
        with pytest.raises(DidRefused, match="MAC address"):
            order_did(
                world["account"],
                plan,
                country="US",
                area_code="212",
                provider=provider,
                on=D,
                options=DidOptions(mac_address="bad"),
            )
    assert not Did.objects.exists()
    assert fake.orders == ["+12125550100"] and fake.releases == ["+12125550100"]


def test_the_configured_provider_comes_from_the_environment(world, monkeypatch) -> None:
    from tarifa import config
    from tarifa.dids.providers import configured_provider

    assert configured_provider() is None
    monkeypatch.setenv("TARIFA_DID_PROVIDER_URL", "ftp://x")
    with pytest.raises(config.ConfigError, match="TARIFA_DID_PROVIDER_URL 'ftp://x' is refused"):
        configured_provider()
    with running(FakeProvider(["+12125550100"])) as fake:
        monkeypatch.setenv("TARIFA_DID_PROVIDER_URL", fake.url)
        monkeypatch.setenv("TARIFA_DID_PROVIDER_TOKEN", fake.token)
        result = order_did(world["account"], world["plan"], country="US", area_code="212", on=D)
    assert result.source == "provider" and result.did.number == "12125550100"


# --- back office ------------------------------------------------------------------------------------


def test_back_office_import_assign_release_and_filters(world, client) -> None:
    from django.contrib.auth import get_user_model
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.urls import reverse

    client.force_login(get_user_model().objects.create_superuser("boss", "b@example.com", "Boss-pass1"))
    listing = reverse("admin:dids_did_changelist")
    assert b"Import DIDs" in client.get(listing).content
    upload = SimpleUploadedFile("stock.csv", _csv("+12125551234,Carrier,0.35,US local,", "+12025550000,,,,"))
    imported = client.post(reverse("admin:dids_did_did_import"), {"file": upload})
    assert imported.status_code == 302 and Did.objects.count() == 2
    filtered = client.get(listing, {"area_code": "212", "pattern": "555*", "sellable": "yes"}).content.decode()
    assert "12125551234" in filtered and "12025550000" not in filtered

    did = Did.objects.get(number="12125551234")
    assigned = client.post(
        reverse("admin:dids_did_did_assign", args=[did.pk]),
        {
            "account": world["account"].account_code,
            "plan": world["plan"].pk,
            "activation_date": "2026-03-10",
            "password": "Str0ng-secret-1",
            "cost_center": "NYC",
        },
    )
    assert assigned.status_code == 302, assigned.content[:500]
    did.refresh_from_db()
    assert (did.status, did.account, did.cost_center, did.password) == (
        "assigned",
        world["account"],
        "NYC",
        "Str0ng-secret-1",
    )
    released = client.post(
        reverse("admin:dids_did_did_release", args=[did.pk]), {"on": "2026-04-01", "quarantine_days": "10"}
    )
    assert released.status_code == 302
    did.refresh_from_db()
    assert (did.status, did.account, did.quarantine_until) == ("quarantined", None, date(2026, 4, 11))
    status = client.post(reverse("admin:dids_did_did_status", args=[did.pk]), {"status": "porting"})
    assert status.status_code == 302  # the quarantine ended on 2026-04-11: the number reads as available
    did.refresh_from_db()
    assert (did.status, did.quarantine_until) == ("porting", None)


def _at_once(*calls):  # type: ignore[no-untyped-def]
    """Run the calls in threads released together; each result or exception, in call order."""
    import threading

    from django.db import connection

    results: list[object] = [None] * len(calls)
    start = threading.Barrier(len(calls))

    def run(index: int) -> None:
        try:
            start.wait()
            results[index] = calls[index]()
        except Exception as exc:  # noqa: BLE001 - the test looks at whatever happened
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


_PG_ONLY = pytest.mark.skipif(
    __import__("django.db", fromlist=["connection"]).connection.vendor != "postgresql",
    reason="row locks between sessions: SQLite has one writer at a time (and the test database is in memory)",
)


@_PG_ONLY
@pytest.mark.django_db(transaction=True)
def test_two_people_assigning_one_number_at_once_get_one_assignment_and_one_reason(world) -> None:
    did = Did.objects.create(number="12125551234")
    results = _at_once(
        lambda: assign_did(did, world["account"], world["plan"], on=D),
        lambda: assign_did(did, world["other"], world["plan"], on=D),
    )
    won = [r for r in results if isinstance(r, Did)]
    lost = [r for r in results if isinstance(r, DidRefused)]
    assert len(won) == 1 and len(lost) == 1, results
    assert f"it is assigned to {won[0].account}" in str(lost[0])
    assert Did.objects.get(pk=did.pk).account == won[0].account


@_PG_ONLY
@pytest.mark.django_db(transaction=True)
def test_two_orders_at_once_get_two_different_numbers(world) -> None:
    Did.objects.create(number="12125551234")
    Did.objects.create(number="12125551235")
    results = _at_once(
        lambda: order_did(world["account"], world["plan"], country="US", area_code="212", use_provider=False, on=D),
        lambda: order_did(world["other"], world["plan"], country="US", area_code="212", use_provider=False, on=D),
    )
    numbers = sorted(r.did.number for r in results)  # type: ignore[union-attr]
    assert numbers == ["12125551234", "12125551235"], results
