"""Payments, credits, refunds and adjustments (issue 11 item 6): through the ledger, from the
back office and from ``tarifa payment add``, with one rule (core.payments) behind both."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.db.models import Sum
from django.urls import reverse
from typer.testing import CliRunner

from tarifa.billing.models import Transaction
from tarifa.billing.payments import add_money, cli_actor
from tarifa.core.payments import MoneyRequest, Refused
from tarifa.customers.models import Customer

pytestmark = pytest.mark.django_db


@pytest.fixture
def customer(tariff, operator):  # type: ignore[no-untyped-def]
    return Customer.objects.create(
        parent=operator,
        name="Pay Er",
        company="Payer Ltd",
        web_username="payer1",
        tariff=tariff,
        email="payer@x.example",
        phone="+12015550123",
        country="US",
        billing_type="prepaid",
    )


def _cli(*args: str):  # type: ignore[no-untyped-def]
    from tarifa import cli

    if not any(group.name == "payment" for group in cli.app.registered_groups):
        cli._register_commands()
    return CliRunner().invoke(cli.app, list(args))


def _ledger_is_whole(customer: Customer) -> None:
    customer.refresh_from_db()
    total = Transaction.objects.filter(customer=customer).aggregate(t=Sum("amount"))["t"] or Decimal(0)
    assert customer.balance == total


def test_a_payment_raises_the_balance_with_a_transaction_saying_who_and_why(customer) -> None:
    posted = add_money(customer, MoneyRequest("payment", Decimal("25.50"), "BANK-1", "wire"), actor="cli:ops")
    customer.refresh_from_db()
    assert customer.balance == Decimal("25.50")
    assert (posted.kind, posted.amount, posted.balance_after, posted.currency) == (
        "payment",
        Decimal("25.50"),
        Decimal("25.50"),
        "USD",
    )
    assert (posted.reference, posted.description, posted.actor) == ("BANK-1", "wire", "cli:ops")
    _ledger_is_whole(customer)


def test_each_kind_moves_the_balance_its_way_and_refunds_are_capped(customer) -> None:
    add_money(customer, MoneyRequest("payment", Decimal("30"), "P-1"), actor="t")
    add_money(customer, MoneyRequest("credit", Decimal("5"), "C-1", "outage goodwill"), actor="t")
    add_money(customer, MoneyRequest("adjustment", Decimal("-2"), "A-1", "manual correction"), actor="t")
    add_money(customer, MoneyRequest("refund", Decimal("10"), "R-1", "closing"), actor="t")
    customer.refresh_from_db()
    assert customer.balance == Decimal("23")
    # 30 paid, 10 refunded: at most 20 more may go back, although the balance is 23 (credit not cashed out)
    with pytest.raises(Refused, match=r"Amount '20.01' is refused: a refund must not exceed the payments not yet"):
        add_money(customer, MoneyRequest("refund", Decimal("20.01"), "R-2", "again"), actor="t")
    customer.refresh_from_db()
    assert customer.balance == Decimal("23") and not Transaction.objects.filter(reference="R-2").exists()
    _ledger_is_whole(customer)


def test_the_same_reference_is_refused_not_posted_twice(customer) -> None:
    add_money(customer, MoneyRequest("payment", Decimal("10"), "DUP"), actor="t")
    with pytest.raises(Refused, match=r"Reference 'DUP' is refused: already used by transaction"):
        add_money(customer, MoneyRequest("payment", Decimal("10"), "DUP"), actor="t")
    customer.refresh_from_db()
    assert customer.balance == Decimal("10")


def test_another_currency_is_refused(customer) -> None:
    with pytest.raises(Refused, match="Currency 'EUR' is refused: must be the customer's currency USD"):
        add_money(customer, MoneyRequest("payment", Decimal("10"), "EUR-1", currency="EUR"), actor="t")
    assert not Transaction.objects.exists()


def test_cli_payment_add_by_user_name_and_by_id(customer) -> None:
    done = _cli("payment", "add", "payer1", "12.34", "--reference", "CLI-1")
    assert done.exit_code == 0, done.output
    assert "payment +$12.3400 posted" in done.output and "balance now $12.3400" in done.output  # format_money
    posted = Transaction.objects.get(reference="CLI-1")
    assert posted.actor == cli_actor() and posted.actor.startswith("cli:") and posted.kind == "payment"
    done = _cli(
        "payment",
        "add",
        str(customer.pk),
        "-2",
        "--kind",
        "adjustment",
        "--reference",
        "CLI-2",
        "--reason",
        "typo in CLI-1",
    )
    assert done.exit_code == 0, done.output
    customer.refresh_from_db()
    assert customer.balance == Decimal("10.34")
    _ledger_is_whole(customer)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("nobody", "10", "--reference", "X"), "Customer 'nobody' is refused: no customer has this web user name"),
        (("payer1", "ten", "--reference", "X"), "Amount 'ten' is refused: must be a decimal number"),
        (("payer1", "-10", "--reference", "X"), "Amount '-10' is refused: a payment must be greater than 0"),
        (("payer1", "99999999999999", "--reference", "X"), "Amount '99999999999999' is refused: must be at most"),
        (("payer1", "10", "--kind", "gift", "--reference", "X"), "Kind 'gift' is refused: must be one of"),
        (("payer1", "10", "--kind", "refund", "--reference", "X"), "Reason (empty) is refused: required for a refund"),
        (
            ("payer1", "10", "--kind", "refund", "--reason", "r", "--reference", "X"),
            "Amount '10' is refused: a refund must not exceed the payments not yet refunded",
        ),
    ],
)
def test_cli_refusals_are_clear_errors_not_tracebacks(customer, args: tuple[str, ...], message: str) -> None:
    done = _cli("payment", "add", *args)
    assert done.exit_code == 2
    assert message in done.output
    assert "Traceback" not in done.output and isinstance(done.exception, SystemExit)
    assert not Transaction.objects.exists()


@pytest.fixture
def cashier(client):  # type: ignore[no-untyped-def]
    from django.contrib.auth.models import Permission

    user = get_user_model().objects.create_user("cashier", "c@example.com", "Cashier-pass1", is_staff=True)
    user.user_permissions.add(
        Permission.objects.get(codename="add_payment", content_type__app_label="billing"),
        Permission.objects.get(codename="view_customer"),
    )
    client.force_login(user)
    return client


def test_back_office_posts_a_payment_from_the_customer_page(cashier, customer) -> None:
    page = cashier.get(reverse("admin:customers_customer_change", args=[customer.pk]))
    url = reverse("admin:customers_customer_add_money", args=[customer.pk])
    assert page.status_code == 200 and url in page.content.decode()
    assert cashier.get(url).status_code == 200
    response = cashier.post(url, {"kind": "payment", "amount": "40", "reference": "ADM-1", "reason": ""})
    assert response.status_code == 302
    posted = Transaction.objects.get(reference="ADM-1")
    assert (posted.amount, posted.actor, posted.created_by.username) == (Decimal(40), "cashier", "cashier")
    customer.refresh_from_db()
    assert customer.balance == Decimal(40)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"kind": "payment", "amount": "", "reference": "A"}, "Amount (empty) is refused: required"),
        ({"kind": "payment", "amount": "1.2.3", "reference": "A"}, "Amount &#x27;1.2.3&#x27; is refused"),
        ({"kind": "payment", "amount": "0", "reference": "A"}, "must be greater than 0"),
        ({"kind": "credit", "amount": "5", "reference": "A"}, "Reason (empty) is refused: required for a credit"),
        ({"kind": "payment", "amount": "5", "reference": ""}, "Reference (empty) is refused: required"),
        ({"kind": "gift", "amount": "5", "reference": "A"}, "Kind &#x27;gift&#x27; is refused: must be one of"),
    ],
)
def test_back_office_refusals_name_field_value_and_rule(cashier, customer, data: dict, message: str) -> None:
    response = cashier.post(reverse("admin:customers_customer_add_money", args=[customer.pk]), data)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Transaction.objects.exists()


def test_back_office_takes_a_method_and_an_invoice_like_the_cli(cashier, customer) -> None:
    """newuser-findings #16: the form has the CLI's and the API's method and invoice fields, with
    the same refusals."""
    from datetime import date

    from tests.integration.payments_world import issued

    issued(customer, "INV-1", "30", date(2026, 2, 1))
    two = issued(customer, "INV-2", "20", date(2026, 3, 1))
    url = reverse("admin:customers_customer_add_money", args=[customer.pk])
    page = cashier.get(url).content.decode()
    assert 'name="method"' in page and 'name="invoice"' in page
    refused = {
        "bitcoin": "Method &#x27;bitcoin&#x27; is refused: must be one of bank, cash, cheque, card, other",
    }
    for method, message in refused.items():
        answer = cashier.post(url, {"kind": "payment", "amount": "5", "reference": "A", "method": method})
        assert answer.status_code == 200 and message in answer.content.decode()
    answer = cashier.post(url, {"kind": "payment", "amount": "5", "reference": "A", "invoice": "NOPE"})
    assert answer.status_code == 200 and "Invoice &#x27;NOPE&#x27; is refused: no invoice of" in answer.content.decode()
    assert not Transaction.objects.exists()
    done = cashier.post(
        url, {"kind": "payment", "amount": "20", "reference": "ADM-2", "method": "cheque", "invoice": "INV-2"}
    )
    assert done.status_code == 302
    posted = Transaction.objects.get(reference="ADM-2")
    assert posted.method == "cheque" and [a.invoice_id for a in posted.allocations.all()] == [two.pk]
    again = cashier.post(url, {"kind": "payment", "amount": "5", "reference": "ADM-3", "invoice": "INV-2"})
    assert "Invoice &#x27;INV-2&#x27; is refused: it is already paid" in again.content.decode()


def test_an_account_with_its_own_balance_is_credited_alone(customer, cashier) -> None:
    from tarifa.customers.models import Account

    own = Account.objects.create(customer=customer, name="payer-own", balance_mode="own")
    shared = Account.objects.create(customer=customer, name="payer-shared")
    done = _cli("payment", "add", "payer1", "15", "--account", own.account_code, "--reference", "OWN-1")
    assert done.exit_code == 0, done.output
    own.refresh_from_db()
    customer.refresh_from_db()
    assert (own.balance, customer.balance) == (Decimal(15), Decimal(0))
    assert Transaction.objects.get(reference="OWN-1").account_id == own.pk
    done = _cli("payment", "add", "payer1", "15", "--account", shared.name, "--reference", "OWN-2")
    assert done.exit_code == 2 and "Account 'payer-shared' is refused: shares the customer's balance" in done.output
    # the refund limit is the account's own: 15 paid to it, none to the customer
    with pytest.raises(Refused, match="payments not yet refunded"):
        add_money(customer, MoneyRequest("refund", Decimal(1), "R-C", "x"), actor="t")
    add_money(customer, MoneyRequest("refund", Decimal(5), "R-A", "x"), actor="t", account=own)
    response = cashier.post(
        reverse("admin:customers_customer_add_money", args=[customer.pk]),
        {"kind": "payment", "amount": "1", "reference": "OWN-3", "account": str(own.pk)},
    )
    assert response.status_code == 302
    own.refresh_from_db()
    assert own.balance == Decimal(11)
    total = Transaction.objects.filter(account=own).aggregate(t=Sum("amount"))["t"]
    assert total == own.balance


@pytest.mark.skipif(
    __import__("django.db").db.connection.vendor != "postgresql",
    reason="row locks between sessions: SQLite has one writer at a time",
)
@pytest.mark.django_db(transaction=True)
def test_concurrent_refunds_never_exceed_what_was_paid(customer) -> None:
    """The refund limit is read under the balance lock: two refunds of 60 against 100 paid at the
    same moment give one refund and one refusal, never a balance of -20."""
    import threading

    from django.db import connections

    add_money(customer, MoneyRequest("payment", Decimal(100), "PAID"), actor="t")
    start = threading.Barrier(2)
    outcomes: list[str] = []

    def refund(n: int) -> None:
        try:
            start.wait(10)
            add_money(customer.pk, MoneyRequest("refund", Decimal(60), f"REFUND-{n}", "race"), actor="t")
            outcomes.append("posted")
        except Refused:
            outcomes.append("refused")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=refund, args=(n,)) for n in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(outcomes) == ["posted", "refused"]
    _ledger_is_whole(customer)
    assert customer.balance == Decimal(40)


def test_the_ledger_backdates_a_posting_but_never_into_the_future(customer) -> None:
    """The demo's history needs postings at their own dates; a future one would distort today's
    spending limits, a naive one has no time zone."""
    from datetime import UTC, datetime, timedelta

    from django.db import transaction
    from django.utils import timezone

    from tarifa.billing import ledger

    then = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
    ledger.post_one(
        ledger.Posting(
            customer_id=customer.pk,
            amount=Decimal(3),
            kind="payment",
            reference="OLD",
            created_at=then,
            actor="history",
        )
    )
    posted = Transaction.objects.get(reference="OLD")
    assert (posted.created_at, posted.actor, posted.balance_after) == (then, "history", Decimal(3))
    for bad in (timezone.now() + timedelta(hours=1), datetime(2026, 1, 5, 12, 0)):
        with pytest.raises(ValueError, match="Posting time"), transaction.atomic():
            ledger.post(
                [
                    ledger.Posting(
                        customer_id=customer.pk, amount=Decimal(1), kind="payment", reference="BAD", created_at=bad
                    )
                ]
            )
    assert not Transaction.objects.filter(reference="BAD").exists()
    _ledger_is_whole(customer)
