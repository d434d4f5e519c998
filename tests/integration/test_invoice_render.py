"""Invoices rendered as PDF and CSV (issue 15), read back with the real poppler tools: pdftotext
for the words, pdftoppm for the pages as pictures, pdfimages for the logo. Also the white label
(issue 16: a reseller's name and logo on its customers' invoices) and the back-office downloads."""

from __future__ import annotations

import csv
import io
import subprocess
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from tarifa.billing.models import Invoice, InvoiceLine
from tarifa.billing.render import invoice_csv, invoice_pdf, money
from tarifa.billing.sample import sample_credit_note, sample_customer, sample_invoice, sample_logo, sample_operator
from tarifa.customers.models import Customer, IssuerProfile, ResellerBranding
from tests.factories import staff_user

pytestmark = pytest.mark.django_db

ROMASHKA = "\N{CYRILLIC CAPITAL LETTER O}" * 3 + " Ромашка"  # a Russian company (its O's are Cyrillic)
PERIOD = "1 Nov 2026 \N{EN DASH} 30 Nov 2026"


def pdf_text(data: bytes, tmp_path: Path) -> str:
    path = tmp_path / "invoice.pdf"
    path.write_bytes(data)
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True, text=True).stdout


def pdf_images(data: bytes, tmp_path: Path) -> list[tuple[int, int]]:
    """(width, height) of every picture in the PDF (pdfimages -list)."""
    path = tmp_path / "images.pdf"
    path.write_bytes(data)
    out = subprocess.run(["pdfimages", "-list", str(path)], check=True, capture_output=True, text=True).stdout
    rows = [line.split() for line in out.splitlines()[2:] if line.strip()]
    return [(int(r[3]), int(r[4])) for r in rows if r[2] == "image"]


@pytest.fixture
def sample(operator):  # type: ignore[no-untyped-def]
    """The documentation's sample: operator profile with a logo, a Polish customer, 48 destinations."""
    operator = sample_operator(operator.tariff)
    return sample_invoice(sample_customer(operator))


def test_a_two_page_invoice_reads_back_in_full(sample, tmp_path) -> None:  # type: ignore[no-untyped-def]
    data = invoice_pdf(sample)
    assert data.startswith(b"%PDF-")
    text = pdf_text(data, tmp_path)
    for expected in (
        "Nordlicht Telecom GmbH",  # the issuer profile, not the operator customer's company
        "Friedrichstraße 68",
        "Tax id: DE 123 456 789",
        "Café Łódź Callcenter Sp. z o.o.",  # non-ASCII customer name survives
        "Zofia Wiśniewska",
        f"Account code: {sample.customer.account_code}",
        "NT-2026-000123",
        PERIOD,
        "Due date",
        "30 Dec 2026",
        "Calls",
        "Services and fees",
        "Usage by location",
        "Discounts",
        "Penalties",
        "Taxes",
        "Usage — Łódź office",
        "IBAN DE89 3704 0044 0532 0130 00",
        "Page 1 of 2",
        "Page 2 of 2",
    ):
        assert expected in text, expected
    germany = InvoiceLine.objects.get(invoice=sample, description="Germany mobile")
    assert any(
        row.split()[:2] == ["Germany", "mobile"] and row.split()[2:] == ["7", "5.25", money(germany.amount, "EUR")]
        for row in text.splitlines()
    ), "calls line: destination, calls, minutes, amount"
    assert money(sample.total, "EUR") == "€1,479.11"
    assert "Total               €1,479.11" in text and "Amount due" in text
    assert "VAT                                                      23 %" in text
    assert text.count("Description") == 2, "the table header repeats on page 2"
    assert "Page 3" not in text

    pdf = tmp_path / "pages.pdf"
    pdf.write_bytes(data)
    subprocess.run(["pdftoppm", "-png", "-r", "40", str(pdf), str(tmp_path / "page")], check=True)
    pages = sorted(tmp_path.glob("page-*.png"))
    assert [p.name for p in pages] == ["page-1.png", "page-2.png"]
    assert all(p.read_bytes().startswith(b"\x89PNG") and p.stat().st_size > 10_000 for p in pages)
    assert pdf_images(data, tmp_path) == [(360, 110)], "the operator's logo"


def test_a_credit_note_names_the_invoice_it_corrects(sample, tmp_path) -> None:  # type: ignore[no-untyped-def]
    note = sample_credit_note(sample)
    text = pdf_text(invoice_pdf(note), tmp_path)
    assert "Credit note" in text
    assert "Corrects invoice" in text and "This credit note corrects invoice NT-2026-000123." in text
    assert "NT-2026-CN-0007" in text and "Amount credited" in text and "€40.00" in text
    assert "Credits and adjustments" in text and "Page 1 of 1" in text
    assert "Please pay" not in text


