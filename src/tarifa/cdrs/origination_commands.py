"""``tarifa lata import`` and ``tarifa origination penalties``: origination from the command line."""

from __future__ import annotations

import re
from pathlib import Path

import typer

lata_app = typer.Typer(no_args_is_help=True, help="The NPA-NXX -> LATA/state table of LATA-based billing.")
origination_app = typer.Typer(no_args_is_help=True, help="Origination (inbound) billing jobs.")


@lata_app.command("import")
def import_(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="CSV with the columns npa_nxx,lata,state."),
    replace: bool = typer.Option(False, "--replace", help="Also remove the NPA-NXX entries the file does not list."),
) -> None:
    """Import the table: every row or, when a row is refused, none (each refusal names file, row,
    field and rule; exit code 2)."""
    from tarifa.bootstrap import start_django

    start_django()
    from tarifa.dids.lata import LataRejected, import_lata

    try:
        done = import_lata(file.read_bytes(), file.name, replace=replace)
    except LataRejected as exc:
        for problem in exc.problems:
            typer.echo(str(problem), err=True)
        typer.echo(f"{len(exc.problems)} problem(s); nothing was imported.", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"{file.name}: {done.added} added, {done.changed} changed, {done.removed} removed")


@origination_app.command("penalties")
def penalties(
    month: str = typer.Option(..., "--month", help="The closed calendar month (UTC), YYYY-MM."),
) -> None:
    """Post the short-call penalties of a closed month, once per customer, plan and month
    (running it again posts nothing new)."""
    from datetime import date

    from tarifa.bootstrap import start_django

    try:
        if not re.fullmatch(r"[0-9]{4}-[0-9]{2}", month):
            raise ValueError(month)
        first = date(int(month[:4]), int(month[5:]), 1)
    except ValueError:
        raise typer.BadParameter(f"{month!r} is refused: must be a month as YYYY-MM", param_hint="--month") from None
    start_django()
    from tarifa.cdrs.penalties import PeriodNotClosed, post_short_call_penalties

    try:
        posted = post_short_call_penalties(first)
    except PeriodNotClosed as exc:
        raise typer.BadParameter(str(exc), param_hint="--month") from None
    from tarifa.core.money import minor_unit, shown_amount

    for p in posted:
        state = "posted" if p.posted else "already posted"
        amount = f"{shown_amount(p.amount, minor_unit(p.currency))} {p.currency}" if p.currency else str(p.amount)
        typer.echo(f"customer {p.customer_id}, plan {p.plan}: {p.short} of {p.calls} short, {amount} {state}")
    typer.echo(
        f"{sum(p.posted for p in posted)} penalty(ies) posted, {sum(not p.posted for p in posted)} already posted"
    )


def register(app: typer.Typer) -> None:
    app.add_typer(lata_app, name="lata")
    app.add_typer(origination_app, name="origination")
