"""The invoice run renders and stores each issued invoice's PDF (issue 15); every download (back
office, portal, API) and the invoice e-mail serve the stored bytes; a PDF that fails is named and
rendered on first need, and never undoes the run. In this process (the run is inside the test's
transaction, so it renders here); worker processes are shown by the killed-run test of
test_invoicing.py, which runs the real command on a committed database."""

from __future__ import annotations

import hashlib
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from typer.testing import CliRunner

from tarifa.billing import pdfs
from tarifa.billing.models import Invoice, InvoicePdf
from tarifa.cli import _register_commands, app
from tarifa.customers.forms import set_web_access
from tests.integration import invoicing_world
from tests.integration.test_invoice_render import pdf_text

pytestmark = pytest.mark.django_db


def _run(*extra: str) -> Any:
    _register_commands()
    return CliRunner().invoke(app, ["invoice", "run", "--period", "2026-11", *extra])


@pytest.fixture
def issued(django_capture_on_commit_callbacks: Any) -> list[Invoice]:
    invoicing_world.build(3)
    with django_capture_on_commit_callbacks(execute=True):  # the invoice e-mails are queued
        out = _run()
    assert out.exit_code == 0, out.output
    invoices = list(Invoice.objects.order_by("number"))
    assert len(invoices) == 3 and "PDFs: 3 rendered and stored by this process" in out.output, out.output
    return invoices


def test_the_run_stores_the_pdf_of_every_invoice_it_issued(issued: list[Invoice], tmp_path: Path) -> None:
    stored = {p.invoice_id: p for p in InvoicePdf.objects.all()}
    assert set(stored) == {inv.pk for inv in issued}
    for invoice in issued:
        pdf = stored[invoice.pk]
        data = bytes(pdf.data)
        assert pdf.sha256 == hashlib.sha256(data).hexdigest()
        text = pdf_text(data, tmp_path)
        assert invoice.number in text and "Amount due" in text and invoice.customer.company in text
        assert pdf.amount_due is not None


def test_downloads_and_the_invoice_mail_serve_the_stored_bytes(
    issued: list[Invoice], monkeypatch: pytest.MonkeyPatch, smtp_server: Any
) -> None:
    from tarifa.api.models import ApiToken
    from tarifa.notices.sender import deliver

    invoice = issued[0]
    row = InvoicePdf.objects.get(invoice=invoice)
    marked = bytes(row.data) + b"%stored\n"  # bytes no renderer makes: whoever serves them read the store
    InvoicePdf.objects.filter(pk=row.pk).update(data=marked)

    def no_render(*_a: Any, **_k: Any) -> bytes:
        raise AssertionError("rendered again instead of served from the store")

    monkeypatch.setattr(pdfs, "_render", no_render)
    admin = Client()
    admin.force_login(get_user_model().objects.create_superuser("boss", "boss@example.com", "Boss-pass1"))
    assert admin.get(reverse("admin:billing_invoice_pdf", args=[invoice.pk])).content == marked
    _t, token = ApiToken.issue("mine", customer=invoice.customer)
    api = Client().get(f"/api/v1/invoices/{invoice.number}/pdf", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert api.status_code == 200 and api.content == marked
    set_web_access(invoice.customer, "Portal-pass1")
    portal = Client()
    assert portal.post("/portal/login/", {"username": invoice.customer.web_username, "password": "Portal-pass1"})
    response = portal.get(f"/portal/invoices/{invoice.pk}/invoice.pdf")
    assert response.status_code == 200 and response.content == marked
    assert deliver().sent == 3  # the run's invoice e-mails
    attached = {
        m["Subject"].split()[1].rstrip(":"): next(m.iter_attachments()).get_content() for m in smtp_server.wait_for(3)
    }
    assert attached[invoice.number] == marked


def test_a_stored_pdf_whose_amount_due_changed_is_rendered_again(issued: list[Invoice], tmp_path: Path) -> None:
    invoice = issued[0]
    before = InvoicePdf.objects.get(invoice=invoice)
    InvoicePdf.objects.filter(pk=before.pk).update(data=b"%PDF-stale", amount_due=before.amount_due + Decimal(1))
    data = pdfs.stored_pdf(invoice)  # the amount due shown no longer holds (as after a payment): new PDF
    after = InvoicePdf.objects.get(invoice=invoice)
    assert data != b"%PDF-stale" and bytes(after.data) == data and after.amount_due == before.amount_due
    assert after.sha256 == hashlib.sha256(data).hexdigest() and invoice.number in pdf_text(data, tmp_path)


def test_a_credit_note_gets_its_own_pdf(issued: list[Invoice], tmp_path: Path) -> None:
    from tarifa.services.invoicing import credit_invoice

    note = credit_invoice(issued[1].number, Decimal("1.50"), "goodwill")
    text = pdf_text(pdfs.stored_pdf(note), tmp_path)
    assert "Credit note" in text and note.number in text and issued[1].number in text
    assert InvoicePdf.objects.get(invoice=note).amount_due is None
    assert InvoicePdf.objects.filter(invoice=issued[1]).exists()  # the invoice keeps its own


def test_a_pdf_that_fails_is_named_and_the_run_stands(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    invoicing_world.build(3)
    render = pdfs._render

    def broken(invoice: Invoice, due: Decimal | None) -> bytes:
        if invoice.customer.web_username == "inv1":
            raise RuntimeError("font file unreadable")
        return render(invoice, due)

    monkeypatch.setattr(pdfs, "_render", broken)
    out = _run()
    assert out.exit_code == 0, out.output
    failed = Invoice.objects.get(customer__web_username="inv1")
    assert "3 invoice(s) issued" in out.output and Invoice.objects.count() == 3
    assert "PDFs: 2 rendered and stored by this process" in out.output and "1 failed" in out.output
    assert f"warning: PDF of invoice {failed.number} not rendered: RuntimeError: font file unreadable" in out.output
    assert InvoicePdf.objects.count() == 2 and not InvoicePdf.objects.filter(invoice=failed).exists()
    monkeypatch.setattr(pdfs, "_render", render)
    assert failed.number in pdf_text(pdfs.stored_pdf(failed), tmp_path)  # rendered on first need
    assert InvoicePdf.objects.filter(invoice=failed).exists()


def test_no_pdfs_with_zero_workers_and_a_bad_count_refused() -> None:
    invoicing_world.build(2)
    out = _run("--pdf-workers", "0")
    assert out.exit_code == 0 and "PDFs" not in out.output and InvoicePdf.objects.count() == 0, out.output
    assert Invoice.objects.count() == 2
    out = _run("--pdf-workers", "-1")
    assert out.exit_code == 2 and "PDF workers -1 is refused: must be a whole number from 0 to 256" in out.output
    assert Invoice.objects.count() == 2
