"""``tarifa payment add``: payments, credits, refunds and adjustments from the command line,
through the same service and rule as the back office (:mod:`tarifa.billing.payments`)."""

from __future__ import annotations

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
) -> None:
    """Post a payment, credit, refund or adjustment on a customer's balance (through the ledger)."""
    start_django()
    from tarifa.billing.payments import Refused, add_money, cli_actor, find_customer, find_own_balance_account
    from tarifa.core.payments import MoneyRequest, parse_amount

    try:
        target = find_customer(customer)
        own = find_own_balance_account(target, account) if account is not None else None
        request = MoneyRequest(
            kind=kind, amount=parse_amount(amount), reference=reference, reason=reason, currency=currency
        )
        posted = add_money(target, request, actor=cli_actor(), account=own)
    except Refused as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(
        f"{posted.kind} {posted.amount:+} {posted.currency} posted to {own or target} as transaction {posted.pk} "
        f"(reference {posted.reference}); balance now {posted.balance_after}"
    )


def register(app: typer.Typer) -> None:
    app.add_typer(payment_app, name="payment")
