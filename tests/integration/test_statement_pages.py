"""Back-office statement (a "Statement" link on the customer's page) and aged receivables: staff
only, CSV export guarded against spreadsheet formulas."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse

from tarifa.billing.payments import add_money
from tarifa.core.payments import MoneyRequest
from tests.factories import staff_user, text
from tests.integration.payments_world import issued, make_payer

pytestmark = pytest.mark.django_db


@pytest.fixture
def payer(tariff, operator):  # type: ignore[no-untyped-def]
    return make_payer(tariff, operator)


@pytest.fixture
def clerk():  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(staff_user("clerk", "view_customer", "view_invoice", "view_transaction"))
    return client


def test_the_customer_page_links_its_statement_with_opening_and_closing(clerk, payer) -> None:
    add_money(payer, MoneyRequest("payment", Decimal("30"), "=HYPERLINK(1)"), actor="t")
    url = reverse("admin:customers_customer_statement", args=[payer.pk])
    assert url in clerk.get(reverse("admin:customers_customer_change", args=[payer.pk])).content.decode()
    page = clerk.get(url)
    assert page.status_code == 200
    shown = text(page)
    assert "Opening balance" in shown and "Closing balance" in shown and "30.000000" in shown
    csv = clerk.get(url, {"format": "csv"})
    assert csv["Content-Type"].startswith("text/csv")
    body = csv.content.decode()
    assert "'=HYPERLINK(1)" in body and ",30.00,30.00" in body  # the reference cannot run as a formula
    bad = clerk.get(url, {"from": "yesterday"})
    assert "From 'yesterday' is refused: must be a date as YYYY-MM-DD" in text(bad)


def test_the_statement_needs_the_ledger_permission_not_only_view_customer(payer) -> None:
    """Attack finding 3: staff who may only view customers cannot read their ledger."""
    add_money(payer, MoneyRequest("payment", Decimal("30"), "R-1"), actor="t")
    url = reverse("admin:customers_customer_statement", args=[payer.pk])
    nosy = Client()
    nosy.force_login(staff_user("nosy", "view_customer", "view_invoice"))
    assert nosy.get(url).status_code == 403
    assert nosy.get(url, {"format": "csv"}).status_code == 403
    assert url not in nosy.get(reverse("admin:customers_customer_change", args=[payer.pk])).content.decode()


def test_a_far_future_day_on_the_statement_page_is_refused_not_a_500(clerk, payer) -> None:
    """Attack finding 6."""
    url = reverse("admin:customers_customer_statement", args=[payer.pk])
    page = clerk.get(url, {"to": "9999-12-31"})
    assert page.status_code == 200
    assert "To '9999-12-31' is refused: must be between 2000-01-01 and 2999-12-31" in text(page)


def test_a_bad_parameter_on_the_customer_export_is_a_message_not_a_500(clerk, payer) -> None:
    """Attack finding 7: ``?format=0`` on the export page raised IncorrectLookupParameters (500)."""
    url = reverse("admin:customers_customer_export")
    response = clerk.get(url, {"format": "0"})
    assert response.status_code == 302 and response["Location"] == reverse("admin:customers_customer_changelist")
    shown = text(clerk.get(response["Location"]))
    assert "Export filter 'format=0' is refused: must be filters of this list" in shown
    assert clerk.get(url).status_code == 200  # without it, the export page as before


def test_receivables_page_and_csv_for_staff_only(clerk, payer) -> None:
    issued(payer, "INV-1", "100", date(2026, 1, 1))
    url = reverse("admin:billing_receivables")
    page = clerk.get(url, {"as_of": "2026-06-01"})
    assert page.status_code == 200 and "Payer Ltd" in text(page) and "100.000000" in text(page)
    csv = clerk.get(url, {"as_of": "2026-06-01", "format": "csv"}).content.decode().splitlines()
    assert csv[1].endswith(",USD,0.00,0.00,0.00,0.00,100.00,100.00")
    assert Client().get(url).status_code == 302  # no session: to the log-in page
    nosy = Client()
    nosy.force_login(staff_user("nosy", "view_customer"))
    assert nosy.get(url).status_code == 403
