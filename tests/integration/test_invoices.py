"""Invoices typed in the back office obey their arithmetic and life cycle (issue 11 item 12):
total = subtotal - discount + penalty + tax, line amount = quantity × unit price, subtotal = sum
of the lines, the period ends after it starts, and an issued invoice no longer changes."""

from __future__ import annotations

import html
from datetime import date
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.urls import reverse

from tarifa.billing.models import Invoice, InvoiceLine

pytestmark = pytest.mark.django_db


@pytest.fixture
def boss(client):  # type: ignore[no-untyped-def]
    client.force_login(get_user_model().objects.create_superuser("boss", "boss@example.com", "Boss-pass1"))
    return client


def form(customer, lines: list[tuple[str, str, str]] = (), **overrides: str) -> dict:  # type: ignore[no-untyped-def]
    data = {
        "customer": customer.pk,
        "number": "INV-1",
        "period_start": "2026-01-01",
        "period_end": "2026-01-31",
        "status": "draft",
        "kind": "invoice",
        "currency": "USD",
        "subtotal": "10",
        "discount": "0",
        "penalty": "0",
        "tax": "1",
        "total": "11",
        "lines-TOTAL_FORMS": str(len(lines)),
        "lines-INITIAL_FORMS": "0",
        "lines-MIN_NUM_FORMS": "0",
        "lines-MAX_NUM_FORMS": "1000",
    }
    for n, (quantity, unit_price, amount) in enumerate(lines):
        data |= {
            f"lines-{n}-description": f"line {n}",
            f"lines-{n}-section": "services",
            f"lines-{n}-quantity": quantity,
            f"lines-{n}-unit_price": unit_price,
            f"lines-{n}-amount": amount,
        }
    return data | overrides


def _post(boss, data: dict) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    response = boss.post(reverse("admin:billing_invoice_add"), data)
    return response.status_code, html.unescape(response.content.decode())


def test_a_consistent_invoice_is_saved(boss, operator) -> None:
    status, _ = _post(boss, form(operator, [("2", "2.5", "5"), ("1", "5", "5")]))
    assert status == 302
    invoice = Invoice.objects.get(number="INV-1")
    assert invoice.total == Decimal(11) and invoice.lines.count() == 2


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"total": "999"}, "Total 999 is refused: must be subtotal - discount + penalty + tax: 10 - 0 + 0 + 1 = 11"),
        (
            {"period_start": "2026-02-01", "period_end": "2026-01-01"},
            "Period end '2026-01-01' is refused: must not be before the period start 2026-02-01",
        ),
        ({"currency": "EUR"}, "Currency 'EUR' is refused: must be the customer's currency USD"),
        ({"discount": "-1", "total": "12"}, "Discount -1 is refused: must not be negative"),
        ({"tax": "-1", "total": "9"}, "Tax -1 is refused: must not be negative"),
    ],
)
def test_inconsistent_invoices_are_refused_naming_field_value_and_rule(
    boss, operator, data: dict, message: str
) -> None:
    status, page = _post(boss, form(operator, **data))
    assert status == 200
    assert message in page
    assert "Enter a valid date." not in page
    assert not Invoice.objects.exists()


def test_a_line_must_be_quantity_times_unit_price(boss, operator) -> None:
    status, page = _post(boss, form(operator, [("1", "5", "7")], subtotal="7", tax="0", total="7"))
    assert status == 200
    assert "Amount 7 is refused: must be quantity × unit price: 1 × 5 = 5" in page
    assert not Invoice.objects.exists() and not InvoiceLine.objects.exists()


def test_the_subtotal_is_the_sum_of_the_lines(boss, operator) -> None:
    status, page = _post(boss, form(operator, [("1", "5", "5")]))  # subtotal 10
    assert status == 200
    assert "Subtotal 10 is refused: must be the sum of the line amounts (5)" in page
    assert not Invoice.objects.exists()


def test_a_line_may_be_rounded_to_the_customers_billing_decimals(operator) -> None:
    invoice = Invoice.objects.create(
        customer=operator,
        number="INV-R",
        period_start=date(2026, 1, 1),
        period_end=date(2026, 1, 31),
        subtotal=Decimal("0.5"),
        total=Decimal("0.5"),
    )
    line = InvoiceLine(
        invoice=invoice,
        description="x",
        quantity=Decimal("1.5"),
        unit_price=Decimal("0.333333"),
        amount=Decimal("0.5000"),
    )  # 0.4999995 -> 0.5000 at 4 billing decimals
    line.full_clean()
    line.amount = Decimal("0.51")
    with pytest.raises(ValidationError, match=r"1.5 × 0.333333 = 0.500000, or 0.5000"):
        line.full_clean()


def _issued(operator) -> Invoice:  # type: ignore[no-untyped-def]
    invoice = Invoice.objects.create(
        customer=operator,
        number="INV-I",
        period_start=date(2026, 1, 1),
        period_end=date(2026, 1, 31),
        subtotal=Decimal(5),
        total=Decimal(5),
    )
    InvoiceLine.objects.create(
        invoice=invoice, description="calls", quantity=1, unit_price=Decimal(5), amount=Decimal(5)
    )
    invoice.status = "issued"
    invoice.full_clean()
    invoice.save()
    return invoice


