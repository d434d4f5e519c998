"""Late fees and deposits in the database (issue 15): each penalty period and each month's interest or
adjustment posted once however often the jobs run, deposits posted and returned by hand with the house
refusals, through the CLI and the back office."""

from __future__ import annotations

import html
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.db.models import Sum
from django.urls import reverse
from typer.testing import CliRunner

from tarifa.billing import ledger
from tarifa.billing.deposits import move_deposit
from tarifa.billing.models import Deposit, Invoice, LateFeePolicy, Transaction
from tarifa.core.payments import Refused
from tarifa.customers.models import Customer
from tarifa.services.deposits import run_deposits
from tarifa.services.penalties import run_penalties

pytestmark = pytest.mark.django_db
D = Decimal


@pytest.fixture
def customer(tariff, operator):  # type: ignore[no-untyped-def]
    return Customer.objects.create(
        parent=operator,
        name="Late Payer",
        company="Late Ltd",
        web_username="late1",
        tariff=tariff,
        email="late@x.example",
        phone="+12015550123",
        country="US",
        billing_type="postpaid",
        billing_decimals=2,
    )


def _invoice(customer: Customer, number: str, due: date, total: str = "200.00", status: str = "issued") -> Invoice:
    return Invoice.objects.create(
        customer=customer,
        number=number,
        period_start=due - timedelta(days=45 + int(number.split("-")[1])),
        period_end=due - timedelta(days=16),
        issued_at=datetime.combine(due - timedelta(days=15), datetime.min.time(), tzinfo=UTC),
        due_date=due,
        status=status,
        currency="USD",
        subtotal=D(total),
        total=D(total),
    )


def _whole(customer: Customer) -> None:
    customer.refresh_from_db()
    total = Transaction.objects.filter(customer=customer).aggregate(t=Sum("amount"))["t"] or D(0)
    assert customer.balance == total


def test_a_late_fee_is_posted_once_per_invoice_and_month_while_overdue(operator, customer) -> None:
    LateFeePolicy.objects.create(operator=operator, currency="USD", percent=D("1.5"), fixed=D(5), grace_days=3)
    late = _invoice(customer, "INV-1", date(2026, 1, 10))
    _invoice(customer, "INV-2", date(2026, 1, 10), status="paid")
    _invoice(customer, "INV-3", date(2026, 1, 10), status="void")
    _invoice(customer, "INV-4", date(2026, 3, 1))  # not due yet on the dates below
    assert run_penalties(date(2026, 1, 13)).posted == 0  # within the grace days
    first = run_penalties(date(2026, 1, 14))
    assert (first.posted, first.amount) == (1, D("8.00"))  # 1.5% of 200 + 5
    assert run_penalties(date(2026, 1, 20)).posted == 0  # the same period again: nothing
    caught_up = run_penalties(date(2026, 2, 28))  # a month later (a worker that was down catches up)
    assert caught_up.posted == 1
    rows = Transaction.objects.filter(kind="penalty").order_by("reference")
    assert [(t.reference, t.amount) for t in rows] == [
        (f"penalty:invoice:{late.pk}:1", D("-8.00")),
        (f"penalty:invoice:{late.pk}:2", D("-8.00")),
    ]
    assert "Late fee on invoice INV-1" in rows[0].description
    _whole(customer)


def test_no_policy_or_another_currency_posts_nothing(operator, customer) -> None:
    _invoice(customer, "INV-9", date(2026, 1, 10))
    assert run_penalties(date(2026, 6, 1)).posted == 0
    LateFeePolicy.objects.create(operator=operator, currency="EUR", percent=D(2), fixed=D(0))
    assert run_penalties(date(2026, 6, 1)).posted == 0


def _cli(*args: str):  # type: ignore[no-untyped-def]
    from tarifa import cli

    if not any(group.name == "penalties" for group in cli.app.registered_groups):
        cli._register_commands()
    return CliRunner().invoke(cli.app, list(args))


def test_cli_penalties_run_and_its_refusals(operator, customer) -> None:
    LateFeePolicy.objects.create(operator=operator, currency="USD", percent=D(0), fixed=D(10))
    _invoice(customer, "INV-5", date(2026, 1, 10))
    ran = _cli("penalties", "run", "--date", "2026-01-11")
    assert ran.exit_code == 0 and "1 penalty(ies) posted, total 10.00" in ran.output, ran.output
    assert _cli("penalties", "run", "--date", "2026-01-11").output.count("0 penalty(ies) posted") == 1
    bad = _cli("penalties", "run", "--date", "11/01/2026")
    assert bad.exit_code == 2 and "--date '11/01/2026' is refused: must be a date as YYYY-MM-DD" in bad.output
    future = _cli("penalties", "run", "--date", "2999-01-01")
    assert future.exit_code == 2 and "must not be after today" in future.output


