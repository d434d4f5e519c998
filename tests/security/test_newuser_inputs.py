"""Bad input a new-user trial of issue 14 got through (DIDs, imports, devices): each refused
naming the field, the value and the rule."""

from __future__ import annotations

import html
import io
import re
import zipfile
from decimal import Decimal

import openpyxl
import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from tarifa.core.dids import NumberRefused, parse_number
from tarifa.customers.models import SipDevice
from tarifa.dids.imports import ImportRejected
from tarifa.dids.imports import import_file as did_import
from tarifa.dids.lata import LataRejected, import_lata
from tarifa.dids.models import Did, DidPlan, NpaNxx, OriginRate
from tarifa.rating.decks import DeckRejected
from tarifa.rating.decks import import_file as deck_import
from tarifa.rating.models import Rate, Tariff
from tests.origination_world import plan_form
from tests.services_page import SIP, add_row, page_data

pytestmark = pytest.mark.django_db


def _did_form(number: str) -> dict[str, str]:
    return {
        "number": number,
        "monthly_cost": "0",
        "status": "available",
        "out_payment_rate": "0",
        "destination": "account",
    }


def test_the_did_add_form_checks_and_normalises_numbers_as_the_import_does(client, operator) -> None:  # type: ignore[no-untyped-def]
    client.force_login(get_user_model().objects.create_superuser("boss", "b@example.com", "Boss-pass1"))
    added = client.post(reverse("admin:dids_did_add"), _did_form("+1 201 555 0000"))
    assert added.status_code == 302, added.content.decode()[:3000]
    assert Did.objects.get(number="12015550000").area_code == "201"
    with pytest.raises(NumberRefused) as refused:
        parse_number("12345")
    response = client.post(reverse("admin:dids_did_add"), _did_form("12345"))
    assert response.status_code == 200
    page = html.unescape(response.content.decode())
    assert f"Number '12345' is refused: {refused.value}" in page
    assert not Did.objects.filter(number="12345").exists()


def test_a_new_did_with_an_invalid_number_is_refused_at_every_door() -> None:
    with pytest.raises(ValidationError) as refused:
        Did(number="12345").full_clean()
    assert "number" in refused.value.message_dict


def test_a_national_number_is_refused_with_the_hint_that_numbers_are_international() -> None:
    with pytest.raises(NumberRefused) as refused:
        parse_number("2125550196")
    assert "+212 (MA)" in str(refused.value) and "international (E.164), the country code first" in str(refused.value)


def _xlsx(rows: list[list[object]], cached: str | None = None) -> bytes:
    """A workbook; formula cells (text starting with ``=``) get the cached value ``cached`` when
    given (as Excel writes them), else none (as openpyxl and other programs write them)."""
    book = openpyxl.Workbook()
    for row in rows:
        book.active.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    if cached is None:
        return buffer.getvalue()
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as src, zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename.startswith("xl/worksheets/"):
                data = re.sub(
                    rb"(<f>[^<]*</f>)<v\s*/>|(<f>[^<]*</f>)<v></v>",
                    lambda m: (m.group(1) or m.group(2)) + b"<v>" + cached.encode() + b"</v>",
                    data,
                )
                assert b"<v>" + cached.encode() in data
            dst.writestr(item, data)
    return out.getvalue()


@pytest.mark.parametrize("cached", [None, "12125550430"])
def test_a_did_file_with_a_formula_number_is_refused_naming_row_and_column(operator, cached: str | None) -> None:  # type: ignore[no-untyped-def]
    data = _xlsx([["number", "monthly_cost"], ["+12125550431", "0.5"], ["=12125550430", "0.5"]], cached)
    with pytest.raises(ImportRejected) as caught:
        did_import(data, "stock.xlsx")
    [error] = caught.value.errors
    assert str(error).startswith("stock.xlsx line 3: number '=12125550430' is refused: cell A3 holds a formula")
    assert not Did.objects.exists()


def test_a_did_file_with_a_formula_amount_is_refused(operator) -> None:  # type: ignore[no-untyped-def]
    data = _xlsx([["number", "monthly_cost"], ["+12125550431", "=0.5*2"], ["+12125550432", "=1+1"]], "1")
    with pytest.raises(ImportRejected) as caught:
        did_import(data, "stock.xlsx")
    assert [str(e) for e in caught.value.errors] == [
        "stock.xlsx line 2: monthly_cost '=0.5*2' is refused: cell B2 holds a formula (2 formula cells in the "
        "sheet); formulas are not imported: type the values themselves (or paste them as values)"
    ]
    assert not Did.objects.exists()


@pytest.mark.parametrize("cached", [None, "0.02"])
def test_a_deck_with_a_formula_price_is_refused(cached: str | None) -> None:
    tariff = Tariff.objects.create(name="Formula deck")
    data = _xlsx([["prefix", "destination", "price_1"], [44, "UK", "=0.01*2"]], cached)
    with pytest.raises(DeckRejected) as caught:
        deck_import(tariff, data, "deck.xlsx")
    [error] = caught.value.errors
    assert (error.line, error.field, error.value) == (2, "price_1", "=0.01*2") and "holds a formula" in error.rule
    assert not Rate.objects.filter(tariff=tariff).exists()


