"""The invoice run (tarifa.services.invoicing) on a generated month of 100 customers: each invoice
equals the period's Transactions of invoiced kinds to the last decimal, numbers run without gaps
per issuer, a second run changes nothing, a period that has not ended is refused, credit notes
never touch the invoice; and a run killed mid-way and restarted issues every invoice once."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.db.models import Sum

from tarifa.billing.models import BillingProfile, Invoice, InvoiceLine, InvoiceSequence, Transaction
from tarifa.billing.signals import invoice_issued
from tarifa.core.invoicing import Period, parse_period
from tarifa.customers.models import Customer
from tarifa.services.invoicing import CreditRefused, PeriodNotEnded, credit_invoice, period_total, run_invoices
from tests.integration import invoicing_world

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]
D = Decimal
NOV = parse_period("2026-11")
NOW = datetime(2026, 12, 7, 12, tzinfo=UTC)


def _check_invoices_equal_the_ledger() -> int:
    """Every invoice: total = minus its period's invoiced Transactions; lines add up. Returns the count."""
    count = 0
    for inv in Invoice.objects.filter(kind="invoice").select_related("customer"):
        zone = ZoneInfo(inv.customer.time_zone)
        start, end = Period(inv.period_start, inv.period_end).bounds(zone)
        assert inv.total == period_total(inv.customer_id, start, end, [inv.number]), inv.number
        lines = list(inv.lines.all())
        assert inv.total == sum((line.amount for line in lines if line.section != "usage"), D(0)), inv.number
        assert inv.total == inv.subtotal - inv.discount + inv.penalty + inv.tax
        count += 1
    return count


def _numbers_gapless() -> None:
    for seq in InvoiceSequence.objects.all():
        issued = sorted(
            Invoice.objects.filter(number__startswith=f"{seq.prefix}-{seq.year}-").values_list("number", flat=True)
        )
        assert issued == [f"{seq.prefix}-{seq.year}-{n:06d}" for n in range(1, seq.last + 1)]


