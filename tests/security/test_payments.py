"""Who may add money (issue 11 item 6): only staff holding ``billing.add_payment`` (and allowed to
see the customer); everyone else is refused and nothing is posted."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from tarifa.billing.models import Transaction
from tarifa.customers.models import Customer

pytestmark = pytest.mark.django_db

PAYMENT = {"kind": "payment", "amount": "1000", "reference": "STOLEN-1", "reason": "free money"}


@pytest.fixture
def customer(tariff, operator):  # type: ignore[no-untyped-def]
    return Customer.objects.create(
        parent=operator,
        name="Vic Tim",
        company="Victim Ltd",
        web_username="victim1",
        tariff=tariff,
        email="victim@x.example",
        phone="+12015550123",
        country="US",
    )


def _staff(client: Client, *codenames: str) -> Client:
    user = get_user_model().objects.create_user("clerk", "clerk@example.com", "Clerk-pass1", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    client.force_login(user)
    return client


def _nothing_posted(customer: Customer) -> None:
    customer.refresh_from_db()
    assert customer.balance == 0 and not Transaction.objects.exists()


@pytest.mark.parametrize(
    "codenames",
    [
        ("view_customer", "change_customer"),  # may edit the customer, not add money
        ("add_payment",),  # may add money, not see this customer
        (),
    ],
)
def test_staff_without_the_permission_cannot_add_money(client, customer, codenames: tuple[str, ...]) -> None:
    staff = _staff(client, *codenames)
    url = reverse("admin:customers_customer_add_money", args=[customer.pk])
    assert staff.get(url).status_code == 403
    assert staff.post(url, PAYMENT).status_code == 403
    _nothing_posted(customer)


def test_the_action_is_not_offered_without_the_permission(client, customer) -> None:
    staff = _staff(client, "view_customer", "change_customer")
    page = staff.get(reverse("admin:customers_customer_change", args=[customer.pk]))
    assert page.status_code == 200
    assert reverse("admin:customers_customer_add_money", args=[customer.pk]) not in page.content.decode()


def test_anonymous_and_customer_logins_are_sent_to_the_login_page(client, customer) -> None:
    url = reverse("admin:customers_customer_add_money", args=[customer.pk])
    response = client.post(url, PAYMENT)
    assert response.status_code == 302 and "/login/" in response["Location"]
    portal_user = get_user_model().objects.create_user("victim1", "v@example.com", "Victim-pass1")  # not staff
    client.force_login(portal_user)
    response = client.post(url, PAYMENT)
    assert response.status_code == 302 and "/login/" in response["Location"]
    _nothing_posted(customer)


def test_a_payment_without_the_csrf_token_is_refused(customer) -> None:
    staff = _staff(Client(enforce_csrf_checks=True), "view_customer", "add_payment")
    response = staff.post(reverse("admin:customers_customer_add_money", args=[customer.pk]), PAYMENT)
    assert response.status_code == 403
    _nothing_posted(customer)


def test_the_transaction_add_page_stays_closed(client, customer) -> None:
    """Money moves only through the rule and the ledger, never by typing a Transaction row."""
    staff = _staff(client, "view_customer", "add_payment", "add_transaction", "view_transaction")
    assert staff.get(reverse("admin:billing_transaction_add")).status_code == 403
    assert (
        staff.post(
            reverse("admin:billing_transaction_add"),
            {
                "customer": customer.pk,
                "kind": "payment",
                "amount": "5",
                "balance_after": "5",
                "currency": "USD",
            },
        ).status_code
        == 403
    )
    _nothing_posted(customer)
    assert Decimal(0) == customer.balance


def test_another_customers_account_cannot_be_credited_from_this_customers_page(
    client, customer, tariff, operator
) -> None:
    from tarifa.customers.models import Account

    other = Customer.objects.create(
        parent=operator,
        name="Ot Her",
        company="Other Ltd",
        web_username="other1",
        tariff=tariff,
        email="other@x.example",
        phone="+12015550123",
        country="US",
    )
    theirs = Account.objects.create(customer=other, name="other-own", balance_mode="own")
    Account.objects.create(customer=customer, name="victim-own", balance_mode="own")  # the field is shown
    staff = _staff(client, "view_customer", "add_payment")
    response = staff.post(
        reverse("admin:customers_customer_add_money", args=[customer.pk]), {**PAYMENT, "account": str(theirs.pk)}
    )
    assert response.status_code == 200
    assert f"Balance &#x27;{theirs.pk}&#x27; is refused" in response.content.decode()
    theirs.refresh_from_db()
    assert theirs.balance == 0 and not Transaction.objects.exists()
