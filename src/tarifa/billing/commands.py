"""``tarifa payment add``: payments, credits, refunds and adjustments from the command line,
through the same service and rule as the back office (:mod:`tarifa.billing.payments`)."""

from __future__ import annotations

from decimal import Decimal

import typer

from tarifa.bootstrap import start_django

payment_app = typer.Typer(no_args_is_help=True, help="Money an operator adds to or takes from a balance.")

KIND_HELP = (
    "payment (+, money received), credit (+, reason required), refund (-, at most the payments "
    "not yet refunded and the balance; reason required), adjustment (+ or - by the amount's sign; "
    "reason required; type a negative amount as it is, e.g. -2.50, anywhere on the line)"
)


@payment_app.command("add", context_settings={"ignore_unknown_options": True})
def add(
    customer: str = typer.Argument(..., help="Customer: web user name, account code or id."),
    amount: str = typer.Argument(
        ...,
        help="Amount in the customer's currency in plain decimal notation, e.g. 25.00 "
        "or -2.50 (an adjustment's sign is its direction).",
    ),
    kind: str = typer.Option("payment", "--kind", help=KIND_HELP),
    reference: str = typer.Option(..., "--reference", help="Receipt, bank or ticket reference; unique."),
    reason: str = typer.Option("", "--reason", help="Why (stored with the Transaction)."),
    currency: str | None = typer.Option(None, "--currency", help="Checked against the customer's currency."),
    account: str | None = typer.Option(
        None, "--account", help="Account code or name of one of the customer's accounts that keeps its own balance."
    ),
    method: str = typer.Option("", "--method", help="bank, cash, cheque, card or other (how the money moved)."),
    invoice: str | None = typer.Option(
        None, "--invoice", help="Invoice number to allocate a payment or credit to (default: oldest open first)."
    ),
) -> None:
    """Post a payment, credit, refund or adjustment on a customer's balance (through the ledger)."""
    start_django()
    from tarifa.billing.payments import (
        Refused,
        add_money,
        cli_actor,
        find_customer,
        find_invoice,
        find_own_balance_account,
    )
    from tarifa.core.payments import MoneyRequest, parse_amount

    try:
        target = find_customer(customer)
        own = find_own_balance_account(target, account) if account is not None else None
        request = MoneyRequest(
            kind=kind,
            amount=parse_amount(amount),
            reference=reference,
            reason=reason,
            currency=currency,
            method=method,
        )
        chosen = find_invoice(target, invoice) if invoice is not None else None
        posted = add_money(target, request, actor=cli_actor(), account=own, invoice=chosen)
    except Refused as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    from tarifa.core.money import format_money

    places = target.billing_decimals
    shown = ("+" if posted.amount > 0 else "") + format_money(posted.amount, posted.currency, places)
    typer.echo(
        f"{posted.kind} {shown} posted to {own or target} as transaction {posted.pk} "
        f"(reference {posted.reference}); balance now {format_money(posted.balance_after, posted.currency, places)}"
    )


def statement(
    customer: str = typer.Argument(..., help="Customer: web user name, account code or id."),
    start: str | None = typer.Option(None, "--from", help="First day (YYYY-MM-DD, UTC); default: the beginning."),
    end: str | None = typer.Option(None, "--to", help="Last day (YYYY-MM-DD, UTC); default: today."),
    csv: bool = typer.Option(False, "--csv", help="Write CSV instead of a table."),
) -> None:
    """Statement of account: opening balance, every Transaction with the running balance, closing balance."""
    start_django()
    from tarifa.billing.payments import Refused, find_customer
    from tarifa.billing.statement import csv_text, parse_day, statement_dataset
    from tarifa.billing.statement import statement as read_statement
    from tarifa.core.money import format_money

    try:
        target = find_customer(customer)
        st = read_statement(target, parse_day(start, "from"), parse_day(end, "to"))
    except Refused as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if csv:
        typer.echo(csv_text(statement_dataset(target, st)), nl=False)
        return

    def money_text(amount: Decimal) -> str:  # the PDF's formatter, the customer's billing decimals
        return format_money(amount, st.currency, target.billing_decimals)

    period = f"{st.start or 'the beginning'} to {st.end or 'now'}"
    typer.echo(f"Statement of account: {target}, {period} ({st.currency})")
    typer.echo(f"{'':19}  {'opening balance':<40} {'':>14} {money_text(st.opening):>14}")
    for line in st.lines:
        r = line.row
        first, *rest = statement_text(r.kind, r.description, r.reference)
        amount = ("+" if r.amount > 0 else "") + money_text(r.amount)
        typer.echo(f"{r.at:%Y-%m-%d %H:%M:%S}  {first:<40} {amount:>14} {money_text(line.balance):>14}")
        for more in rest:
            typer.echo(f"{'':19}    {more}")
    typer.echo(f"{'':19}  {'closing balance':<40} {'':>14} {money_text(st.closing):>14}")
    typer.echo(f"money in {money_text(st.money_in)}, money out {money_text(st.money_out)}")


def statement_text(kind: str, description: str, reference: str, width: int = 40) -> list[str]:
    """What a statement line says, in full: kind, description and the reference when the description
    does not name it (nor the document it belongs to), wrapped at ``width`` between words (never inside a number such as
    INV-2026-000001: a word longer than the width stays whole on its line)."""
    import textwrap

    what = f"{kind} {description}".strip()
    if reference and reference.split(":")[0] not in what:  # INV-...:discount is named by its invoice
        what += f" (ref. {reference})"
    return textwrap.wrap(what, width, break_long_words=False, break_on_hyphens=False) or [""]


def receivables(
    as_of: str | None = typer.Option(None, "--as-of", help="The day the ages are counted to (YYYY-MM-DD, UTC)."),
    csv: bool = typer.Option(False, "--csv", help="Write CSV instead of a table."),
) -> None:
    """Aged receivables: each customer's unpaid issued invoices by days past due (0-30, 31-60, 61-90, 90+)."""
    start_django()
    from tarifa.billing.payments import Refused
    from tarifa.billing.statement import csv_text, parse_day, receivables_dataset
    from tarifa.billing.statement import receivables as read_receivables
    from tarifa.core.money import format_money
    from tarifa.core.statement import BUCKETS
    from tarifa.customers.models import Customer

    try:
        day = parse_day(as_of, "as-of")
    except Refused as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    rows = read_receivables(Customer.objects.all(), day)
    if csv:
        typer.echo(csv_text(receivables_dataset(rows)), nl=False)
        return
    if not rows:
        typer.echo("no unpaid issued invoices")
        return
    typer.echo(f"{'customer':<40} {'cur':<4}" + "".join(f"{b:>14}" for b in BUCKETS) + f"{'total':>14}")
    for customer, aging in rows:

        def money_text(amount: Decimal, customer: Customer = customer) -> str:
            return format_money(amount, customer.currency, customer.billing_decimals)

        typer.echo(
            f"{str(customer)[:40]:<40} {customer.currency:<4}"
            + "".join(f"{money_text(aging.buckets[b]):>14}" for b in BUCKETS)
            + f"{money_text(aging.total):>14}"
        )


def register(app: typer.Typer) -> None:
    app.add_typer(payment_app, name="payment")
    app.command("statement")(statement)
    app.command("receivables")(receivables)