@pytest.mark.parametrize("data", [b"", b"npa_nxx,lata,state\n", b"npa_nxx,lata,state\n\n,,\n"])
@pytest.mark.parametrize("replace", [False, True])
def test_a_lata_file_without_rows_is_refused_and_keeps_the_table(data: bytes, replace: bool) -> None:
    import_lata(b"npa_nxx,lata,state\n212555,132,NY\n201555,224,NJ\n", "seed.csv")
    with pytest.raises(LataRejected) as caught:
        import_lata(data, "header-only.csv", replace=replace)
    [problem] = caught.value.problems
    assert problem.field in ("file", "header") and ("has no rows" in problem.rule or "empty" in problem.rule)
    assert NpaNxx.objects.count() == 2


def test_the_lata_page_refuses_a_file_without_rows(client) -> None:  # type: ignore[no-untyped-def]
    import_lata(b"npa_nxx,lata,state\n212555,132,NY\n", "seed.csv")
    client.force_login(get_user_model().objects.create_superuser("boss", "b@example.com", "Boss-pass1"))
    upload = SimpleUploadedFile("header-only.csv", b"npa_nxx,lata,state\n")
    response = client.post(reverse("admin:dids_npanxx_lata_import"), {"file": upload, "replace": "on"})
    assert response.status_code == 200
    page = " ".join(re.sub(r"<[^>]+>", " ", response.content.decode()).split())
    assert "nothing was imported" in page and "header-only.csv whole file file has no rows" in page
    assert NpaNxx.objects.count() == 1


def test_a_non_negative_money_field_names_its_range_from_zero() -> None:
    # a rate without a cap of its own (plan fees are capped lower: FEE_MAX), so the column's range shows
    plan = DidPlan(name="Big", inbound_rate=Decimal("1e20"))
    with pytest.raises(ValidationError) as refused:
        plan.full_clean()
    [said] = refused.value.message_dict["inbound_rate"]
    assert "must be between 0 and 9223372036854.775807" in said and "-9223372036854" not in said


def test_the_short_call_mode_refusal_reads_as_a_field_name() -> None:
    with pytest.raises(ValidationError) as refused:
        DidPlan(name="P", short_call_mode="x").full_clean()
    assert refused.value.message_dict["short_call_mode"] == [
        "Short call penalty mode 'x' is refused: must be one of per_call, flat"
    ]


def test_a_repeated_origin_prefix_is_refused_naming_the_prefix(admin_client) -> None:  # type: ignore[no-untyped-def]
    plan = DidPlan.objects.create(name="Tiered", inbound_rate=Decimal("0.0100"))
    data = plan_form(plan, "44")
    data.update({"origin_rates-TOTAL_FORMS": "2", "origin_rates-1-prefix": "44", "origin_rates-1-rate": "0.0500"})
    refused = admin_client.post(reverse("admin:dids_didplan_change", args=[plan.pk]), data)
    assert refused.status_code == 200
    page = html.unescape(refused.content.decode())
    assert "Origin prefix '44' is refused: is listed twice: a plan has one origin rate per prefix" in page
    assert not OriginRate.objects.exists()
    data["origin_rates-1-toll_free"] = "on"  # the same prefix for toll-free numbers is another rate
    saved = admin_client.post(reverse("admin:dids_didplan_change", args=[plan.pk]), data)
    assert saved.status_code == 302 and OriginRate.objects.count() == 2


@pytest.mark.parametrize("data", [b"", b"number,vendor\n", b"number\n\n\n"])
def test_a_did_file_without_rows_says_so_without_a_line(operator, data: bytes) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ImportRejected) as caught:
        did_import(data, "stock.csv")
    assert [str(e) for e in caught.value.errors] == [
        "stock.csv: file 'stock.csv' is refused: has no rows: the first row names the columns "
        "(number, vendor, monthly_cost, plan, status), one number per row follows"
    ]


@pytest.mark.parametrize("extension", ["abc!", "10 1", "+101", "1" * 21])
def test_a_sip_device_extension_must_be_digits(world, extension: str) -> None:  # type: ignore[no-untyped-def]
    device = SipDevice(account=world["alice"], login="exttest", secret="Secret123xyzAB", extension=extension)
    with pytest.raises(ValidationError) as refused:
        device.full_clean()
    said = refused.value.message_dict["extension"]
    assert any(m.startswith("Extension ") and "is refused: must be 1 to 20 digits" in m for m in said), said
    device.extension = "101"
    device.full_clean()


def test_the_customer_page_refuses_a_sip_extension_that_is_not_digits(admin_client, shop) -> None:  # type: ignore[no-untyped-def]
    data = add_row(
        page_data(admin_client, shop["url"]),
        SIP,
        login="newsip",
        secret="Secret123xyzAB",
        account=shop["account"].pk,
        extension="abc!",
        status="active",
    )
    response = admin_client.post(shop["url"], data)
    assert response.status_code == 200
    assert "Extension &#x27;abc!&#x27; is refused: must be 1 to 20 digits" in response.content.decode()
    assert not SipDevice.objects.filter(login="newsip").exists()