def test_a_month_of_100_customers_is_invoiced_to_the_cent_once(django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    ids = invoicing_world.build(100)
    sent: list[str] = []

    def listen(sender: object, invoice: Invoice, **_: object) -> None:
        sent.append(invoice.number)

    invoice_issued.connect(listen)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            result = run_invoices(period=NOV, now=NOW, chunk=30)
    finally:
        invoice_issued.disconnect(listen)
    weekly = BillingProfile.objects.filter(cycle="weekly").count()
    custom = BillingProfile.objects.filter(cycle="custom").count()
    assert weekly and custom
    n = _check_invoices_equal_the_ledger()
    assert n == len(result.issued) == len(sent) and sorted(sent) == sorted(result.issued)
    # one invoice per monthly customer, one per week / ten days ending in November for the others
    assert Invoice.objects.filter(period_start=date(2026, 11, 1), period_end=date(2026, 11, 30)).count() == (
        100 - weekly - custom
    )
    assert n > 100
    # the whole month: the sum of the invoices is the sum of the Transactions they account for
    invoiced = Invoice.objects.aggregate(t=Sum("total"))["t"]
    refs = [f"{num}:{k}" for num in result.issued for k in ("discount", "tax")]
    assert Transaction.objects.filter(reference__in=refs).count() > 20  # discounts and taxes posted
    assert invoiced == sum(
        (
            period_total(
                inv.customer_id,
                *Period(inv.period_start, inv.period_end).bounds(ZoneInfo(inv.customer.time_zone)),
                [inv.number],
            )
            for inv in Invoice.objects.select_related("customer")
        ),
        D(0),
    )
    # resellers number their own customers' invoices; the operator the others
    reseller = Customer.objects.get(kind="reseller")
    mine = Invoice.objects.filter(issuer=reseller)
    assert mine.count() == 10 and all(i.number.startswith(reseller.account_code + "-2026-") for i in mine)
    assert Invoice.objects.filter(issuer__isnull=True, number__startswith="INV-2026-").count() == n - 10
    _numbers_gapless()
    # a location on the customers with a DID cost center
    assert InvoiceLine.objects.filter(section="usage").exclude(location="").exists()
    assert not InvoiceLine.objects.filter(section="usage", invoice__customer_id=ids[1]).exists()
    # again: nothing new
    before = (Invoice.objects.count(), Transaction.objects.count(), list(InvoiceSequence.objects.values_list("last")))
    again = run_invoices(period=NOV, now=NOW)
    assert again.issued == [] and again.already == n
    after = (Invoice.objects.count(), Transaction.objects.count(), list(InvoiceSequence.objects.values_list("last")))
    assert before == after


def test_a_period_that_has_not_ended_is_refused_and_nothing_is_posted() -> None:
    invoicing_world.build(6)
    before = Transaction.objects.count()
    with pytest.raises(PeriodNotEnded) as refused:
        run_invoices(period=NOV, now=datetime(2026, 11, 30, 23, 30, tzinfo=UTC))
    # Paris has ended November at 23:00 UTC; UTC and New York not: the message names one of them
    assert "Period 2026-11 of customer" in str(refused.value)
    assert "it has not ended; it ends at 2026-12-01 00:00" in str(refused.value)
    assert Invoice.objects.count() == 0 and Transaction.objects.count() == before
    # the default run (each customer's last ended period) is never refused
    result = run_invoices(now=datetime(2026, 11, 30, 23, 30, tzinfo=UTC))
    assert Invoice.objects.filter(period_end=date(2026, 11, 30)).count() == 2  # the Paris customers
    assert len(result.issued) >= 2


def test_credit_notes_reference_the_invoice_and_never_change_it() -> None:
    ids = invoicing_world.build(3)
    run_invoices(period=NOV, now=NOW, customer=Customer.objects.get(pk=ids[0]).account_code)
    inv = Invoice.objects.get()
    balance = Customer.objects.get(pk=ids[0]).balance
    note = credit_invoice(inv.number, D("10.00"), "Dropped calls on Nov 3", actor="tester")
    assert note.kind == "credit_note" and note.credited_invoice_id == inv.pk and note.total == D("-10.00")
    assert note.number == "INV-2026-000002"
    fresh = Invoice.objects.get(pk=inv.pk)
    assert (fresh.total, fresh.status, fresh.updated_at) == (inv.total, inv.status, inv.updated_at)
    posted = Transaction.objects.get(reference=f"{note.number}:credit")
    assert posted.kind == "credit" and posted.amount == D("10.00") and posted.actor == "tester"
    assert Customer.objects.get(pk=ids[0]).balance == balance + D("10.00")
    for number, amount, reason, message in (
        (inv.number, inv.total, "too much", "at most"),
        (inv.number, D("-1"), "negative", "must be positive"),
        (inv.number, D("1"), "  ", "needs a reason"),
        ("INV-1999-000001", D("1"), "x", "no invoice has this number"),
        (note.number, D("1"), "x", "is a credit note; only an invoice can be credited"),
        (
            inv.number,
            D("0.00001"),
            "x",
            r"Amount 0.00001 is refused: at most 4 decimal places \(the customer's billing",
        ),
    ):
        with pytest.raises(CreditRefused, match=message):
            credit_invoice(number, amount, reason)
    assert Invoice.objects.count() == 2


def test_a_credit_note_on_a_taxed_invoice_gives_back_its_tax(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """new-user finding #7: a credit note on a VAT invoice credits net and tax in the invoice's
    proportions (tax lines with rate and base), posts them so that the ledger equals minus the invoice
    and its credit notes to the last decimal, and its PDF and CSV show the tax part."""
    import subprocess

    from tarifa.billing.render import invoice_csv, invoice_pdf

    ids = invoicing_world.build(3)
    customer = Customer.objects.get(pk=ids[1])  # tax_flag VAT, 20 %
    run_invoices(period=NOV, now=NOW, customer=customer.account_code)
    inv = Invoice.objects.get(customer=customer, kind="invoice")
    (vat,) = inv.lines.filter(section="tax")
    assert inv.tax > 0 and vat.tax_rate == D("20")
    note = credit_invoice(inv.number, D("12.50"), "Dropped calls on Nov 3")
    (tax_line,) = note.lines.filter(section="tax")
    assert tax_line.tax_rate == D("20") and tax_line.tax_base < 0
    assert tax_line.amount == (tax_line.tax_base * D("0.2")).quantize(D("0.0001"))  # recomputes from its base
    assert note.tax == tax_line.amount < 0 and note.subtotal + note.tax == note.total == D("-12.50")
    share = D("12.50") / inv.total
    assert tax_line.tax_base == -(vat.tax_base * share).quantize(D("0.0001"), rounding="ROUND_HALF_UP")
    posted = {t.reference: (t.kind, t.amount) for t in Transaction.objects.filter(reference__startswith=note.number)}
    assert posted == {
        f"{note.number}:credit": ("credit", -note.subtotal),
        f"{note.number}:credit-tax": ("tax", -note.tax),
    }

    def ledger_minus_documents() -> Decimal:
        notes = list(Invoice.objects.filter(credited_invoice=inv).values_list("number", "total"))
        refs = [f"{n}{s}" for n, _ in notes for s in (":credit", ":credit-tax")]
        own = Transaction.objects.filter(reference__in=refs).aggregate(t=Sum("amount"))["t"] or D(0)
        return -own - sum((t for _, t in notes), D(0))

    assert ledger_minus_documents() == 0
    # the rest credited: the invoice and its notes end with no tax at all, to the last decimal
    rest = credit_invoice(inv.number, None, "cancelled")  # in full: what is left (CLI --amount all)
    assert rest.total == D("12.50") - inv.total
    refs = [f"{inv.number}:tax", f"{note.number}:credit-tax", f"{rest.number}:credit-tax"]
    taxes = Transaction.objects.filter(kind="tax", reference__in=refs)
    assert taxes.aggregate(t=Sum("amount"))["t"] == 0
    assert inv.tax + note.tax + rest.tax == 0 and ledger_minus_documents() == 0
    with pytest.raises(CreditRefused, match="nothing is left to credit"):
        credit_invoice(inv.number, None, "again")
    # what the customer reads
    path = tmp_path / "note.pdf"
    path.write_bytes(invoice_pdf(note))
    text = subprocess.run(["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True, text=True).stdout
    assert "20 %" in text and "Taxes" in text and "-$12.5000" in text  # the customer's 4 billing decimals
    net, tax = f"${-note.subtotal:.4f}", f"${-note.tax:.4f}"
    assert f"by $12.5000 ({net} net + {tax} tax)" in " ".join(text.split()) and "by -$" not in text
    csv = invoice_csv(note).splitlines()
    assert f"tax,{note.tax}" in csv  # the header row: the tax given back, negative
    (row,) = [r for r in csv if r.startswith("tax,VAT")]
    assert row.endswith(f",{tax_line.amount},{tax_line.amount},20,{tax_line.tax_base}")


def test_the_cli_runs_credits_and_refuses_with_messages(capsys) -> None:  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from tarifa.cli import _register_commands, app

    _register_commands()
    invoicing_world.build(4)
    runner = CliRunner()
    out = runner.invoke(app, ["invoice", "run", "--period", "2026-13"])
    assert out.exit_code == 2 and "Period '2026-13' is refused" in out.output
    out = runner.invoke(app, ["invoice", "run", "--period", "2099-01"])
    assert out.exit_code == 2 and "it has not ended" in out.output and Invoice.objects.count() == 0
    out = runner.invoke(app, ["invoice", "run", "--customer", "nobody"])
    assert out.exit_code == 2 and "Customer 'nobody' is refused" in out.output
    out = runner.invoke(app, ["invoice", "run", "--period", "2026-11"])
    assert out.exit_code == 0, out.output
    assert re.search(r"(\d+) invoice\(s\) issued", out.output)
    number = Invoice.objects.filter(issuer__isnull=True).order_by("number").first().number  # type: ignore[union-attr]
    out = runner.invoke(app, ["invoice", "credit", number, "--amount", "abc", "--reason", "x"])
    assert out.exit_code == 2 and "Amount 'abc' is refused" in out.output
    out = runner.invoke(app, ["invoice", "credit", number, "--amount", "1.50", "--reason", "goodwill"])
    assert (
        out.exit_code == 0
        and "credit note" in out.output
        and ": $1.5000 ($1.2500 net + $0.2500 tax) given back" in out.output
    )
    out = runner.invoke(app, ["invoice", "credit", number, "--amount", "all", "--reason", "cancelled"])
    assert out.exit_code == 0 and "given back" in out.output, out.output
    left = Invoice.objects.get(number=number).total - D("1.50")
    assert Invoice.objects.filter(credited_invoice__number=number).aggregate(t=Sum("total"))["t"] == -D("1.50") - left


def test_a_custom_engine_and_a_profile_validated_like_every_door() -> None:
    from django.core.exceptions import ValidationError

    ids = invoicing_world.build(2)
    profile = BillingProfile(customer_id=ids[0], cycle="custom", every_days=0, discount_kind="percent")
    profile.discount_value = D("120")
    with pytest.raises(ValidationError) as refused:
        profile.full_clean()
    text = str(refused.value.message_dict)
    assert "Anchor date (empty) is refused: a custom cycle needs its anchor date" in text
    assert "Discount 120" in text and "between 0 and 100" in text


# ---------------------------------------------------------------------------------------------
# Killed mid-run and restarted (a subprocess on the database under test)


def _tarifa(env: dict[str, str], *args: str, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], env=env, cwd=ROOT, text=True, capture_output=True, timeout=timeout)


KILLED_RUN = """
import os
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tarifa.settings")
import django
django.setup()
from tarifa.services import invoicing
invoicing.after_insert = invoicing.kill_after(25)
from tarifa.cli import main
import sys
sys.argv = ["tarifa", "invoice", "run", "--period", "2026-11"]
main()
"""

CHECK = """
from tarifa.billing.models import Invoice, InvoicePdf, Transaction
refs = list(Transaction.objects.filter(kind__in=["tax", "discount"]).values_list("reference", flat=True))
numbers = sorted(Invoice.objects.values_list("number", flat=True))
print("invoices", len(numbers), "distinct", len(set(numbers)),
      "periods", len(set(Invoice.objects.values_list("customer_id", "period_start"))), "refs", len(refs), len(set(refs)))
print("numbers", ",".join(numbers))
print("pdfs", InvoicePdf.objects.count(), "of", ",".join(sorted(InvoicePdf.objects.values_list("invoice__number", flat=True))))
"""


@pytest.mark.slow
def test_a_run_killed_mid_way_and_restarted_issues_every_invoice_once(
    tmp_path: Path, migrated_database_url: str
) -> None:
    env = dict(
        os.environ,
        TARIFA_VAR_DIR=str(tmp_path),
        TARIFA_DATABASE_URL=migrated_database_url,
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT / "src"), str(ROOT), os.environ.get("PYTHONPATH")])),
    )
    build = "from tests.integration.invoicing_world import build; build(60)"
    done = _tarifa(env, "-m", "tarifa.cli", "manage", "shell", "-c", build)
    assert done.returncode == 0, done.stdout + done.stderr
    killed = _tarifa(env, "-c", KILLED_RUN)
    assert killed.returncode == -9, killed.stdout + killed.stderr  # SIGKILLed inside its second chunk
    partial = _tarifa(env, "-m", "tarifa.cli", "manage", "shell", "-c", CHECK)
    first = int(re.search(r"invoices (\d+)", partial.stdout).group(1))  # type: ignore[union-attr]
    assert 0 < first < 25, partial.stdout + partial.stderr  # the first chunk committed, the second rolled back
    # The rerun renders the PDFs of the invoices it issues in two worker processes (the only test
    # with workers: the database is committed here); those of the killed run render on first need.
    rerun = _tarifa(env, "-m", "tarifa.cli", "invoice", "run", "--period", "2026-11", "--pdf-workers", "2")
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    issued = int(re.search(r"(\d+) invoice\(s\) issued", rerun.stdout).group(1))  # type: ignore[union-attr]
    assert f"PDFs: {issued} rendered and stored by 2 worker process(es)" in rerun.stdout, rerun.stdout + rerun.stderr
    again = _tarifa(env, "-m", "tarifa.cli", "invoice", "run", "--period", "2026-11")
    assert "0 invoice(s) issued" in again.stdout, again.stdout + again.stderr
    final = _tarifa(env, "-m", "tarifa.cli", "manage", "shell", "-c", CHECK)
    m = re.search(r"invoices (\d+) distinct (\d+) periods (\d+) refs (\d+) (\d+)", final.stdout)
    assert m, final.stdout + final.stderr
    total, distinct, periods, refs, distinct_refs = map(int, m.groups())
    assert total == distinct == periods > first and refs == distinct_refs
    pdfs = re.search(r"pdfs (\d+) of (\S*)", final.stdout)
    assert pdfs and int(pdfs.group(1)) == issued == total - first, final.stdout
    before, after = (set(re.search(r"numbers (\S*)", o.stdout).group(1).split(",")) for o in (partial, final))  # type: ignore[union-attr]
    assert set(pdfs.group(2).split(",")) == after - before  # one PDF for each invoice the rerun issued
    numbers = re.search(r"numbers (.*)", final.stdout).group(1).split(",")  # type: ignore[union-attr]
    for prefix in {n.rsplit("-", 1)[0] for n in numbers}:
        mine = sorted(int(n.rsplit("-", 1)[1]) for n in numbers if n.rsplit("-", 1)[0] == prefix)
        assert mine == list(range(1, len(mine) + 1)), prefix


