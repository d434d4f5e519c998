"""Attacks on rate decks and spreadsheet exports (issue 12 items 5, 10, 11; issue 11 item 10).

* formula injection: a caller or a deck destination such as ``=HYPERLINK(...)`` must never reach a
  spreadsheet as a formula, in any export (listings in CSV, TXT, XLSX, XLS; decks in CSV, XLSX);
* values a deck must refuse at the door with row, column and reason (control characters, amounts
  beyond their limit or their column);
* back-office deck pages fed nonsense (non-numeric ids, a workbook without a worksheet, a cell
  over 128 KiB) answer with a clear error, never a 500.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from decimal import Decimal

import openpyxl
import pytest
import xlrd
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from tarifa.exports import FORMATS
from tarifa.rating.decks import DeckRejected, export_deck, import_file
from tarifa.rating.models import Rate, Tariff

pytestmark = pytest.mark.django_db

EVIL = '=HYPERLINK("http://evil.example/","x")'
FORMULAS = [EVIL, "+1+cmd|' /C calc'!A0", "-2+3+cmd|' /C calc'!A0", "@SUM(1+1)*cmd|' /C calc'!A0", "'=already guarded?"]
T0 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)


@pytest.fixture
def boss(client):  # type: ignore[no-untyped-def]
    client.force_login(get_user_model().objects.create_superuser("boss", "b@example.com", "Boss-pass1"))
    return client


def _listing_export(client, url: str, title: str) -> bytes:  # type: ignore[no-untyped-def]

    index = [fmt().get_title().lower() for fmt in FORMATS].index(title)
    response = client.post(url, {"format": str(index), "resource": "0"})
    assert response.status_code == 200, response.content[:300]
    return b"".join(response.streaming_content) if response.streaming else response.content


def _cells(data: bytes, title: str) -> list[list[str]]:
    if title in ("csv", "txt"):
        return list(csv.reader(io.StringIO(data.decode("utf-8-sig")), delimiter="," if title == "csv" else "\t"))
    if title == "xls":
        sheet = xlrd.open_workbook(file_contents=data).sheet_by_index(0)
        return [[str(v) for v in sheet.row_values(i)] for i in range(sheet.nrows)]
    raise AssertionError(title)


# --- formula injection in listing exports ------------------------------------------------------------


@pytest.fixture
def evil_cdrs(db):  # type: ignore[no-untyped-def]
    from tarifa.cdrs.models import Cdr

    for n, caller in enumerate(FORMULAS):
        Cdr.objects.create(
            switch="sw",
            call_id=f"evil-{n}",
            caller=caller,
            callee="442079460958",
            start_time=T0,
            margin=Decimal("-0.5"),
            duration=60,
        )


def test_cdr_listing_xlsx_writes_formula_like_callers_as_text(boss, evil_cdrs) -> None:
    data = _listing_export(boss, reverse("admin:cdrs_cdr_export"), "xlsx")
    sheet = openpyxl.load_workbook(io.BytesIO(data)).active  # not data_only: formulas would show as such
    rows = list(sheet.iter_rows())
    header = [c.value for c in rows[0]]
    callers = [row[header.index("caller")] for row in rows[1:]]
    assert sorted(c.value for c in callers) == sorted(FORMULAS)  # exactly the stored text
    assert {c.data_type for c in callers} == {"s"}  # strings, never formulas ("f")
    assert all(cell.data_type != "f" for row in rows for cell in row)
    margins = [row[header.index("margin")].value for row in rows[1:]]
    assert all(isinstance(m, (int, float)) and m < 0 for m in margins)  # numbers stay numbers


@pytest.mark.parametrize("title", ["csv", "txt"])
def test_cdr_listing_text_exports_guard_formula_like_callers(boss, evil_cdrs, title: str) -> None:
    rows = _cells(_listing_export(boss, reverse("admin:cdrs_cdr_export"), title), title)
    header = rows[0]
    callers = sorted(row[header.index("caller")] for row in rows[1:])
    assert callers == sorted("'" + caller for caller in FORMULAS)
    assert all(cell[:1] not in ("=", "+", "@") for row in rows for cell in row)
    # A negative amount in a numeric column is a number, not a formula: left as it is.
    assert {row[header.index("margin")] for row in rows[1:]} == {"-0.500000"}


def test_cdr_listing_xls_keeps_text_as_text(boss, evil_cdrs) -> None:
    rows = _cells(_listing_export(boss, reverse("admin:cdrs_cdr_export"), "xls"), "xls")
    header = rows[0]
    assert sorted(row[header.index("caller")] for row in rows[1:]) == sorted(FORMULAS)


def test_listing_xlsx_export_survives_a_stored_control_character(boss) -> None:
    from tarifa.cdrs.models import Cdr

    Cdr.objects.create(switch="sw", call_id="ctl", caller="12\x0145", callee="442079460958", start_time=T0)
    data = _listing_export(boss, reverse("admin:cdrs_cdr_export"), "xlsx")
    sheet = openpyxl.load_workbook(io.BytesIO(data)).active
    values = [c for row in sheet.iter_rows(values_only=True) for c in row]
    assert "12\N{REPLACEMENT CHARACTER}45" in values


# --- formula injection in deck exports, which still round-trip exactly ------------------------------


DESTINATIONS = [EVIL, "+44 mobile", "-x", "@home", "'=quoted formula", "''=two quotes", "'s-Hertogenbosch", "-5"]


@pytest.fixture
def evil_deck(db):  # type: ignore[no-untyped-def]
    tariff = Tariff.objects.create(name="Vendor deck")
    for n, destination in enumerate(DESTINATIONS):
        Rate.objects.create(
            tariff=tariff, prefix=f"44{n}", destination=destination, price_1=Decimal("0.01"), price_n=Decimal("0.01")
        )
    return tariff


def test_deck_csv_export_guards_destinations_and_round_trips(evil_deck) -> None:
    data = export_deck(evil_deck, "csv")
    rows = list(csv.reader(io.StringIO(data.decode())))
    written = {row[0]: row[1] for row in rows[1:]}
    assert written["440"] == "'" + EVIL and written["441"] == "'+44 mobile" and written["443"] == "'@home"
    assert written["444"] == "''=quoted formula" and written["446"] == "'s-Hertogenbosch"  # not formula-like
    assert written["447"] == "-5"  # a number is no formula
    assert all(row[1][:1] not in ("=", "+", "-", "@") or row[1] == "-5" for row in rows[1:])
    copy = Tariff.objects.create(name="Copy")
    assert import_file(copy, data, "deck.csv").added == len(DESTINATIONS)
    assert sorted(copy.rates.values_list("destination", flat=True)) == sorted(DESTINATIONS)
    assert import_file(evil_deck, data, "deck.csv").unchanged == len(DESTINATIONS)


def test_deck_xlsx_export_writes_strings_and_round_trips(evil_deck) -> None:
    data = export_deck(evil_deck, "xlsx")
    sheet = openpyxl.load_workbook(io.BytesIO(data)).active
    cells = [cell for row in sheet.iter_rows(min_row=2) for cell in row]
    assert all(cell.data_type != "f" for cell in cells)
    assert sorted(row[1].value for row in sheet.iter_rows(min_row=2)) == sorted(DESTINATIONS)  # exact, no guard
    copy = Tariff.objects.create(name="Copy")
    assert import_file(copy, data, "deck.xlsx").added == len(DESTINATIONS)
    assert export_deck(copy, "xlsx") and export_deck(copy, "csv") == export_deck(evil_deck, "csv")


# --- values refused at the door, with row, column and reason ----------------------------------------


def _rejected(tariff, data: bytes, name: str = "deck.csv") -> list:  # type: ignore[no-untyped-def]
    with pytest.raises(DeckRejected) as exc:
        import_file(tariff, data, name)
    return exc.value.errors


@pytest.mark.parametrize("cell,position", [("UK\x00", 3), ("U\x01K", 2), ("UK\x7f", 3), ("U\x85K", 2), ("U\tK", 2)])
def test_control_characters_in_a_deck_are_refused(db, cell: str, position: int) -> None:
    tariff = Tariff.objects.create(name="Ctl")
    errors = _rejected(tariff, f"prefix,destination,price_1\n44,{cell},0.01\n".encode())
    assert [(e.line, e.field, e.value) for e in errors] == [(2, "destination", cell)]
    assert (
        errors[0].rule
        == f"must not contain control characters (U+{ord(cell[position - 1]):04X} at position {position})"
    )
    assert not Rate.objects.filter(tariff=tariff).exists()


def test_control_characters_in_any_deck_column_are_refused(db) -> None:
    tariff = Tariff.objects.create(name="Ctl2")
    errors = _rejected(tariff, b"prefix,destination,price_1,period\n4\x004,UK,0.0\x001,mon\x00\n")
    assert {(e.line, e.field) for e in errors} == {(2, "prefix"), (2, "price_1"), (2, "period")}
    assert all("control characters" in e.rule for e in errors)


def test_a_price_beyond_the_column_is_refused_not_a_traceback(db) -> None:
    tariff = Tariff.objects.create(name="Big")
    errors = _rejected(tariff, b"prefix,destination,price_1,post_call_surcharge\n44,UK,99999999999999,20000\n")
    assert {(e.line, e.field, e.value, e.rule) for e in errors} == {
        (2, "price_1", "99999999999999", "must be between 0 and 9223372036854.775807"),
        (2, "post_call_surcharge", "20000", "must be between 0 and 10000 %"),
    }


# --- back-office deck pages: a clear answer, never a 500 -------------------------------------------------


@pytest.mark.parametrize("name", ["deck_import", "deck_diff", "deck_export_csv", "deck_export_xlsx"])
@pytest.mark.parametrize("object_id", ["abc", "1x", "99999999"])
def test_deck_pages_with_a_bad_id_redirect_with_a_message(boss, name: str, object_id: str) -> None:
    for model in ("rating_tariff", "routing_destinationset"):
        response = boss.get(reverse(f"admin:{model}_{name}", args=[object_id]), follow=True)
        assert response.status_code == 200
        assert f"ID “{object_id}” doesn’t exist" in response.content.decode()


def _upload(client, tariff, name: str, data: bytes) -> str:  # type: ignore[no-untyped-def]
    url = reverse("admin:rating_tariff_deck_import", args=[tariff.pk])
    response = client.post(url, {"file": SimpleUploadedFile(name, data), "mode": "add"})
    assert response.status_code == 200
    return response.content.decode()


def _workbook_without_sheets() -> bytes:
    """A valid workbook whose sheet list is empty (as a script or another tool may write it)."""
    import re
    import zipfile

    book = openpyxl.Workbook()
    buffer = io.BytesIO()
    book.save(buffer)
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as src, zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "xl/workbook.xml":
                data = re.sub(rb"<sheets>.*</sheets>", b"<sheets/>", data)
            dst.writestr(item, data)
    return out.getvalue()


def test_xlsx_deck_without_a_worksheet(boss) -> None:
    tariff = Tariff.objects.create(name="No sheet")
    page = _upload(boss, tariff, "deck.xlsx", _workbook_without_sheets())
    assert "deck.xlsx" in page and "has no worksheet" in page and "nothing was imported" in page
    # A workbook holding only a chart sheet is refused as clearly.
    book = openpyxl.Workbook()
    book.create_chartsheet("chart")
    book.remove(book.active)
    buffer = io.BytesIO()
    book.save(buffer)
    page = _upload(boss, tariff, "chart.xlsx", buffer.getvalue())
    assert "chart.xlsx" in page and "nothing was imported" in page
    assert not Rate.objects.filter(tariff=tariff).exists()


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_deck_with_a_cell_over_128_kib(boss, fmt: str) -> None:
    tariff = Tariff.objects.create(name="Huge")
    huge = "A" * (128 * 1024 + 10)
    if fmt == "csv":
        data = f"prefix,destination,price_1\n44,{huge},0.01\n".encode()
    else:
        book = openpyxl.Workbook()
        book.active.append(["prefix", "destination", "price_1"])
        book.active.append(["44", huge, "0.01"])
        buffer = io.BytesIO()
        book.save(buffer)
        data = buffer.getvalue()
    page = _upload(boss, tariff, f"deck.{fmt}", data)
    # CSV: the reader's own limit, named; XLSX (which caps a cell at 32767 characters): the field's.
    expected = "has a cell over 131072 characters" if fmt == "csv" else "at most 100 characters (it has 32767)"
    assert "nothing was imported" in page and expected in page
    assert "A" * 100 not in page  # the value is named by its start, not repeated whole
    assert not Rate.objects.filter(tariff=tariff).exists()


def test_deck_export_of_a_stored_control_character_is_a_clear_error(boss) -> None:
    tariff = Tariff.objects.create(name="Old data")
    Rate.objects.bulk_create(
        [Rate(tariff=tariff, prefix="44", destination="UK\x01", price_1=Decimal("0.01"), price_n=Decimal("0.01"))]
    )
    response = boss.get(reverse("admin:rating_tariff_deck_export_xlsx", args=[tariff.pk]), follow=True)
    assert response.status_code == 200
    assert "must not contain control characters (U+0001 at position 3)" in response.content.decode()


# --- every listing export, every format ---------------------------------------------------------------


def test_every_listing_exports_in_every_format_without_formulas(boss, evil_cdrs, evil_deck) -> None:
    from django.contrib import admin
    from import_export.admin import ExportMixin

    titles = [fmt().get_title().lower() for fmt in FORMATS]
    assert titles == ["csv", "txt", "xlsx", "xls"]
    checked = 0
    for model, model_admin in admin.site._registry.items():
        if not isinstance(model_admin, ExportMixin):
            continue
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_export")
        for title in titles:
            data = _listing_export(boss, url, title)
            if title == "xlsx":
                cells = [c for row in openpyxl.load_workbook(io.BytesIO(data)).active.iter_rows() for c in row]
                assert all(c.data_type != "f" for c in cells), model
            elif title in ("csv", "txt"):
                assert all(cell[:1] not in ("=", "+", "@") for row in _cells(data, title) for cell in row), model
            checked += 1
    assert checked >= 4 * 10
