"""Payments by hand allocated to invoices (oldest first or chosen), refunds that reopen invoices,
unallocated money applied to invoices issued later, the statement and the aged receivables."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db.models import Sum

from tarifa.billing import allocation
from tarifa.billing.models import Invoice, PaymentAllocation, Transaction
from tarifa.billing.payments import add_money
from tarifa.billing.signals import payment_received
from tarifa.billing.statement import receivables, statement
from tarifa.core.payments import MoneyRequest, Refused
from tarifa.customers.models import Customer
from tests.integration.payments_world import cli, issued, make_payer

pytestmark = pytest.mark.django_db


@pytest.fixture
def payer(tariff, operator):  # type: ignore[no-untyped-def]
    return make_payer(tariff, operator)


D = Decimal


def pay(customer, amount: str, ref: str, kind: str = "payment", **kw):  # type: ignore[no-untyped-def]
    reason = "" if kind == "payment" else "test"
    method = kw.pop("method", "bank")
    return add_money(customer, MoneyRequest(kind, D(amount), ref, reason, method=method), actor="t", **kw)


def placed(invoice: Invoice) -> Decimal:
    return PaymentAllocation.objects.filter(invoice=invoice).aggregate(s=Sum("amount"))["s"] or D(0)


def status(invoice: Invoice) -> str:
    invoice.refresh_from_db()
    return invoice.status


def test_a_payment_pays_the_oldest_invoice_first_and_marks_it_paid(payer) -> None:
    new = issued(payer, "INV-2", "50", date(2026, 3, 1))
    old = issued(payer, "INV-1", "30", date(2026, 2, 1))
    posted = pay(payer, "40", "BANK-1")
    assert posted.method == "bank"
    assert (placed(old), status(old)) == (D("30"), "paid")
    assert (placed(new), status(new)) == (D("10"), "issued")
    pay(payer, "45", "BANK-2", method="cheque")
    assert (placed(new), status(new)) == (D("50"), "paid")
    assert allocation.unallocated(payer.pk) == D("5")
    # an invoice issued later takes the unallocated money (what the invoice run calls)
    later = issued(payer, "INV-3", "8", date(2026, 4, 1))
    allocation.apply_unallocated(payer.pk)
    assert placed(later) == D("5") and status(later) == "issued"
    assert allocation.apply_unallocated(payer.pk) == []  # nothing more to place: idempotent


def test_an_allocation_is_append_only(payer) -> None:
    issued(payer, "INV-1", "30", date(2026, 2, 1))
    pay(payer, "10", "BANK-1")
    row = PaymentAllocation.objects.get()
    row.amount = D("30")
    with pytest.raises(
        ValidationError, match=rf"^\['Payment allocation {row.pk} is append-only and cannot be changed'\]$"
    ):
        row.save()
    with pytest.raises(
        ValidationError, match=rf"^\['Payment allocation {row.pk} is append-only and cannot be deleted'\]$"
    ):
        row.delete()
    assert PaymentAllocation.objects.get().amount == D("10")


def test_a_chosen_invoice_is_paid_instead_of_the_oldest(payer) -> None:
    old = issued(payer, "INV-1", "30", date(2026, 2, 1))
    new = issued(payer, "INV-2", "20", date(2026, 3, 1))
    pay(payer, "20", "BANK-1", invoice=new.pk)
    assert (placed(old), placed(new), status(new)) == (D("0"), D("20"), "paid")
    with pytest.raises(Refused, match=r"Invoice 'INV-2' is refused: it is already paid"):
        pay(payer, "5", "BANK-2", invoice=new.pk)
    assert not Transaction.objects.filter(reference="BANK-2").exists()


def test_a_refund_uses_free_money_first_then_reopens_the_newest_invoice(payer) -> None:
    old = issued(payer, "INV-1", "30", date(2026, 2, 1))
    new = issued(payer, "INV-2", "20", date(2026, 3, 1))
    pay(payer, "60", "BANK-1")  # 30 + 20 placed, 10 free
    assert status(old) == status(new) == "paid"
    pay(payer, "15", "R-1", kind="refund")  # 10 free money, then 5 back from the newest
    assert (placed(new), status(new), placed(old), status(old)) == (D("15"), "issued", D("30"), "paid")
    reversal = PaymentAllocation.objects.get(amount__lt=0)
    assert reversal.refund is not None and reversal.refund.reference == "R-1" and reversal.amount == D("-5")
    pay(payer, "5", "BANK-2")  # paid again
    assert status(new) == "paid"


def test_payment_received_is_sent_once_after_commit(payer, django_capture_on_commit_callbacks) -> None:
    got = []

    def receiver(sender, transaction, **kw):  # type: ignore[no-untyped-def]
        got.append(transaction.reference)

    payment_received.connect(receiver)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            pay(payer, "10", "BANK-1")
            pay(payer, "1", "C-1", kind="credit")
        assert got == ["BANK-1"]
    finally:
        payment_received.disconnect(receiver)


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        ("-5", "Amount '-5' is refused: a payment must be greater than 0"),
        ("12,50", "Amount '12,50' is refused: must be a decimal number in plain notation"),
        ("abc", "Amount 'abc' is refused"),
        ("1e3", "Amount '1e3' is refused"),
        ("0.0000001", "at most 6 decimal places"),
    ],
)
def test_the_cli_refuses_a_bad_amount_naming_it_and_posts_nothing(payer, amount: str, message: str) -> None:
    result = cli("payment", "add", "payer1", amount, "--reference", "BAD-1")
    assert result.exit_code == 2 and message in result.output
    assert not Transaction.objects.exists()


def test_the_cli_refuses_an_unknown_method_and_takes_method_and_invoice(payer) -> None:
    issued(payer, "INV-1", "30", date(2026, 2, 1))
    two = issued(payer, "INV-2", "30", date(2026, 3, 1))
    result = cli("payment", "add", "payer1", "5", "--reference", "X-1", "--method", "bitcoin")
    assert (
        result.exit_code == 2
        and "Method 'bitcoin' is refused: must be one of bank, cash, cheque, card, other" in result.output
    )
    result = cli("payment", "add", "payer1", "30", "--reference", "X-2", "--method", "cash", "--invoice", "INV-2")
    assert result.exit_code == 0, result.output
    assert status(two) == "paid" and Transaction.objects.get(reference="X-2").method == "cash"
    result = cli("payment", "add", "payer1", "5", "--reference", "X-3", "--invoice", "NOPE")
    assert result.exit_code == 2 and "Invoice 'NOPE' is refused: no invoice of" in result.output


def test_the_cli_names_the_invoice_number_typed_and_the_reason_it_is_refused(payer, tariff, operator) -> None:
    """newuser-findings #5: the number as typed and the real reason, never the internal id."""
    issued(payer, "INV-1", "30", date(2026, 2, 1))
    Invoice.objects.filter(number="INV-1").update(status="paid")
    issued(payer, "INV-2", "30", date(2026, 3, 1))
    Invoice.objects.filter(number="INV-2").update(status="void")
    issued(payer, "INV-3", "30", date(2026, 4, 1))
    Invoice.objects.filter(number="INV-3").update(status="draft")
    other = Customer.objects.create(
        parent=operator,
        name="O",
        company="Other",
        web_username="payer2",
        tariff=tariff,
        email="o@x.example",
        phone="+12015550124",
        country="US",
    )
    issued(other, "INV-9", "30", date(2026, 2, 1))
    expected = {
        "INV-1": "Invoice 'INV-1' is refused: it is already paid",
        "INV-2": "Invoice 'INV-2' is refused: it is void",
        "INV-3": "Invoice 'INV-3' is refused: it is a draft",
        "INV-9": "Invoice 'INV-9' is refused: no invoice of",  # another customer's: as if unknown
        "INV-404": "Invoice 'INV-404' is refused: no invoice of",
    }
    for number, message in expected.items():
        result = cli("payment", "add", "payer1", "5", "--reference", f"R-{number}", "--invoice", number)
        assert result.exit_code == 2 and message in result.output, result.output
    assert not Transaction.objects.exists()


