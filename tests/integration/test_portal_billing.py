"""The portal's invoices, payments and low-balance notices through Django's test client: only the
customer's own invoices, transactions and methods (another's id is a 404), the models' own
refusals with the typed values kept, the customer's threshold in the home page's warning."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from django.test import Client

from tarifa.billing.models import AutoTopUp, Invoice, InvoiceLine, PaymentMethod
from tarifa.billing.payments import add_money
from tarifa.core.payments import MoneyRequest
from tarifa.customers.models import Customer
from tarifa.notices.models import NoticeSettings
from tests.integration import test_portal as base
from tests.integration.test_portal import _errors, _text

# the portal's fixtures (two customers, each with a portal log-in; the first one logged in)
portal = base.portal
client_in = base.client_in

pytestmark = pytest.mark.django_db


def _invoice(customer: Customer, number: str, total: str, **extra) -> Invoice:  # type: ignore[no-untyped-def]
    fields = {
        "customer": customer,
        "number": number,
        "period_start": date(2026, 1, 1),
        "period_end": date(2026, 1, 31),
        "due_date": date(2026, 2, 15),
        "subtotal": Decimal(total),
        "total": Decimal(total),
        "currency": customer.currency,
    }
    status = extra.pop("status", "issued")
    fields.update(extra)
    invoice = Invoice.objects.create(**fields)  # a draft: its lines may be added
    InvoiceLine.objects.create(
        invoice=invoice,
        section="calls",
        description=f"Calls of {number}",
        calls=3,
        seconds=180,
        unit_price=Decimal(total),
        amount=Decimal(total),
    )
    Invoice.objects.filter(pk=invoice.pk).update(status=status)
    invoice.refresh_from_db()
    return invoice


@pytest.fixture
def books(portal):  # type: ignore[no-untyped-def]
    me, other = portal["customer"], portal["other"]
    mine = _invoice(me, "INV-MINE-1", "25.00")
    note = _invoice(me, "CN-MINE-1", "-2.00", kind="credit_note", credited_invoice=mine, period_start=date(2026, 1, 2))
    draft = _invoice(
        me, "INV-DRAFT", "5.00", status="draft", period_start=date(2026, 2, 1), period_end=date(2026, 2, 28)
    )
    theirs = _invoice(other, "INV-THEIRS-1", "20.00")
    add_money(me, MoneyRequest("payment", Decimal("4.00"), "bank-mine-1", method="bank"), actor="test")
    add_money(other, MoneyRequest("payment", Decimal("7.00"), "bank-theirs-1", method="cash"), actor="test")
    my_card = PaymentMethod.objects.create(
        customer=me,
        gateway="http",
        token="pm_secret_mine",
        brand="visa",
        last4="4242",
        expiry_month=12,
        expiry_year=2030,
    )
    their_card = PaymentMethod.objects.create(
        customer=other,
        gateway="http",
        token="pm_secret_theirs",
        brand="amex",
        last4="0005",
        expiry_month=1,
        expiry_year=2031,
    )
    return {
        **portal,
        "mine": mine,
        "note": note,
        "draft": draft,
        "theirs_inv": theirs,
        "card": my_card,
        "their_card": their_card,
    }


def test_invoices_list_only_the_customers_own_with_paid_amounts(client_in, books) -> None:
    page = _text(client_in.get("/portal/invoices/"))
    assert "INV-MINE-1" in page and "CN-MINE-1" in page and "credit note for INV-MINE-1" in page
    assert "INV-THEIRS-1" not in page and "INV-DRAFT" not in page
    # paid: the allocations of the fixture's payment of 10 and the bank payment of 4
    assert '<td class="num">14.00</td>' in page
    view = _text(client_in.get(f"/portal/invoices/{books['mine'].pk}/"))
    assert "Calls of INV-MINE-1" in view and "Left to pay" in view and "11.00 USD" in view and "CN-MINE-1" in view
    assert "Pay now" not in view  # no card gateway configured


def test_invoice_pdf_and_csv_download(client_in, books) -> None:
    pdf = client_in.get(f"/portal/invoices/{books['mine'].pk}/invoice.pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF") and pdf["Content-Type"] == "application/pdf"
    csv = client_in.get(f"/portal/invoices/{books['mine'].pk}/invoice.csv")
    assert csv.status_code == 200 and "INV-MINE-1" in csv.content.decode()
    assert client_in.get(f"/portal/invoices/{books['mine'].pk}/invoice.xml").status_code == 404


def test_another_customers_invoice_and_a_draft_are_404(client_in, books) -> None:
    for invoice in (books["theirs_inv"], books["draft"]):
        for suffix in ("", "invoice.pdf", "invoice.csv"):
            url = f"/portal/invoices/{invoice.pk}/{suffix}"
            assert client_in.get(url).status_code == 404, url
        assert client_in.post(f"/portal/invoices/{invoice.pk}/pay/", {"method": books["card"].pk}).status_code == 404
    assert Client().get(f"/portal/invoices/{books['mine'].pk}/invoice.pdf").status_code == 302  # not logged in


def test_paying_without_a_gateway_charges_nothing(client_in, books) -> None:
    response = client_in.post(f"/portal/invoices/{books['mine'].pk}/pay/", {"method": books["card"].pk}, follow=True)
    assert "no payment gateway is configured" in _text(response)
    assert not books["mine"].allocations.filter(amount=Decimal("11.00")).exists()


def test_payment_history_and_methods_are_the_customers_own(client_in, books) -> None:
    page = _text(client_in.get("/portal/payments/"))
    assert "bank-mine-1" in page and "Bank" in page
    assert "bank-theirs-1" not in page and "7.00" not in page
    assert "4242" in page and "12/2030" in page and "visa" in page
    assert "0005" not in page and "pm_secret" not in page  # another's card; never a token


def test_auto_top_up_saved_and_refused_with_the_models_words(client_in, books) -> None:
    me = books["customer"]
    url = "/portal/payments/"
    response = client_in.post(url, {"enabled": "on", "threshold": "-5", "amount": "20", "method": ""})
    assert response.status_code == 400
    assert any(e.startswith("Top up below -5 is refused") for e in _errors(response)), _errors(response)
    assert 'value="-5"' in response.content.decode()  # what was typed is kept
    response = client_in.post(
        url, {"enabled": "on", "threshold": "5", "amount": "20", "method": books["their_card"].pk}
    )
    assert response.status_code == 400
    assert f"Method {books['their_card'].pk} is refused: must be one of your active saved payment methods" in _errors(
        response
    )
    assert not AutoTopUp.objects.filter(customer=me).exists()  # nothing stored
    response = client_in.post(url, {"enabled": "on", "threshold": "5", "amount": "20", "method": books["card"].pk})
    assert response.status_code == 302
    saved = AutoTopUp.objects.get(customer=me)
    assert (saved.enabled, saved.threshold, saved.amount, saved.method_id) == (True, 5, 20, books["card"].pk)


def test_auto_top_up_form_needs_csrf(books) -> None:
    client = Client(enforce_csrf_checks=True)
    client.post("/portal/login/", {"username": "cust", "password": "Portal-pass1"})
    assert client.post("/portal/payments/", {"threshold": "5", "amount": "20"}).status_code == 403


def test_low_balance_threshold_saved_and_used_by_the_home_warning(client_in, books) -> None:
    me = books["customer"]
    Customer.objects.filter(pk=me.pk).update(balance=Decimal("30"))
    assert "Low balance" not in _text(client_in.get("/portal/"))
    response = client_in.post("/portal/profile/", {"form": "notices", "low_balance_threshold": "-1", "emails": "a@b"})
    assert response.status_code == 400 and not NoticeSettings.objects.filter(customer=me).exists()
    assert any("Low-balance threshold -1 is refused" in e for e in _errors(response)), _errors(response)
    response = client_in.post(
        "/portal/profile/", {"form": "notices", "low_balance_threshold": "50", "emails": "bills@cust.example"}
    )
    assert response.status_code == 302
    stored = NoticeSettings.objects.get(customer=me)
    assert (stored.low_balance_threshold, stored.emails) == (Decimal(50), "bills@cust.example")
    home = _text(client_in.get("/portal/"))
    assert "Low balance" in home and "below your threshold of 50.00" in home
    assert 'value="bills@cust.example"' in client_in.get("/portal/profile/").content.decode()


@pytest.fixture
def fake(monkeypatch):  # type: ignore[no-untyped-def]
    from tests.fake_gateway import KEY, SECRET, FakeGateway, running

    with running(FakeGateway()) as gateway:
        monkeypatch.setenv("TARIFA_GATEWAY_URL", gateway.url)
        monkeypatch.setenv("TARIFA_GATEWAY_KEY", KEY)
        monkeypatch.setenv("TARIFA_GATEWAY_WEBHOOK_SECRET", SECRET)
        yield gateway


def test_pay_now_charges_the_servers_unpaid_amount_with_an_own_method(client_in, books, fake) -> None:
    from tarifa.billing import cards
    from tarifa.billing.gateway import HttpCardGateway
    from tests.fake_gateway import KEY, SECRET

    me, mine = books["customer"], books["mine"]
    card = cards.save_method(me, HttpCardGateway(fake.url, KEY, SECRET), "tok_visa_4242")
    url = f"/portal/invoices/{mine.pk}/pay/"
    assert "Pay now" in _text(client_in.get(f"/portal/invoices/{mine.pk}/"))
    refused = _text(client_in.post(url, {"method": books["their_card"].pk}, follow=True))
    assert f"Method '{books['their_card'].pk}' is refused: must be one of your active saved methods" in refused
    assert fake.charges == []
    paid = _text(client_in.post(url, {"method": card.pk, "amount": "0.01"}, follow=True))  # a sent amount is ignored
    assert [c["amount"] for c in fake.charges] == ["11.000000"]
    assert "Paid 11" in paid
    mine.refresh_from_db()
    assert mine.status == "paid"


@pytest.mark.parametrize("url", ["/portal/invoices/", "/portal/payments/"])
def test_the_new_pages_need_a_customer_log_in(portal, url: str) -> None:
    response = Client().get(url)
    assert response.status_code == 302 and response["Location"].startswith("/portal/login/?next=")


def test_pay_now_is_refused_while_viewing_as_the_customer(books, fake) -> None:  # type: ignore[no-untyped-def]
    """Attack finding F2: a staff user viewing as the customer could charge the customer's card."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    from tarifa.billing import cards
    from tarifa.billing.gateway import HttpCardGateway
    from tests.fake_gateway import KEY, SECRET

    me, mine = books["customer"], books["mine"]
    card = cards.save_method(me, HttpCardGateway(fake.url, KEY, SECRET), "tok_visa_4242")
    get_user_model().objects.create_superuser("boss", "boss@example.com", "Boss-pass1!")
    staff = Client()
    assert staff.login(username="boss", password="Boss-pass1!")
    assert staff.post(f"/portal/view-as/{me.pk}/").status_code == 302
    refused = _text(staff.post(f"/portal/invoices/{mine.pk}/pay/", {"method": card.pk}, follow=True))
    assert "Payments cannot be made while viewing as the customer" in refused
    assert fake.charges == []
    mine.refresh_from_db()
    assert mine.status != "paid"