def test_the_worker_runs_the_late_fees(operator, customer) -> None:
    LateFeePolicy.objects.create(operator=operator, currency="USD", percent=D(1), fixed=D(0), max_periods=1)
    _invoice(customer, "INV-6", date(2026, 1, 10))
    ran = _cli("worker", "--once")
    assert ran.exit_code == 0 and "posted 1 penalty(ies), total 2.00" in ran.output, ran.output
    assert "late fees and deposits: nothing due" in _cli("worker", "--once").output


def test_deposits_by_hand_move_the_balance_and_what_is_held(customer) -> None:
    posted = move_deposit(customer, "post", D(100), reference="DEP-1", actor="t")
    assert (posted.kind, posted.amount) == ("deposit", D(-100))
    move_deposit(customer, "return", D(30), reference="DEP-2", reason="usage fell", actor="t")
    assert Deposit.objects.get(customer=customer).held == D(70)
    customer.refresh_from_db()
    assert customer.balance == D(-70)
    for args, message in [
        (("return", D(71), "DEP-3"), "Amount 71 is refused: must be at most the deposit held (70.00)"),
        (("post", D(-5), "DEP-3"), "Amount -5 is refused: must be above 0"),
        (("post", D("1.001"), "DEP-3"), "Amount 1.001 is refused: must have at most 2 decimal places"),
        (("post", D(5), "DEP-1"), "Reference 'DEP-1' is refused: already used by transaction"),
        (("post", D(5), "deposit-interest:1:2026-01"), "must not start with deposit-interest:"),
        (("post", D(5), "deposit-adjust:1:2026-01"), "must not start with deposit-adjust:"),
    ]:
        action, amount, ref = args
        with pytest.raises(Refused) as refused:
            move_deposit(customer, action, amount, reference=ref, actor="t")
        assert message in str(refused.value)
    assert Deposit.objects.get(customer=customer).held == D(70)
    _whole(customer)


def test_cli_deposit_post_and_return(customer) -> None:
    ok = _cli("deposit", "post", "late1", "50.00", "--reference", "D-1")
    assert ok.exit_code == 0 and "deposit held 50.00" in ok.output, ok.output
    too_much = _cli("deposit", "return", "late1", "60", "--reference", "D-2")
    assert too_much.exit_code == 2 and "Amount 60 is refused: must be at most the deposit held (50" in too_much.output
    malformed = _cli("deposit", "post", "late1", "1e3", "--reference", "D-3")
    assert malformed.exit_code == 2 and "Amount '1e3' is refused" in malformed.output
    back = _cli("deposit", "return", "late1", "20", "--reference", "D-4")
    assert back.exit_code == 0 and Deposit.objects.get(customer=customer).held == D(30)


def test_interest_is_credited_once_per_whole_month(customer) -> None:
    then = datetime(2026, 1, 1, 9, tzinfo=UTC)
    move_deposit(customer, "post", D(1000), reference="DEP-I", actor="t", since=date(2026, 1, 1), created_at=then)
    Deposit.objects.filter(customer=customer).update(interest_rate=D("3.65"))
    first = run_deposits(date(2026, 3, 5))  # January and February are whole
    assert (first.interest_posted, first.interest) == (2, D("5.90"))  # 31 × 0.10 + 28 × 0.10
    assert run_deposits(date(2026, 3, 20)).interest_posted == 0
    refs = sorted(
        Transaction.objects.filter(reference__startswith="deposit-interest:").values_list("reference", flat=True)
    )
    assert refs == [f"deposit-interest:{customer.pk}:2026-01", f"deposit-interest:{customer.pk}:2026-02"]
    assert Deposit.objects.get(customer=customer).held == D(1000)  # interest is paid out, not held
    _whole(customer)


