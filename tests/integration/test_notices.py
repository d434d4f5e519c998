"""Notices end to end against a real SMTP server on loopback (tests/smtp.py): low balance (once a
day, re-armed by a payment), card expiry, invoice and receipt e-mails, SMTP down, header injection."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import transaction

from tarifa.billing import ledger
from tarifa.billing.models import Invoice, PaymentMethod, Transaction
from tarifa.billing.payments import add_money
from tarifa.billing.signals import invoice_issued, payment_received
from tarifa.core.authorization.judgement import spendable
from tarifa.core.notices import MAX_ATTEMPTS, OutboxStatus
from tarifa.core.payments import MoneyRequest
from tarifa.customers.models import Account, Customer
from tarifa.notices.checks import _low_balance_notice, check_card_expiry, check_low_balances, low_balance_candidates
from tarifa.notices.models import NoticeSettings, Outbox
from tarifa.notices.sender import deliver, send_again
from tarifa.notices.service import run_notices
from tests.smtp import Mailbox

D = Decimal
#: a morning five days ago: the checks run at chosen times, while a payment re-arms at the real "now"
NOW = (datetime.now(UTC) - timedelta(days=5)).replace(hour=9, minute=0, second=0, microsecond=0)


@pytest.fixture
def jane(operator: Customer) -> Customer:
    return Customer.objects.create(
        parent=operator,
        name="Jane Doe",
        company="Doe Ltd",
        web_username="janedoe",
        tariff=operator.tariff,
        email="jane@doe.example",
        phone="+12015550123",
        country="US",
        billing_type="prepaid",
    )


def _charge(customer: Customer, amount: str, account: Account | None = None) -> None:
    with transaction.atomic():
        ledger.post(
            [
                ledger.Posting(
                    customer_id=customer.pk,
                    account_id=account.pk if account else None,
                    amount=-D(amount),
                    kind="call_charge",
                    reference=None,
                    description="calls",
                )
            ]
        )


def _pay(customer: Customer, amount: str, reference: str, capture: Any) -> Transaction:
    with capture(execute=True):
        return add_money(customer, MoneyRequest("payment", D(amount), reference, "wire"), actor="test")


def _body(mail: Any, kind: str = "plain") -> str:
    return str(mail.get_body((kind,)).get_content()).replace("\r\n", "\n")


def _threshold(customer: Customer, amount: str, emails: str = "") -> None:
    NoticeSettings.objects.update_or_create(
        customer=customer, defaults={"low_balance_threshold": D(amount), "emails": emails}
    )


def test_low_balance_once_a_day_and_rearmed_by_a_payment(
    jane: Customer, smtp_server: Mailbox, django_capture_on_commit_callbacks: Any
) -> None:
    _threshold(jane, "10")
    _pay(jane, "12", "P-1", django_capture_on_commit_callbacks)  # 12: above
    assert run_notices(NOW).low_balance == 0

    _charge(jane, "8")  # 4 left, below 10
    first = run_notices(NOW)
    assert (first.low_balance, first.delivery.sent) == (1, 1)
    [mail] = smtp_server.wait_for(1)
    assert mail["To"] == "jane@doe.example"
    assert mail["Subject"] == "Low balance: 4.00 USD available"
    assert "below your\nthreshold of 10.00 USD" in _body(mail)

    again = run_notices(NOW + timedelta(hours=3))  # same day: nothing
    assert (again.low_balance, again.delivery.sent) == (0, 0)
    next_day = run_notices(NOW + timedelta(days=1))
    assert (next_day.low_balance, next_day.delivery.sent) == (1, 1)
    smtp_server.wait_for(2)

    # a payment re-arms: funds above the threshold stop the reminders ...
    _pay(jane, "20", "P-2", django_capture_on_commit_callbacks)
    assert NoticeSettings.objects.get(customer=jane).rearmed_at is not None
    assert run_notices(NOW + timedelta(days=2)).low_balance == 0
    # ... and the next crossing notifies at once, even on a day that had a notice
    _charge(jane, "20")
    crossing = run_notices(timezone_now())
    # sent now: the low-balance notice and the receipts of the two payments (queued for the real time)
    receipts = Outbox.objects.filter(kind="payment_received", status=OutboxStatus.SENT).count()
    assert (crossing.low_balance, crossing.delivery.sent, receipts) == (1, 3, 2)
    mails = smtp_server.wait_for(5)
    assert sum(1 for m in mails if str(m["Subject"]).startswith("Low balance")) == 3
    assert Outbox.objects.filter(kind="low_balance", status=OutboxStatus.SENT).count() == 3


def timezone_now() -> datetime:
    from django.utils import timezone

    return timezone.now()


def test_two_workers_deciding_at_once_queue_the_notice_once(jane: Customer, smtp_server: Mailbox) -> None:
    _threshold(jane, "5")
    [candidate] = list(low_balance_candidates())
    # both workers read "never notified" before either queued: the same key, one row
    assert _low_balance_notice(candidate, None, None, NOW) == 1
    assert _low_balance_notice(candidate, None, None, NOW) == 0
    assert check_low_balances(NOW) == 0
    assert deliver(NOW).sent == 1
    assert deliver(NOW).sent == 0
    assert len(smtp_server.wait_for(1)) == 1


def test_account_threshold_uses_the_accounts_own_balance_and_addresses(jane: Customer, smtp_server: Mailbox) -> None:
    own = Account.objects.create(
        customer=jane, name="pbx", balance_mode="own", balance_threshold=D("3"), notification_emails="ops@doe.example"
    )
    shared = Account.objects.create(customer=jane, name="desk", balance_threshold=D("200"))
    _charge(jane, "1", own)  # own balance -1, customer balance 0
    assert check_low_balances(NOW) == 2
    deliver(NOW)
    mails = smtp_server.wait_for(2)
    assert sorted(m["To"] for m in mails) == ["jane@doe.example", "ops@doe.example"]
    own_mail = next(m for m in mails if m["To"] == "ops@doe.example")
    assert "account pbx" in _body(own_mail)
    assert Outbox.objects.filter(account=shared).count() == 1


def test_changing_an_accounts_threshold_rearms(jane: Customer, django_capture_on_commit_callbacks: Any) -> None:
    account = Account.objects.create(customer=jane, name="desk", balance_threshold=D("5"))
    assert check_low_balances(NOW) == 1
    assert check_low_balances(NOW + timedelta(hours=1)) == 0
    account.balance_threshold = D("6")
    with django_capture_on_commit_callbacks(execute=True):
        account.save()
    assert check_low_balances(timezone_now()) == 1
    armed = NoticeSettings.objects.get(customer=jane).rearmed_at
    account.name = "desk 2"  # other changes re-arm nothing
    with django_capture_on_commit_callbacks(execute=True):
        account.save()
    assert NoticeSettings.objects.get(customer=jane).rearmed_at == armed


def test_the_query_agrees_with_spendable(jane: Customer, operator: Customer) -> None:
    """The SQL filter finds exactly the customers whose ``spendable`` funds are below threshold."""
    cases = [
        ("prepaid", "0", "5", "4.99"),
        ("prepaid", "0", "5", "5"),
        ("postpaid", "10", "5", "-5.01"),
        ("postpaid", "10", "5", "-5"),
        ("postpaid", "10", "0.01", "-10"),
        ("prepaid", "100", "1", "0.5"),
    ]
    expected = set()
    for i, (billing, credit, threshold, balance) in enumerate(cases):
        c = Customer.objects.create(
            parent=operator,
            name=f"C{i}",
            company=f"C{i}",
            web_username=f"case{i}",
            tariff=operator.tariff,
            email=f"c{i}@x.example",
            phone="+12015550123",
            country="US",
            billing_type=billing,
            credit_limit=D(credit),
        )
        _threshold(c, threshold)
        if D(balance):
            _charge(c, str(-D(balance)))
        if spendable(D(balance), D(credit), billing == "postpaid") < D(threshold):
            expected.add(c.pk)
    assert expected  # the table has both kinds
    assert {c.customer_id for c in low_balance_candidates()} == expected


def test_card_expiry_once_per_window(jane: Customer, smtp_server: Mailbox) -> None:
    card = PaymentMethod.objects.create(
        customer=jane, gateway="fake", token="tok-1", brand="VISA", last4="4242", expiry_month=12, expiry_year=2026
    )
    PaymentMethod.objects.create(
        customer=jane, gateway="fake", token="tok-2", brand="VISA", last4="1111", expiry_month=6, expiry_year=2027
    )
    PaymentMethod.objects.create(
        customer=jane, gateway="fake", token="tok-3", last4="9999", expiry_month=12, expiry_year=2026, active=False
    )
    windows = (30, 7)
    assert check_card_expiry(windows, datetime(2026, 11, 30, tzinfo=UTC)) == 0  # 31 days left
    assert check_card_expiry(windows, datetime(2026, 12, 1, tzinfo=UTC)) == 1
    assert check_card_expiry(windows, datetime(2026, 12, 10, tzinfo=UTC)) == 0  # same window
    assert check_card_expiry(windows, datetime(2026, 12, 24, tzinfo=UTC)) == 1  # 7 days left
    assert check_card_expiry(windows, datetime(2026, 12, 30, tzinfo=UTC)) == 0
    assert check_card_expiry(windows, datetime(2027, 1, 1, tzinfo=UTC)) == 0  # expired
    deliver(datetime(2027, 1, 1, tzinfo=UTC))
    mails = smtp_server.wait_for(2)
    assert [m["Subject"] for m in mails] == ["Your card VISA ****4242 expires on 2026-12-31"] * 2
    assert "(in 7 days)" in _body(mails[1])
    assert set(Outbox.objects.values_list("key", flat=True)) == {
        f"card_expiry:{card.pk}:2026-12:30",
        f"card_expiry:{card.pk}:2026-12:7",
    }


def _invoice(customer: Customer, number: str = "INV-2026-0001") -> Invoice:
    invoice = Invoice.objects.create(
        customer=customer,
        number=number,
        period_start=date(2026, 11, 1),
        period_end=date(2026, 11, 30),
        subtotal=D("42.5"),
        total=D("42.5"),
        due_date=date(2026, 12, 31),
    )
    Invoice.objects.filter(pk=invoice.pk).update(status="issued", issued_at=NOW)
    invoice.refresh_from_db()
    return invoice


def test_invoice_issued_mail_carries_the_pdf(
    jane: Customer, smtp_server: Mailbox, django_capture_on_commit_callbacks: Any
) -> None:
    invoice = _invoice(jane)
    with django_capture_on_commit_callbacks(execute=True):
        invoice_issued.send(sender=Invoice, invoice=invoice)
    with django_capture_on_commit_callbacks(execute=True):
        invoice_issued.send(sender=Invoice, invoice=invoice)  # sent twice: queued once
    assert Outbox.objects.filter(kind="invoice_issued").count() == 1
    assert deliver().sent == 1
    [mail] = smtp_server.wait_for(1)
    assert mail["Subject"] == "Invoice INV-2026-0001: 42.50 USD"
    [pdf] = list(mail.iter_attachments())
    assert pdf.get_filename() == "invoice-INV-2026-0001.pdf"
    assert pdf.get_content_type() == "application/pdf"
    assert pdf.get_content()[:5] == b"%PDF-"
    html = _body(mail, "html")
    assert "<b>INV-2026-0001</b>" in html


def test_a_credit_note_mail_says_credit_note_with_its_amount_and_tax(
    jane: Customer, smtp_server: Mailbox, django_capture_on_commit_callbacks: Any
) -> None:
    """new-user finding #9: the e-mail of a credit note is a credit note's (subject, bodies,
    attachment name), with the amount given back positive and its net and tax parts."""
    from tarifa.billing.models import InvoiceLine
    from tarifa.services.invoicing import credit_invoice

    invoice = Invoice.objects.create(
        customer=jane,
        number="INV-2026-0007",
        period_start=date(2026, 11, 1),
        period_end=date(2026, 11, 30),
        subtotal=D("35.00"),
        tax=D("7.00"),
        total=D("42.00"),
        due_date=date(2026, 12, 31),
    )
    InvoiceLine.objects.create(invoice=invoice, section="services", description="Plan", unit_price=D(35), amount=D(35))
    InvoiceLine.objects.create(
        invoice=invoice,
        section="tax",
        description="VAT 20%",
        unit_price=D(7),
        amount=D(7),
        tax_rate=D(20),
        tax_base=D(35),
    )
    Invoice.objects.filter(pk=invoice.pk).update(status="issued", issued_at=NOW)
    with django_capture_on_commit_callbacks(execute=True):
        note = credit_invoice(invoice.number, D("12.00"), "Dropped calls", now=NOW)
    row = Outbox.objects.get(invoice=note)
    assert row.kind == "credit_note_issued"
    assert deliver().sent == 1
    [mail] = smtp_server.wait_for(1)
    assert mail["Subject"] == f"Credit note {note.number}: 12.00 USD"
    body = _body(mail)
    assert f"Your credit note {note.number} on invoice INV-2026-0007 is attached." in body
    assert "It reduces what you owe by 12.00 USD (10.00 net + 2.00 tax)." in body and "Invoice" not in body
    assert f"<b>{note.number}</b>" in _body(mail, "html")
    [pdf] = list(mail.iter_attachments())
    assert pdf.get_filename() == f"credit-note-{note.number}.pdf"


def test_a_missed_invoice_notice_is_caught_up_by_the_worker(jane: Customer, smtp_server: Mailbox) -> None:
    _invoice(jane, "INV-MISSED")  # issued, but no receiver ran
    result = run_notices(NOW + timedelta(hours=1))
    assert (result.invoices, result.delivery.sent) == (1, 1)
    assert run_notices(NOW + timedelta(hours=2)).invoices == 0
    smtp_server.wait_for(1)


def test_the_catch_up_reads_template_addresses_and_customers_once_for_many_invoices(
    jane: Customer, operator: Customer
) -> None:
    """Queueing N missed invoice notices is not N times the reads: the template, the notice
    addresses and the customers are read once; each invoice costs its outbox row only."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tarifa.notices.events import queue_missed_invoices

    others = [
        Customer.objects.create(
            parent=operator, name=f"C{n}", web_username=f"c{n}", tariff=operator.tariff, email=f"c{n}@x.example"
        )
        for n in range(4)
    ]
    NoticeSettings.objects.create(customer=others[0], emails="billing@x.example")
    for n, customer in enumerate([jane, *others]):
        _invoice(customer, f"INV-BATCH-{n}")
    with CaptureQueriesContext(connection) as queries:
        assert queue_missed_invoices(NOW + timedelta(hours=1)) == 5
    reads = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("SELECT")]
    for table in ("notices_noticetemplate", "notices_noticesettings", "customers_customer"):
        assert sum(f'FROM "{table}"' in sql for sql in reads) <= 1, table
    assert Outbox.objects.get(invoice__number="INV-BATCH-1").recipients == "billing@x.example"
    assert Outbox.objects.get(invoice__number="INV-BATCH-0").recipients == "jane@doe.example"
    assert queue_missed_invoices(NOW + timedelta(hours=2)) == 0


