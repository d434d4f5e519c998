"""``tarifa penalties run``, ``tarifa deposits run``, ``tarifa deposit post|return`` and
``tarifa tax add|list``: thin doors onto the same services and rules as the back office
(docs/penalties.md, docs/deposits.md, docs/taxes.md)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import typer

from tarifa.bootstrap import start_django
from tarifa.core.instants import day_rule

penalties_app = typer.Typer(no_args_is_help=True, help="Late fees on invoices overdue past the payment term.")
deposits_app = typer.Typer(no_args_is_help=True, help="Deposit interest and automatic adjustment (monthly).")
deposit_app = typer.Typer(no_args_is_help=True, help="Post or return a customer's deposit by hand.")
tax_app = typer.Typer(no_args_is_help=True, help="The operator's tax table.")


def _day(text: str | None, option: str) -> date:
    today = datetime.now(UTC).date()
    if text is None:
        return today
    try:
        day = date.fromisoformat(text)
    except ValueError:
        typer.echo(f"error: {option} {text!r} is refused: {day_rule(text)}", err=True)
        raise typer.Exit(2) from None
    if day > today:
        typer.echo(f"error: {option} {text!r} is refused: must not be after today ({today.isoformat()})", err=True)
        raise typer.Exit(2)
    return day


@penalties_app.command("run")
def penalties_run(
    on: str | None = typer.Option(None, "--date", help="Charge what is overdue on this day (YYYY-MM-DD); today."),
) -> None:
    """Post the late fee of every penalty period begun and not posted yet; safe to run again."""
    day = _day(on, "--date")
    start_django()
    from tarifa.services.penalties import run_penalties

    result = run_penalties(day)
    typer.echo(
        f"{result.invoices} overdue invoice(s) on {day.isoformat()}: {result.posted} penalty(ies) posted, "
        f"total {result.amount}"
    )
    for number, reason in result.failed:
        typer.echo(f"error: the penalty of invoice {number} was not posted (tried again next run): {reason}", err=True)
    if result.failed:
        raise typer.Exit(1)


@deposits_app.command("run")
def deposits_run(
    on: str | None = typer.Option(None, "--date", help="Run as on this day (YYYY-MM-DD); default today."),
) -> None:
    """Credit deposit interest of whole months and adjust deposits to usage; safe to run again."""
    day = _day(on, "--date")
    start_django()
    from tarifa.services.deposits import run_deposits

    r = run_deposits(day)
    typer.echo(
        f"{r.deposits} deposit(s): {r.interest_posted} interest posting(s), total {r.interest}; "
        f"requested {r.requested}, released {r.released}"
    )
    for who, reason in r.failed:
        typer.echo(f"error: the deposit of {who} was not adjusted (tried again next run): {reason}", err=True)
    if r.failed:
        raise typer.Exit(1)


def _move(action: str, customer: str, amount: str, reference: str, reason: str) -> None:
    start_django()
    from tarifa.billing.deposits import Refused, move_deposit
    from tarifa.billing.models import Deposit
    from tarifa.billing.payments import cli_actor, find_customer
    from tarifa.core.payments import parse_amount

    try:
        target = find_customer(customer)
        posted = move_deposit(
            target, action, parse_amount(amount), reference=reference, reason=reason, actor=cli_actor()
        )
    except Refused as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    held = Deposit.objects.get(customer=target).held
    typer.echo(
        f"deposit {posted.amount:+} {posted.currency} posted to {target} as transaction {posted.pk} "
        f"(reference {posted.reference}); deposit held {held}, balance {posted.balance_after}"
    )


@deposit_app.command("post", context_settings={"ignore_unknown_options": True})
def deposit_post(
    customer: str = typer.Argument(..., help="Customer: web user name, account code or id."),
    amount: str = typer.Argument(..., help="Amount, e.g. 100.00 (charged to the balance, then held)."),
    reference: str = typer.Option(..., "--reference", help="Receipt or ticket reference; unique."),
    reason: str = typer.Option("", "--reason", help="Why (stored with the Transaction)."),
) -> None:
    """Take a deposit: charge the balance and hold the amount."""
    _move("post", customer, amount, reference, reason)


@deposit_app.command("return", context_settings={"ignore_unknown_options": True})
def deposit_return(
    customer: str = typer.Argument(..., help="Customer: web user name, account code or id."),
    amount: str = typer.Argument(..., help="Amount, at most what is held."),
    reference: str = typer.Option(..., "--reference", help="Receipt or ticket reference; unique."),
    reason: str = typer.Option("", "--reason", help="Why (stored with the Transaction)."),
) -> None:
    """Return (part of) a deposit: credit the balance and hold less."""
    _move("return", customer, amount, reference, reason)


@tax_app.command("add", context_settings={"ignore_unknown_options": True})
def tax_add(
    name: str = typer.Argument(..., help="As printed on the invoice."),
    rate: str = typer.Option(..., "--rate", help="Percent (percent taxes) or the amount (fixed taxes)."),
    kind: str = typer.Option("percent", "--kind", help="percent or fixed."),
    flag: str = typer.Option("VAT", "--flag", help="Binds customers with this VAT/Tax flag: VAT or TAX."),
    currency: str = typer.Option("", "--currency", help="A fixed tax's currency."),
    order: int = typer.Option(0, "--order", help="Taxes apply in this order."),
    compound: bool = typer.Option(False, "--compound", help="Base includes the earlier taxes."),
    origin_country: str = typer.Option("", "--origin-country", help="Only calls from this country (alpha-2)."),
    origin_region: str = typer.Option("", "--origin-region", help="With the country: only this region."),
    applies_to: str | None = typer.Option(None, "--customer", help="Only this customer (or reseller subtree)."),
    valid_from: str | None = typer.Option(None, "--from", help="First day (YYYY-MM-DD)."),
    valid_to: str | None = typer.Option(None, "--to", help="First day it no longer applies (YYYY-MM-DD)."),
) -> None:
    """Add a tax to the table, checked by the same rules as the back office."""
    start_django()
    from django.core.exceptions import ValidationError

    from tarifa.billing.models import TaxRate
    from tarifa.billing.payments import Refused, find_customer
    from tarifa.core.taxes import TaxRefused, parse_rate

    def when(text: str | None, label: str) -> date | None:
        if text is None:
            return None
        try:
            return date.fromisoformat(text)
        except ValueError:
            typer.echo(f"error: {label} {text!r} is refused: {day_rule(text)}", err=True)
            raise typer.Exit(2) from None

    try:
        row = TaxRate(
            name=name,
            rate=parse_rate(rate, "Rate"),
            kind=kind,
            flag=flag,
            currency=currency,
            order=order,
            compound=compound,
            origin_country=origin_country,
            origin_region=origin_region,
            applies_to=find_customer(applies_to) if applies_to else None,
            valid_from=when(valid_from, "--from"),
            valid_to=when(valid_to, "--to"),
        )
        row.full_clean()
    except (Refused, TaxRefused) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    except ValidationError as exc:
        for messages in exc.message_dict.values():
            for message in messages:
                typer.echo(f"error: {message}", err=True)
        raise typer.Exit(2) from None
    row.save()
    typer.echo(f"tax {row.pk} {row.name!r} added: {row.kind} {row.rate.normalize():f} for {row.flag} customers")


@tax_app.command("list")
def tax_list() -> None:
    """The tax table, in the order taxes apply."""
    start_django()
    from tarifa.billing.models import TaxRate
    from tarifa.core.money import shown_amount

    for row in TaxRate.objects.select_related("applies_to"):
        scope = str(row.applies_to) if row.applies_to else "all"
        origin = f" origin {row.origin_country}{'/' + row.origin_region if row.origin_region else ''}"
        typer.echo(
            f"{row.pk}\t{row.flag}\t{row.order}\t{row.name}\t{row.kind} {shown_amount(row.rate, 0)}{' ' + row.currency if row.currency else ''}"
            f"{' compound' if row.compound else ''}{origin if row.origin_country else ''}\t{scope}\t"
            f"{row.valid_from or '-'}..{row.valid_to or '-'}"
        )


def billing_jobs(on: date | None = None) -> list[str]:
    """The worker's billing jobs (penalties, deposits): one line per job that did something."""
    from tarifa.services.deposits import run_deposits
    from tarifa.services.penalties import run_penalties

    lines = []
    penalties = run_penalties(on)
    if penalties.posted:
        lines.append(f"posted {penalties.posted} penalty(ies), total {penalties.amount}")
    deposits = run_deposits(on)
    if deposits.interest_posted or deposits.requested or deposits.released:
        lines.append(
            f"deposits: {deposits.interest_posted} interest posting(s), requested {deposits.requested}, "
            f"released {deposits.released}"
        )
    lines += [f"error: {label}: {reason}" for label, reason in penalties.failed + deposits.failed]
    return lines


def register(app: typer.Typer) -> None:
    app.add_typer(penalties_app, name="penalties")
    app.add_typer(deposits_app, name="deposits")
    app.add_typer(deposit_app, name="deposit")
    app.add_typer(tax_app, name="tax")