# ---------------------------------------------------------------------------------------------
# Back office and API


def test_the_back_office_runs_invoices_and_issues_credit_notes_with_permission_only(client) -> None:  # type: ignore[no-untyped-def]
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission
    from django.urls import reverse

    invoicing_world.build(3)
    clerk = get_user_model().objects.create_user("clerk", "clerk@example.com", "Clerk-pass1", is_staff=True)
    clerk.user_permissions.add(Permission.objects.get(codename="view_invoice"))
    client.force_login(clerk)
    url = reverse("admin:billing_invoice_run_invoices")
    assert client.post(url, {"period": "2026-11"}).status_code == 403
    assert Invoice.objects.count() == 0
    clerk.user_permissions.add(Permission.objects.get(codename="run_invoices"))
    clerk = get_user_model().objects.get(pk=clerk.pk)
    client.force_login(clerk)
    page = client.post(url, {"period": "2099-01"})
    assert page.status_code == 200 and "it has not ended" in page.content.decode()
    done = client.post(url, {"period": "2026-11"})
    assert done.status_code == 302 and Invoice.objects.count() >= 3
    inv = Invoice.objects.filter(issuer__isnull=True).order_by("number").first()
    credit = reverse("admin:billing_invoice_credit_note", args=[inv.pk])  # type: ignore[union-attr]
    assert client.post(credit, {"amount": "1", "reason": "x"}).status_code == 403
    clerk.user_permissions.add(Permission.objects.get(codename="credit_invoice"))
    client.force_login(get_user_model().objects.get(pk=clerk.pk))
    page = client.post(credit, {"amount": "-3", "reason": "x"})
    assert "Amount -3 is refused: must be positive" in page.content.decode()
    assert client.post(credit, {"amount": "2", "reason": "goodwill"}).status_code == 302
    assert Invoice.objects.filter(kind="credit_note", credited_invoice=inv).count() == 1