def test_statement_runs_from_opening_to_closing_equal_to_the_balance(payer) -> None:
    from datetime import UTC, datetime

    from tarifa.billing import ledger

    pay(payer, "100", "BANK-1")
    from django.db import transaction

    with transaction.atomic():
        ledger.post(
            [
                ledger.Posting(
                    payer.pk, D("-12.5"), "call_charge", None, "calls", created_at=datetime(2026, 1, 5, tzinfo=UTC)
                )
            ]
        )
    payer.refresh_from_db()
    today = datetime.now(UTC).date()
    st = statement(payer, today, today)
    assert st.opening == D("-12.5")  # the backdated charge is before today
    assert [line.balance for line in st.lines] == [D("87.5")]
    assert st.closing == payer.balance
    whole = statement(payer)
    assert whole.opening == 0 and whole.closing == payer.balance and len(whole.lines) == 2
    with pytest.raises(Refused, match="To '2026-01-01' is refused: must not be before the start 2026-02-01"):
        statement(payer, date(2026, 2, 1), date(2026, 1, 1))
    result = cli("statement", "payer1", "--csv")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "date,transaction,kind,description,reference,amount,balance"
    assert lines[1].endswith(",opening balance,,,,0.00") and lines[-1].endswith(
        f",closing balance,,,,{payer.balance:.2f}"
    )
    result = cli("statement", "payer1", "--from", "2026-13-01")
    assert result.exit_code == 2 and "From '2026-13-01' is refused: is not a day of the calendar" in result.output
    assert "closing balance" in cli("statement", "payer1").output