def test_the_amount_due_is_the_total_less_payments_and_credit_notes_and_a_paid_invoice_says_paid(
    operator, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    from tarifa.billing.models import InvoiceStatus, PaymentAllocation, Transaction

    customer = sample_customer(operator, company="Payer Co")
    invoice = sample_invoice(customer, number="PAY-1", destinations=1)
    Invoice.objects.filter(pk=invoice.pk).update(status=InvoiceStatus.ISSUED, total=Decimal("300.00"))
    invoice.refresh_from_db()
    payment = Transaction.objects.create(
        customer=customer, kind="payment", amount=Decimal(100), balance_after=Decimal(100), reference="CHK-1"
    )
    PaymentAllocation.objects.create(source=payment, invoice=invoice, amount=Decimal(100))
    Invoice.objects.create(
        customer=customer,
        kind="credit_note",
        credited_invoice=invoice,
        number="PAY-CN-1",
        period_start=invoice.period_start,
        period_end=invoice.period_end,
        currency=invoice.currency,
        status=InvoiceStatus.ISSUED,
        subtotal=Decimal("-50"),
        total=Decimal("-50"),
    )
    text = pdf_text(invoice_pdf(invoice), tmp_path)
    assert "Amount due" in text and money(Decimal(150), invoice.currency) in text.split("Amount due")[1]
    assert f"Please pay {money(Decimal(150), invoice.currency)}" in " ".join(text.split())
    assert ["amount due", "150.000000"] in list(csv.reader(io.StringIO(invoice_csv(invoice))))
    Invoice.objects.filter(pk=invoice.pk).update(status=InvoiceStatus.PAID)
    invoice.refresh_from_db()
    text = pdf_text(invoice_pdf(invoice), tmp_path)
    assert "Please pay" not in text and "Paid: nothing is left to pay on PAY-1" in text
    assert money(Decimal(0), invoice.currency) in text.split("Amount due")[1]


def test_a_reseller_invoice_shows_the_reseller_and_never_the_operator(operator, tmp_path) -> None:  # type: ignore[no-untyped-def]
    sample_operator(operator.tariff)
    reseller = Customer.objects.create(
        kind="reseller",
        parent=operator,
        name="R",
        company="Reseller Legal Name",
        web_username="resellerx",
        tariff=operator.tariff,
        email="r@r.example",
        phone="+12015550124",
        country="US",
        currency="EUR",
    )
    ResellerBranding.objects.create(
        reseller=reseller,
        display_name="Зелёная Связь",  # Cyrillic: the embedded font shows it
        address="Nevsky 1\nSaint Petersburg",
        logo=sample_logo(200, 64),
        logo_type="image/png",
        payment_instructions="Pay Зелёная Связь, account 4081 7810",
    )
    customer = sample_customer(reseller, company=ROMASHKA)
    invoice = sample_invoice(customer, number="GS-1", destinations=3, issuer=reseller)
    data = invoice_pdf(invoice)
    text = pdf_text(data, tmp_path)
    assert "Зелёная Связь" in text and "Nevsky 1" in text and ROMASHKA in text
    assert "Pay Зелёная Связь, account 4081 7810" in text
    assert "Nordlicht" not in text and "Friedrichstraße" not in text and "IBAN" not in text
    assert pdf_images(data, tmp_path) == [(200, 64)], "the reseller's logo, not the operator's"

    # A reseller without branding: its own company name and no logo, still not the operator's.
    ResellerBranding.objects.filter(reseller=reseller).delete()
    bare = invoice_pdf(invoice)
    text = pdf_text(bare, tmp_path)
    assert "Reseller Legal Name" in text and "Nordlicht" not in text
    assert pdf_images(bare, tmp_path) == []


def test_without_a_profile_the_operator_customer_issues(operator, tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert IssuerProfile.current() is None
    customer = sample_customer(operator, company="Plain Co")
    invoice = sample_invoice(customer, number="P-1", destinations=1)
    text = pdf_text(invoice_pdf(invoice), tmp_path)
    assert "Operator Co" in text and "op@example.com" in text and "Plain Co" in text


def test_the_csv_is_exact_and_runs_no_formula(operator) -> None:  # type: ignore[no-untyped-def]
    customer = sample_customer(operator, company="=cmd|'/C calc'!A0")
    invoice = Invoice.objects.create(
        customer=customer,
        number="C-1",
        period_start=date(2026, 11, 1),
        period_end=date(2026, 11, 30),
        currency="EUR",
        subtotal=Decimal("1.2345"),
        total=Decimal("1.2345"),
    )
    for section, description, amount in (
        ("calls", '=HYPERLINK("http://evil.example","x")', "1.2345"),
        ("adjustment", "@SUM(A1:A9)", "-1.00"),
        ("adjustment", "+1 goodwill", "1.00"),
    ):
        InvoiceLine.objects.create(
            invoice=invoice,
            section=section,
            description=description,
            calls=2 if section == "calls" else None,
            seconds=75 if section == "calls" else None,
            unit_price=Decimal(amount),
            amount=Decimal(amount),
        )
    invoice.refresh_from_db()
    text = invoice_csv(invoice)
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[:4] == [
        ["document", "Invoice"],
        ["number", "C-1"],
        ["issuer", "Operator Co"],
        ["customer", "'=cmd|'/C calc'!A0"],
    ]
    assert ["total", "1.234500"] in rows and ["amount due", "1.234500"] in rows
    header = ["section", "description", "calls", "seconds", "location", "quantity", "unit_price", "amount"]
    at = rows.index([*header, "tax_rate", "tax_base"])
    assert rows[at + 1 :] == [
        ["calls", '\'=HYPERLINK("http://evil.example","x")', "2", "75", "", "1.0000", "1.234500", "1.234500", "", ""],
        ["adjustment", "'@SUM(A1:A9)", "", "", "", "1.0000", "-1.000000", "-1.000000", "", ""],
        ["adjustment", "'+1 goodwill", "", "", "", "1.0000", "1.000000", "1.000000", "", ""],
    ]
    assert text.endswith("\r\n")


# --- back office -----------------------------------------------------------------------------------


@pytest.fixture
def small_invoice(operator):  # type: ignore[no-untyped-def]
    return sample_invoice(sample_customer(operator), number="B-1", destinations=2)


def test_downloads_need_the_view_permission(client, small_invoice) -> None:  # type: ignore[no-untyped-def]
    pdf_url = reverse("admin:billing_invoice_pdf", args=[small_invoice.pk])
    csv_url = reverse("admin:billing_invoice_csv", args=[small_invoice.pk])
    response = client.get(pdf_url)
    assert response.status_code == 302 and "/login/" in response["Location"]

    client.force_login(staff_user("clerk", "view_customer"))
    assert client.get(pdf_url).status_code == 403
    assert client.get(csv_url).status_code == 403

    client.force_login(staff_user("accountant", "view_invoice"))
    response = client.get(pdf_url)
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF-") and response["Content-Disposition"] == 'attachment; filename="B-1.pdf"'
    response = client.get(csv_url)
    assert response.status_code == 200 and response["Content-Type"] == "text/csv; charset=utf-8"
    assert response.content.decode().startswith("document,Invoice\r\nnumber,B-1\r\n")
    assert client.get(reverse("admin:billing_invoice_pdf", args=[small_invoice.pk + 999])).status_code == 404

    page = client.get(reverse("admin:billing_invoice_change", args=[small_invoice.pk])).content.decode()
    assert f'href="{pdf_url}"' in page and "Download PDF" in page and "Download CSV" in page
    listing = client.get(reverse("admin:billing_invoice_changelist")).content.decode()
    assert f'href="{csv_url}"' in listing


def test_api_downloads_are_scoped_to_the_tokens_subtree(client, operator, small_invoice) -> None:  # type: ignore[no-untyped-def]
    """PDF and CSV through the API: the invoice's customer and the operator above it get them; a
    customer beside it gets a 404 (never a 403), as for an invoice that does not exist."""
    from tarifa.api.models import ApiToken

    _t, mine = ApiToken.issue("mine", customer=small_invoice.customer)
    _t, above = ApiToken.issue("above", customer=operator)
    _t, beside = ApiToken.issue("beside", customer=sample_customer(operator))
    for fmt, content_type, start in (("pdf", "application/pdf", b"%PDF-"), ("csv", "text/csv; charset=utf-8", b"doc")):
        url = f"/api/v1/invoices/B-1/{fmt}"
        for token in (mine, above):
            response = client.get(url, HTTP_AUTHORIZATION=f"Bearer {token}")
            assert response.status_code == 200 and response["Content-Type"] == content_type
            assert response.content.startswith(start)
            assert response["Content-Disposition"] == f'attachment; filename="B-1.{fmt}"'
        assert client.get(url, HTTP_AUTHORIZATION=f"Bearer {beside}").status_code == 404
        assert client.get(f"/api/v1/invoices/B-2/{fmt}", HTTP_AUTHORIZATION=f"Bearer {mine}").status_code == 404
        assert client.get(url).status_code == 401


def test_logo_upload_is_checked_and_stored_in_the_database(client, operator) -> None:  # type: ignore[no-untyped-def]
    from django.core.files.uploadedfile import SimpleUploadedFile

    client.force_login(get_user_model().objects.create_superuser("boss", "boss@example.com", "Boss-pass1"))
    url = reverse("admin:customers_issuerprofile_add")
    data = {"name": "Acme Voice", "address": "1 Road", "email": "billing@acme.example"}
    gif = SimpleUploadedFile("logo.png", b"GIF89a" + b"\0" * 40, content_type="image/png")
    response = client.post(url, data | {"logo_upload": gif})
    assert response.status_code == 200
    assert "Logo 'logo.png' is refused: must be a PNG or JPEG picture" in response.content.decode().replace(
        "&#x27;", "'"
    )
    assert not IssuerProfile.objects.exists()

    logo = sample_logo(120, 40)
    response = client.post(url, data | {"logo_upload": SimpleUploadedFile("x.bin", logo)})
    assert response.status_code == 302
    profile = IssuerProfile.current()
    assert profile is not None and bytes(profile.logo) == logo and profile.logo_type == "image/png"
    page = client.get(reverse("admin:customers_issuerprofile_change", args=[1])).content.decode()
    assert 'src="data:image/png;base64,' in page
    assert client.get(url).status_code == 403, "one profile only"

    response = client.post(
        reverse("admin:customers_issuerprofile_change", args=[1]), data | {"name": "Acme", "remove_logo": "on"}
    )
    assert response.status_code == 302
    profile = IssuerProfile.current()
    assert profile is not None and profile.name == "Acme" and not profile.logo


def test_branding_belongs_to_a_reseller(client, operator) -> None:  # type: ignore[no-untyped-def]
    client.force_login(get_user_model().objects.create_superuser("boss", "boss@example.com", "Boss-pass1"))
    response = client.post(reverse("admin:customers_resellerbranding_add"), {"reseller": operator.pk})
    assert response.status_code == 200 and not ResellerBranding.objects.exists()


def test_the_sample_command_writes_the_pdf_and_its_first_page(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """``tarifa invoice-sample`` (run in this process: Django is set up already, so it builds the
    sample in the test database rather than its own temporary one)."""
    from typer.testing import CliRunner

    from tarifa.cli import app

    monkeypatch.setenv("TARIFA_DATABASE_URL", "sqlite:///unused")  # the command sets these; restored after
    monkeypatch.setenv("TARIFA_VAR_DIR", str(tmp_path))
    from tarifa.billing import sample_commands

    sample_commands.register(app)
    pdf, png, csv_file = tmp_path / "s" / "invoice.pdf", tmp_path / "i" / "invoice.png", tmp_path / "invoice.csv"
    result = CliRunner().invoke(app, ["invoice-sample", "--pdf", str(pdf), "--png", str(png), "--csv", str(csv_file)])
    assert result.exit_code == 0, result.output
    assert f"{png}: page 1 at 80 dpi" in result.output
    text = pdf_text(pdf.read_bytes(), tmp_path)
    assert "Account code: C7K2Q9XZ" in text and "Page 2 of 2" in text
    assert png.read_bytes().startswith(b"\x89PNG") and png.stat().st_size > 20_000
    assert csv_file.read_bytes().startswith(b"document,Invoice\r\nnumber,NT-2026-000123\r\n")


def test_brand_of_is_the_nearest_reseller_else_the_operator(operator) -> None:  # type: ignore[no-untyped-def]
    from tarifa.customers.branding import brand_of

    sample_operator(operator.tariff)
    reseller = Customer.objects.create(
        kind="reseller",
        parent=operator,
        name="R",
        company="Resell Co",
        web_username="resellery",
        tariff=operator.tariff,
        email="r@r.example",
        phone="+12015550124",
        country="US",
    )
    ResellerBranding.objects.create(reseller=reseller, display_name="Blue Phone", logo=sample_logo(64, 32))
    direct, white_label = sample_customer(operator), sample_customer(reseller)
    assert brand_of(direct).name == "Nordlicht Telecom GmbH" and brand_of(direct).logo == sample_logo()
    brand = brand_of(white_label)
    assert brand.name == "Blue Phone" and brand.logo == sample_logo(64, 32) and brand.email == "r@r.example"


def test_several_invoices_download_as_a_zip_of_csvs(client, operator) -> None:  # type: ignore[no-untyped-def]
    import zipfile

    customer = sample_customer(operator)
    first = sample_invoice(customer, number="Z-1", destinations=1)
    second = sample_invoice(customer, number="Z-2", destinations=1, period=(date(2026, 10, 1), date(2026, 10, 31)))
    url = reverse("admin:billing_invoice_changelist")
    data = {"action": "download_csvs", "_selected_action": [first.pk, second.pk]}

    client.force_login(staff_user("clerk", "view_customer"))
    assert client.post(url, data).status_code == 403

    client.force_login(staff_user("accountant", "view_invoice"))
    response = client.post(url, data)
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        assert sorted(archive.namelist()) == ["Z-1.csv", "Z-2.csv"]
        assert archive.read("Z-2.csv").decode() == invoice_csv(second)