def test_the_api_runs_for_the_operator_and_scopes_invoices_to_the_subtree(client) -> None:  # type: ignore[no-untyped-def]
    from tarifa.api.models import ApiToken

    ids = invoicing_world.build(12)
    operator = Customer.objects.get(kind="operator")
    reseller = Customer.objects.get(kind="reseller")
    _t, op_token = ApiToken.issue("op", customer=operator)
    _t, res_token = ApiToken.issue("res", customer=reseller)
    _t, c_token = ApiToken.issue("c0", customer=Customer.objects.get(pk=ids[0]))

    def call(method: str, path: str, token: str, **body: object):  # type: ignore[no-untyped-def]
        headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
        if method == "post":
            return client.post(path, body, content_type="application/json", **headers)
        return client.get(path, **headers)

    assert call("post", "/api/v1/invoices/run", res_token, period="2026-11").status_code == 403
    refused = call("post", "/api/v1/invoices/run", op_token, period="2099-01")
    assert refused.status_code == 422 and "it has not ended" in refused.json()["detail"]
    ran = call("post", "/api/v1/invoices/run", op_token, period="2026-11")
    assert ran.status_code == 200 and len(ran.json()["issued"]) >= 12
    mine = call("get", "/api/v1/invoices", res_token).json()
    assert len(mine) == 1 and mine[0]["issuer"] == reseller.account_code  # customer 3 is the reseller's
    theirs = Invoice.objects.filter(customer_id=ids[0]).first()
    assert call("get", f"/api/v1/invoices/{theirs.number}", res_token).status_code == 404  # type: ignore[union-attr]
    one = call("get", f"/api/v1/invoices/{theirs.number}", c_token)  # type: ignore[union-attr]
    assert one.status_code == 200 and D(one.json()["total"]) == theirs.total  # type: ignore[union-attr]
    assert sum(D(line["amount"]) for line in one.json()["lines"] if line["section"] != "usage") == theirs.total  # type: ignore[union-attr]
    assert len(call("get", "/api/v1/invoices", op_token).json()) == Invoice.objects.count()