def test_the_cli_statement_shows_descriptions_in_full(payer) -> None:  # type: ignore[no-untyped-def]
    """new-user finding #14: the text statement wraps a long description between words instead of
    cutting it (the invoice number was cut to INV-2026-00), and a payment shows its reference."""
    from django.db import transaction

    from tarifa.billing import ledger

    with transaction.atomic():
        ledger.post(
            [
                ledger.Posting(
                    payer.pk, D("9.3922"), "discount", "INV-2026-000123:discount", "Discount of invoice INV-2026-000123"
                )
            ]
        )
    pay(payer, "5", "CHK-1")
    out = cli("statement", "payer1").output
    lines = out.splitlines()
    (at,) = [n for n, text in enumerate(lines) if "discount Discount of invoice" in text]
    assert "+$9.3922" in lines[at] and lines[at + 1].strip() == "INV-2026-000123"
    assert "INV-2026-00 " not in out
    assert "payment Payment (ref. CHK-1)" in out
    # finding #3: the amounts as the invoice PDF shows them (one formatter, the customer's 4 decimals)
    from tarifa.billing.render import money

    assert f"+{money(D(5), 'USD', 4)}" in out and money(D("14.3922"), "USD", 4) == "$14.3922" and "$14.3922" in out


def test_receivables_by_days_past_due(payer) -> None:
    issued(payer, "INV-1", "100", date(2026, 1, 1))  # due 2026-01-16
    issued(payer, "INV-2", "40", date(2026, 5, 1))  # due 2026-05-16
    pay(payer, "30", "BANK-1")  # 30 off INV-1
    rows = receivables([payer], date(2026, 6, 1))
    ((customer, aging),) = rows
    assert customer == payer
    assert aging.buckets == {"0-30": D("40"), "31-60": D("0"), "61-90": D("0"), "90+": D("70")}
    result = cli("receivables", "--csv", "--as-of", "2026-06-01")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "account code,company,currency,current,0-30,31-60,61-90,90+,total",
        f"{payer.account_code},Payer Ltd,USD,0.00,40.00,0.00,0.00,70.00,110.00",
    ]


def test_the_worker_sweep_places_free_money_only_where_there_is_some(payer) -> None:

    pay(payer, "50", "BANK-1")  # before any invoice: all free
    issued(payer, "INV-1", "30", date(2026, 2, 1))
    assert allocation.apply_all_unallocated() == 1
    assert allocation.unallocated(payer.pk) == D("20")
    assert allocation.apply_all_unallocated() == 0