def test_an_issued_invoice_changes_only_its_status_onwards(operator) -> None:
    invoice = _issued(operator)
    invoice.total = Decimal(6)
    with pytest.raises(ValidationError, match="Total 6 is refused: the invoice is issued and can no longer be changed"):
        invoice.full_clean()
    with pytest.raises(ValidationError):
        invoice.save()
    invoice.refresh_from_db()
    invoice.status = "draft"
    with pytest.raises(
        ValidationError, match="Status 'draft' is refused: an invoice that is issued may become paid or void"
    ):
        invoice.full_clean()
    invoice.status = "paid"
    invoice.full_clean()
    invoice.save()
    invoice.status = "void"
    with pytest.raises(ValidationError, match="an invoice that is paid may become issued"):
        invoice.save()
    assert Invoice.objects.get(pk=invoice.pk).status == "paid"


def test_an_issued_invoice_keeps_its_lines_and_is_not_deleted(operator) -> None:
    invoice = _issued(operator)
    line = invoice.lines.get()
    line.amount = Decimal(50)
    with pytest.raises(ValidationError, match="the invoice is issued"):
        line.save()
    with pytest.raises(ValidationError):
        line.delete()
    with pytest.raises(ValidationError):
        InvoiceLine.objects.create(invoice=invoice, description="extra", unit_price=Decimal(1), amount=Decimal(1))
    with pytest.raises(ValidationError, match="cannot be deleted"):
        invoice.delete()
    assert InvoiceLine.objects.get(pk=line.pk).amount == Decimal(5) and invoice.lines.count() == 1


def test_back_office_refuses_deleting_an_issued_invoice(boss, operator) -> None:
    invoice = _issued(operator)
    assert boss.post(reverse("admin:billing_invoice_delete", args=[invoice.pk]), {"post": "yes"}).status_code == 403
    draft = Invoice.objects.create(  # a draft: "Delete selected" is offered, and refuses the issued one
        customer=operator, number="DRAFT-1", period_start=date(2026, 2, 1), period_end=date(2026, 2, 28)
    )
    response = boss.post(
        reverse("admin:billing_invoice_changelist"),
        {"action": "delete_selected", "_selected_action": [invoice.pk, draft.pk], "post": "yes"},
    )
    assert response.status_code == 403
    assert Invoice.objects.filter(pk__in=[invoice.pk, draft.pk]).count() == 2  # all or nothing


def test_back_office_offers_no_delete_for_issued_invoices_and_credit_notes(boss, operator) -> None:
    """Neither the delete button nor the bulk "Delete selected" action is offered for issued
    invoices and credit notes (new-user finding #17); a draft can still be deleted."""
    from tarifa.services.invoicing import credit_invoice

    invoice = _issued(operator)
    note = credit_invoice(invoice.number, Decimal(1), "goodwill")
    changelist = reverse("admin:billing_invoice_changelist")
    page = boss.get(changelist).content.decode()
    assert invoice.number in page and note.number in page
    assert 'value="delete_selected"' not in page
    for doc in (invoice, note):
        change = boss.get(reverse("admin:billing_invoice_change", args=[doc.pk])).content.decode()
        assert doc.number in change
        assert reverse("admin:billing_invoice_delete", args=[doc.pk]) not in change
        assert boss.get(reverse("admin:billing_invoice_delete", args=[doc.pk])).status_code == 403
    draft = Invoice.objects.create(
        customer=operator, number="DRAFT-1", period_start=date(2026, 2, 1), period_end=date(2026, 2, 28)
    )
    assert 'value="delete_selected"' in boss.get(changelist).content.decode()
    change = boss.get(reverse("admin:billing_invoice_change", args=[draft.pk])).content.decode()
    assert reverse("admin:billing_invoice_delete", args=[draft.pk]) in change
    response = boss.post(changelist, {"action": "delete_selected", "_selected_action": [draft.pk], "post": "yes"})
    assert response.status_code == 302 and not Invoice.objects.filter(pk=draft.pk).exists()
    assert Invoice.objects.filter(pk__in=[invoice.pk, note.pk]).count() == 2


def test_back_office_moves_an_issued_invoice_to_paid_but_not_back_to_draft(boss, operator) -> None:
    invoice = _issued(operator)
    url = reverse("admin:billing_invoice_change", args=[invoice.pk])
    management = {
        "lines-TOTAL_FORMS": "1",
        "lines-INITIAL_FORMS": "1",
        "lines-MIN_NUM_FORMS": "0",
        "lines-MAX_NUM_FORMS": "1000",
        "lines-0-id": str(invoice.lines.get().pk),
        "lines-0-invoice": str(invoice.pk),
    }
    response = boss.post(url, {"status": "draft", **management})
    assert response.status_code == 200
    assert (
        "Status &#x27;draft&#x27; is refused: an invoice that is issued may become paid or void"
        in response.content.decode()
    )
    assert boss.post(url, {"status": "paid", **management}).status_code == 302
    assert Invoice.objects.get(pk=invoice.pk).status == "paid"


def test_a_second_invoice_for_the_same_period_is_refused_naming_fields_and_values(boss, operator) -> None:
    """User report 14: Django's "Invoice with this Customer, Period start and Period end already exists."."""
    assert _post(boss, form(operator, [("2", "2.5", "5"), ("1", "5", "5")]))[0] == 302
    status, page = _post(boss, form(operator, [("2", "2.5", "5"), ("1", "5", "5")], number="INV-2"))
    assert status == 200
    assert (
        f"Customer {operator}, Period start 2026-01-01, Period end 2026-01-31 is refused: another invoice "
        "already has the same customer, period start and period end"
    ) in page
    assert "already exists" not in page
    assert list(Invoice.objects.values_list("number", flat=True)) == ["INV-1"]