def test_the_deposit_follows_usage_once_a_month(customer) -> None:
    customer_created = datetime(2025, 12, 1, tzinfo=UTC)
    Customer.objects.filter(pk=customer.pk).update(created_at=customer_created)
    customer.refresh_from_db()
    Deposit.objects.create(
        customer=customer, since=date(2026, 1, 1), auto_adjust=True, months=D(2), lookback=3, threshold=D(10)
    )
    with __import__("django.db", fromlist=["transaction"]).transaction.atomic():
        for month, amount in [(1, "100"), (2, "200"), (3, "300")]:
            ledger.post(
                [
                    ledger.Posting(
                        customer.pk,
                        D(f"-{amount}"),
                        "call_charge",
                        f"use-{month}",
                        created_at=datetime(2026, month, 10, tzinfo=UTC),
                    )
                ]
            )
    up = run_deposits(date(2026, 4, 2))
    assert (up.requested, up.released, up.failed) == (D(400), D(0), [])  # 2 × average(100, 200, 300)
    assert Deposit.objects.get(customer=customer).held == D(400)
    assert run_deposits(date(2026, 4, 20)).requested == 0  # once a month
    with __import__("django.db", fromlist=["transaction"]).transaction.atomic():
        ledger.post(
            [
                ledger.Posting(
                    customer.pk, D("-30"), "call_charge", "use-4", created_at=datetime(2026, 4, 10, tzinfo=UTC)
                )
            ]
        )
    down = run_deposits(date(2026, 5, 1))  # 2 × average(200, 300, 30) = 353.33
    assert (down.requested, down.released) == (D(0), D("46.67"))
    assert Deposit.objects.get(customer=customer).held == D("353.33")
    _whole(customer)


@pytest.fixture
def staff_client(client):  # type: ignore[no-untyped-def]
    client.force_login(get_user_model().objects.create_superuser("boss", "boss@example.com", "Boss-pass1"))
    return client


def test_back_office_deposit_action_and_policy_refusals(staff_client, operator, customer) -> None:
    deposit = Deposit.objects.create(customer=customer, since=date(2026, 1, 1))
    url = reverse("admin:billing_deposit_move_deposit", args=[deposit.pk])
    refused = staff_client.post(url, {"action": "return", "amount": "5", "reference": "BO-1"})
    assert "Amount 5 is refused: must be at most the deposit held (0" in html.unescape(refused.content.decode())
    done = staff_client.post(url, {"action": "post", "amount": "25.00", "reference": "BO-2", "reason": "signup"})
    assert done.status_code == 302 and Deposit.objects.get(pk=deposit.pk).held == D(25)
    bad = staff_client.post(
        reverse("admin:billing_latefeepolicy_add"),
        {
            "operator": operator.pk,
            "currency": "USD",
            "percent": "-1",
            "fixed": "0",
            "grace_days": "0",
            "max_periods": "0",
            "active": "on",
        },
    )
    assert "Late fee (%) -1 is refused" in html.unescape(bad.content.decode())
    rate = staff_client.post(
        reverse("admin:billing_deposit_add"),
        {
            "customer": customer.pk,
            "since": "2026-01-01",
            "interest_rate": "-2",
            "months": "2",
            "lookback": "3",
            "minimum": "0",
            "threshold": "0",
        },
    )
    assert "Interest rate (% per year) -2 is refused" in html.unescape(rate.content.decode())
    assert not LateFeePolicy.objects.exists()
    for name in ("taxrate", "taxexemption", "latefeepolicy", "deposit"):
        assert staff_client.get(reverse(f"admin:billing_{name}_add")).status_code == 200
    assert "Deposit held: <strong>25.00 USD</strong>" in staff_client.get(url).content.decode()


def test_a_late_fee_is_charged_on_what_the_payments_have_not_covered(operator, customer) -> None:
    """A partly paid overdue invoice owes its fee on the rest only; a fully paid one owes none."""
    from tarifa.billing.payments import add_money
    from tarifa.core.payments import MoneyRequest

    LateFeePolicy.objects.create(operator=operator, currency="USD", percent=D(10), fixed=D(0), grace_days=0)
    partly = _invoice(customer, "INV-1", date(2026, 1, 10))
    add_money(customer, MoneyRequest(kind="payment", amount=D("150.00"), reference="bank-1"), actor="test")
    assert partly.allocations.aggregate(s=Sum("amount"))["s"] == D("150.00")
    run = run_penalties(date(2026, 1, 12))
    assert (run.posted, run.amount) == (1, D("5.00"))  # 10 % of the 50.00 still owed, not of 200.00
    add_money(customer, MoneyRequest(kind="payment", amount=D("50.00"), reference="bank-2"), actor="test")
    partly.refresh_from_db()
    assert partly.status == "paid"
    assert run_penalties(date(2026, 3, 1)).posted == 0
