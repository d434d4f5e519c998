"""The invoice document (core.invoice_document): section order, subtotals, tax lines, minutes and
the CSV rows; and the logo checks (core.images)."""

from __future__ import annotations

import struct
import zlib
from datetime import date
from decimal import Decimal

import pytest

from tarifa.core.images import LOGO_MAX_BYTES, image_facts, logo_problem
from tarifa.core.invoice_document import (
    CSV_HEADER,
    DocLine,
    InvoiceDocument,
    Party,
    csv_rows,
    group_sections,
    minutes,
    tax_from_line,
)

D = Decimal


def line(section: str, amount: str, description: str = "x", **kw: object) -> DocLine:
    return DocLine(section, description, kw.pop("quantity", D(1)), kw.pop("unit_price", D(amount)), D(amount), **kw)  # type: ignore[arg-type]


def test_sections_come_in_the_invoice_order_with_their_subtotals() -> None:
    lines = [
        line("tax", "2"),
        line("services", "10"),
        line("calls", "1.25", "Germany"),
        line("services", "5.5"),
        line("calls", "0.75", "France"),
        line("mystery_box", "1"),
    ]
    sections = group_sections(lines)
    assert [s.key for s in sections] == ["calls", "services", "tax", "mystery_box"]
    assert [s.subtotal for s in sections] == [D("2.00"), D("15.5"), D(2), D(1)]
    assert [line.description for line in sections[0].lines] == ["Germany", "France"]  # stored order kept
    assert [s.title for s in sections] == ["Calls", "Services and fees", "Taxes", "Mystery box"]


def test_tax_lines_read_base_and_rate_back() -> None:
    vat = tax_from_line(line("tax", "23.00", "VAT", tax_rate=D("23.0000"), tax_base=D("100.00")))
    assert (vat.name, vat.rate, vat.base, vat.amount) == ("VAT", D(23), D("100.00"), D("23.00"))
    fixed = tax_from_line(line("tax", "1.50", "Regulatory fee"))
    assert (fixed.rate, fixed.base, fixed.amount) == (None, None, D("1.50"))


@pytest.mark.parametrize(("seconds", "shown"), [(None, None), (0, D("0.00")), (90, D("1.50")), (61, D("1.02"))])
def test_minutes_from_billed_seconds(seconds: int | None, shown: Decimal | None) -> None:
    assert minutes(seconds) == shown


def _doc(**kw: object) -> InvoiceDocument:
    base: dict[str, object] = dict(
        issuer=Party("Op"),
        customer=Party("Cust", account_code="C1"),
        kind="invoice",
        number="INV-9",
        status="issued",
        currency="EUR",
        issue_date=date(2026, 12, 1),
        period_start=date(2026, 11, 1),
        period_end=date(2026, 11, 30),
        due_date=None,
        sections=group_sections([line("calls", "1.250000", "Germany", calls=3, seconds=61)]),
        taxes=(),
        subtotal=D("1.250000"),
        discount=D(0),
        penalty=D(0),
        tax=D(0),
        total=D("1.250000"),
    )
    return InvoiceDocument(**(base | kw))  # type: ignore[arg-type]


def test_csv_rows_hold_exact_decimals_and_a_row_per_line() -> None:
    rows = csv_rows(_doc())
    assert rows[0] == ["document", "Invoice"]
    assert ["due date", ""] in rows and ["total", "1.250000"] in rows and ["amount due", "1.250000"] in rows
    at = rows.index(list(CSV_HEADER))
    assert rows[at - 1] == []
    assert rows[at + 1 :] == [["calls", "Germany", "3", "61", "", "1", "1.250000", "1.250000", "", ""]]


def test_csv_tax_lines_carry_their_rate_and_base() -> None:
    lines = [
        line("calls", "84.5301", "Germany"),
        line("tax", "16.906000", "VAT 20%", tax_rate=D("20.0000"), tax_base=D("84.530100")),
        line("tax", "1.50", "Regulatory fee"),
    ]
    rows = csv_rows(_doc(sections=group_sections(lines)))
    at = rows.index(list(CSV_HEADER))
    assert list(CSV_HEADER)[-2:] == ["tax_rate", "tax_base"]
    assert rows[at + 2] == ["tax", "VAT 20%", "", "", "", "1", "16.906000", "16.906000", "20", "84.530100"]
    assert rows[at + 3][-2:] == ["", ""]  # a fixed tax has neither


def test_a_credit_note_names_the_invoice_it_corrects() -> None:
    doc = _doc(kind="credit_note", credited_number="INV-1")
    assert doc.title == "Credit note"
    assert ["credits invoice", "INV-1"] in csv_rows(doc)


def png(width: int, height: int) -> bytes:
    raw = b"".join(b"\0" + b"\xff\xff\xff" * width for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def jpeg_header(width: int, height: int) -> bytes:
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0"
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + app0 + sof + b"\xff\xd9"


def test_image_facts_read_png_and_jpeg_headers() -> None:
    facts = image_facts(png(40, 20))
    assert facts is not None and (facts.kind, facts.width, facts.height) == ("png", 40, 20)
    facts = image_facts(jpeg_header(320, 100))
    assert facts is not None and (facts.content_type, facts.width, facts.height) == ("image/jpeg", 320, 100)
    assert image_facts(b"GIF89a\x10\x00\x10\x00") is None
    assert image_facts(b"\xff\xd8\xff\xda\x00\x08") is None  # a scan before any frame: broken
    assert image_facts(b"\x89PNG\r\n\x1a\n") is None


@pytest.mark.parametrize(
    ("data", "rule"),
    [
        (b"GIF89a" + b"\0" * 20, "must be a PNG or JPEG picture"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "must be a PNG or JPEG picture"),
        (png(5000, 20)[:33], "must be at most 2000 pixels wide and high (this one is 5000 × 20 pixels)"),
        (png(8, 40), "must be at least 16 pixels wide and high (this one is 8 × 40 pixels)"),
        (b"\x89PNG" + b"\0" * LOGO_MAX_BYTES, "must be at most 512 KB (this file has 524,292 bytes)"),
    ],
)
def test_logo_problems(data: bytes, rule: str) -> None:
    assert logo_problem(data) == rule


def test_a_fair_logo_passes() -> None:
    assert logo_problem(png(200, 60)) is None
    assert logo_problem(jpeg_header(300, 90)) is None