def test_money_paid_before_the_run_pays_the_new_invoice() -> None:
    """A payment made before its invoice existed is allocated to it when the run issues it."""
    from tarifa.billing.payments import add_money
    from tarifa.core.payments import MoneyRequest

    ids = invoicing_world.build(1)
    add_money(ids[0], MoneyRequest(kind="payment", amount=D("100000.00"), reference="prepaid-1"), actor="test")
    run_invoices(period=NOV, now=NOW)
    inv = Invoice.objects.get(kind="invoice")
    assert inv.total > 0
    assert inv.allocations.aggregate(s=Sum("amount"))["s"] == inv.total
    assert inv.status == "paid"


@pytest.mark.parametrize("text", ["1e3", "1_000", "NaN", "12,50", ""])
def test_a_credit_note_amount_follows_the_one_rule_of_typed_amounts(text: str) -> None:
    """attack-findings #8: the credit-note doors parse amounts with core.payments like the payment
    doors (an exponent was taken as a number here); blanks around a plain decimal are ignored."""
    from tarifa.services.invoicing import parse_amount

    with pytest.raises(CreditRefused, match=r"Amount .* is refused"):
        parse_amount(text)
    assert parse_amount(" 12.50 ") == D("12.50")


def test_the_profile_form_needs_only_the_cycles_own_field_and_names_the_customer(client, operator) -> None:  # type: ignore[no-untyped-def]
    from django.contrib.auth import get_user_model
    from django.urls import reverse

    client.force_login(get_user_model().objects.create_superuser("boss", "boss@example.com", "Boss-pass1"))
    url = reverse("admin:billing_billingprofile_add")
    base = {"customer": str(operator.pk), "discount_kind": "none", "discount_value": "0"}
    done = client.post(url, {**base, "cycle": "monthly", "day": "1", "weekday": "", "every_days": ""})
    assert done.status_code == 302, done.content.decode()[:3000]
    profile = BillingProfile.objects.get(customer=operator)
    assert (profile.day, profile.weekday, profile.every_days) == (1, 0, 30)

    again = client.post(url, {**base, "cycle": "monthly", "day": "1"}).content.decode()
    assert f"Customer &#x27;{operator}&#x27; is refused: already has a billing profile" in again
    profile.delete()
    page = client.post(url, {**base, "cycle": "custom", "every_days": "10", "anchor": ""}).content.decode()
    assert "Anchor date (empty) is refused: a custom cycle needs its anchor date" in page
    page = client.post(url, {**base, "cycle": "weekly", "day": "1", "weekday": ""}).content.decode()
    assert "Billing weekday (empty) is refused: a weekly cycle needs it" in page
    assert not BillingProfile.objects.exists()
