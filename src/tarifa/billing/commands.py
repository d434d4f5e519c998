"""``tarifa payment add``: payments, credits, refunds and adjustments from the command line,
through the same service and rule as the back office (:mod:`tarifa.billing.payments`)."""

from __future__ import annotations

import typer

payment_app = typer.Typer(no_args_is_help=True, help="Money an operator adds to or takes from a balance.")

KIND_HELP = ("payment (+, money received), credit (+, reason required), refund (-, at most the payments "
             "not yet refunded and the balance; reason required), adjustment (+ or - by the amount's sign; "
             "reason required; type a negative amount as it is, e.g. -2.50, anywhere on the line)")


@payment_app.command("add", context_settings={"ignore_unknown_options": True})
def add(
    customer: str = typer.Argument(..., help="Customer: web user name, account code or id."),
    amount: str = typer.Argument(..., help="Amount in the customer's currency in plain decimal notation, e.g. 25.00 "
                                 "or -2.50 (an adjustment's sign is its direction)."),
    kind: str = typer.Option("payment", "--kind", help=KIND_HELP),
    reference: str = typer.Option(..., "--reference", help="Receipt, bank or ticket reference; unique."),
    reason: str = typer.Option("", "--reason", help="Why (stored with the Transaction)."),
    currency: str | None = typer.Option(None, "--currency", help="Checked against the customer's currency."),
    account: str | None = typer.Option(
        None, "--account", help="Account code or name of one of the customer's accounts that keeps its own balance."),
) -> None:
    """Post a payment, credit, refund or adjustment on a customer's balance (through the ledger)."""
    from tarifa.cli import _django

    _django()
    from tarifa.billing.payments import Refused, add_money, cli_actor, find_customer, find_own_balance_account
    from tarifa.core.payments import MoneyRequest, parse_amount

    try:
        target = find_customer(customer)
        own = find_own_balance_account(target, account) if account is not None else None
        request = MoneyRequest(kind=kind, amount=parse_amount(amount), reference=reference, reason=reason,
                               currency=currency)
        posted = add_money(target, request, actor=cli_actor(), account=own)
    except Refused as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"{posted.kind} {posted.amount:+} {posted.currency} posted to {own or target} as transaction {posted.pk} "
               f"(reference {posted.reference}); balance now {posted.balance_after}")


charges_app = typer.Typer(no_args_is_help=True, help="Recurring and one-time charges of services with a plan.")


@charges_app.command("run")
def run(
    until: str | None = typer.Option(None, "--until", help="Post what is due by this day (YYYY-MM-DD, at most "
                                     "today UTC); default today."),
) -> None:
    """Post every service charge due and not posted yet (the worker does this on every sweep);
    safe to run again or next to a running worker: each charge is posted once."""
    from datetime import UTC, date, datetime

    from tarifa.cli import _django

    _django()
    from tarifa.billing.recurring import run_charges

    today = datetime.now(UTC).date()
    day = today
    if until is not None:
        try:
            day = date.fromisoformat(until)
        except ValueError:
            typer.echo(f"error: --until {until!r} is refused: must be a date as YYYY-MM-DD", err=True)
            raise typer.Exit(2) from None
        if day > today:
            typer.echo(f"error: --until {until!r} is refused: must not be after today ({today.isoformat()}); "
                       "charges are posted once due, never ahead", err=True)
            raise typer.Exit(2)
    result = run_charges(day)
    typer.echo(f"{result.services} service(s) checked up to {day.isoformat()}: {result.posted} charge(s) posted, "
               f"total {result.amount}; {result.blocked} account(s) blocked for unpaid charges")


def register(app: typer.Typer) -> None:
    app.add_typer(payment_app, name="payment")
    app.add_typer(charges_app, name="charges")