def test_payment_receipt(jane: Customer, smtp_server: Mailbox, django_capture_on_commit_callbacks: Any) -> None:
    payment = _pay(jane, "25.5", "BANK-77", django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        payment_received.send(sender=Transaction, transaction=payment)
    assert deliver().sent == 1
    [mail] = smtp_server.wait_for(1)
    assert mail["Subject"] == "Payment received: 25.50 USD"
    body = _body(mail)
    assert "reference BANK-77" in body and "balance is now 25.50 USD" in body


@pytest.fixture
def smtp_down(settings: Any) -> Iterator[int]:
    """Django's mail pointed at a loopback port nobody listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    yield port


def test_smtp_down_keeps_the_notice_and_a_later_run_delivers(
    jane: Customer, smtp_down: int, settings: Any, _smtp_controller: Mailbox
) -> None:
    _threshold(jane, "5")
    first = run_notices(NOW)
    assert (first.low_balance, first.delivery.sent, first.delivery.retrying) == (1, 0, 1)
    row = Outbox.objects.get()
    assert row.status == OutboxStatus.RETRYING and row.attempts == 1
    assert "ConnectionRefusedError" in row.last_error
    assert row.next_attempt_at == NOW + timedelta(minutes=1)
    assert deliver(NOW + timedelta(seconds=30)).retrying == 0  # not due yet

    _smtp_controller.clear()
    settings.EMAIL_PORT = _smtp_controller.port  # the server is back
    later = deliver(NOW + timedelta(minutes=2))
    assert later.sent == 1
    row.refresh_from_db()
    assert (row.status, row.attempts, row.last_error) == (OutboxStatus.SENT, 2, "")
    assert len(_smtp_controller.wait_for(1)) == 1
    _smtp_controller.clear()


def test_after_the_last_attempt_the_notice_is_failed_and_can_be_sent_again(
    jane: Customer, smtp_down: int, settings: Any, _smtp_controller: Mailbox
) -> None:
    _threshold(jane, "5")
    check_low_balances(NOW)
    moment = NOW
    for _ in range(MAX_ATTEMPTS):
        deliver(moment)
        moment += timedelta(days=1)
    row = Outbox.objects.get()
    assert (row.status, row.attempts) == (OutboxStatus.FAILED, MAX_ATTEMPTS)
    assert deliver(moment).failed == 0  # given up: not tried again by itself
    assert send_again([row.pk], moment) == 1
    _smtp_controller.clear()
    settings.EMAIL_PORT = _smtp_controller.port
    assert deliver(moment).sent == 1
    _smtp_controller.wait_for(1)
    _smtp_controller.clear()


def test_header_injection_in_name_and_address_is_neutralised(jane: Customer, smtp_server: Mailbox) -> None:
    # stored around the model's validation, as a careless import could
    Customer.objects.filter(pk=jane.pk).update(name="Jane\r\nBcc: victim@evil.example")
    _threshold(jane, "5")
    NoticeSettings.objects.filter(customer=jane).update(emails="ops@doe.example\r\nBcc: thief@evil.example")
    Account.objects.create(customer=jane, name="a", balance_threshold=D("5"))
    NoticeSettings.objects.filter(customer=jane).update(low_balance_threshold=D("5"))
    with transaction.atomic():
        Outbox.objects.all().delete()
    # the template puts the customer name in the subject for this test
    from tarifa.notices.models import NoticeTemplate

    NoticeTemplate.objects.filter(kind="low_balance", language="").update(subject="Low balance for {{ customer_name }}")
    run_notices(NOW)
    rows = {r.account_id is None: r for r in Outbox.objects.all()}
    customer_row = rows[True]
    assert customer_row.status == OutboxStatus.FAILED  # no valid address: never handed to SMTP
    assert "no valid e-mail address" in customer_row.last_error
    [mail] = smtp_server.wait_for(1)  # the account's notice, to the customer's e-mail
    assert mail["Subject"] == "Low balance for Jane Bcc: victim@evil.example"
    assert mail["Bcc"] is None
    assert smtp_server.envelopes[0][1] == ["jane@doe.example"]


@pytest.mark.django_db(transaction=True)
def test_workers_running_at_the_same_moment_send_one_e_mail(operator: Customer, smtp_server: Mailbox) -> None:
    """Four workers (threads, each its own database connection) check and send at the same instant.
    PostgreSQL only: the SQLite test database is in memory with a shared cache, whose table locks
    fail at once instead of waiting (a real SQLite file waits); the key's uniqueness is tested on
    both databases by test_two_workers_deciding_at_once_queue_the_notice_once."""
    import threading

    from django.db import connection, connections

    if connection.vendor == "sqlite":
        pytest.skip("threads on the in-memory SQLite test database fail on table locks; see the docstring")

    _threshold(operator, "5")
    start = threading.Barrier(4)
    errors: list[str] = []

    def worker() -> None:
        try:
            start.wait()
            run_notices(NOW)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(repr(exc))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert Outbox.objects.count() == 1
    assert Outbox.objects.get().status == OutboxStatus.SENT
    assert len(smtp_server.wait_for(1)) == 1
    assert len(smtp_server.messages) == 1


def _notices_cli(*args: str) -> Any:
    from typer.testing import CliRunner

    from tarifa import cli

    if not any(group.name == "notices" for group in cli.app.registered_groups):
        cli._register_commands()
    return CliRunner().invoke(cli.app, ["notices", "run", *args])


def test_cli_counts_rows_still_waiting_and_retry_now_flushes_them(
    jane: Customer, smtp_down: int, settings: Any, _smtp_controller: Mailbox
) -> None:
    _threshold(jane, "5")
    first = _notices_cli()
    assert first.exit_code == 1, first.output
    assert "1 waiting to retry" in first.output
    again = _notices_cli()  # nothing due now, but the row still waits: said so, exit 1
    assert again.exit_code == 1, again.output
    assert "sent 0 e-mail(s); 1 waiting to retry, 0 failed" in again.output

    _smtp_controller.clear()
    settings.EMAIL_PORT = _smtp_controller.port  # the operator fixed the mail server
    flushed = _notices_cli("--retry-now")
    assert flushed.exit_code == 0, flushed.output
    assert "1 e-mail(s) waiting to retry made due now" in flushed.output
    assert "sent 1 e-mail(s); 0 waiting to retry, 0 failed" in flushed.output
    assert Outbox.objects.get().status == OutboxStatus.SENT
    assert len(_smtp_controller.wait_for(1)) == 1
    _smtp_controller.clear()


def test_send_again_also_takes_rows_waiting_to_retry(
    jane: Customer, smtp_down: int, settings: Any, _smtp_controller: Mailbox
) -> None:
    _threshold(jane, "5")
    run_notices(NOW)
    row = Outbox.objects.get()
    assert row.status == OutboxStatus.RETRYING
    assert send_again([row.pk], NOW) == 1
    _smtp_controller.clear()
    settings.EMAIL_PORT = _smtp_controller.port
    assert deliver(NOW).sent == 1
    _smtp_controller.wait_for(1)
    _smtp_controller.clear()
