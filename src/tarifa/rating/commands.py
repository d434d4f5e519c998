"""``tarifa deck import|export|diff``: rate decks from the command line."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal, NoReturn

import typer

from tarifa.bootstrap import start_django

if TYPE_CHECKING:
    from tarifa.rating.decks import DeckRejected, Target

deck_app = typer.Typer(no_args_is_help=True, help="Import, export and compare rate decks.")

TariffOpt = typer.Option(None, "--tariff", help="Name or id of the tariff (selling side).")
SetOpt = typer.Option(None, "--destination-set", help="Name or id of the destination set (vendor side).")


def _at(value: str | None) -> datetime | None:
    if not value:
        return None
    from tarifa.core.instants import MomentRefused, parse_moment

    try:
        return parse_moment(value, "--at")
    except MomentRefused as exc:
        raise typer.BadParameter(str(exc), param_hint="--at") from None


_ID = re.compile(r"[0-9]{1,18}")  # an id as typed (ASCII digits, within a bigint)


def find_target(tariff: str | None = None, destination_set: str | None = None) -> Target:
    """The tariff or the destination set a command names, by name or by id (like ``payment add``;
    a name wins: a tariff may be called "2026"). The command line is the layer that knows both
    apps (docs/architecture.md, "Layers"); the deck service below takes either."""
    from tarifa.rating.models import Tariff
    from tarifa.routing.models import DestinationSet

    if bool(tariff) == bool(destination_set):
        raise ValueError("name exactly one of a tariff or a destination set")
    if tariff:
        found = Tariff.objects.filter(name=tariff).first() or (
            Tariff.objects.filter(pk=int(tariff)).first() if _ID.fullmatch(tariff) else None
        )
        if found is None:
            raise ValueError(f"tariff {tariff!r} does not exist (give its name or its id)")
        return found
    assert destination_set is not None
    found_set = DestinationSet.objects.filter(name=destination_set).first() or (
        DestinationSet.objects.filter(pk=int(destination_set)).first() if _ID.fullmatch(destination_set) else None
    )
    if found_set is None:
        raise ValueError(f"destination set {destination_set!r} does not exist (give its name or its id)")
    return found_set


def _target(tariff: str | None, destination_set: str | None) -> Target:
    start_django()
    try:
        return find_target(tariff, destination_set)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


def _rejected(exc: DeckRejected) -> NoReturn:
    for error in exc.errors:
        typer.echo(str(error), err=True)
    typer.echo(f"{len(exc.errors)} error(s); nothing was imported.", err=True)
    raise typer.Exit(2)


@deck_app.command("import")
def import_(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="CSV or XLSX deck."),
    tariff: str | None = TariffOpt,
    destination_set: str | None = SetOpt,
    mode: str = typer.Option(
        "add", help="add (add versions, keep history) or replace (also end-date the rates the deck lacks)."
    ),
    at: str | None = typer.Option(
        None,
        help="When rows without effective_from take effect (default now); no price before it ever changes.",
    ),
) -> None:
    """Import a deck; a deck with any error imports nothing and lists every bad row.

    A price change ends the version in force at --at and adds the new one from then, so calls
    before --at keep their price; an unchanged row changes nothing.
    """
    moment = _at(at)  # refused before anything is opened
    target = _target(tariff, destination_set)
    from tarifa.rating.decks import DeckRejected, import_file

    if mode not in ("add", "replace"):
        raise typer.BadParameter(f"{mode!r} must be add or replace", param_hint="--mode")
    try:
        result = import_file(target, file.read_bytes(), file.name, mode, moment)  # type: ignore[arg-type]
    except DeckRejected as exc:
        _rejected(exc)
    typer.echo(f"{target}: {result}")
    for line in result.details:
        typer.echo(f"  {line}")


@deck_app.command("export")
def export(
    out: Path = typer.Argument(..., dir_okay=False, help="Output file, .csv or .xlsx."),
    tariff: str | None = TariffOpt,
    destination_set: str | None = SetOpt,
) -> None:
    """Export every rate version in the import layout."""
    target = _target(tariff, destination_set)
    from tarifa.rating.decks import export_deck

    fmt: Literal["csv", "xlsx"] = "xlsx" if out.suffix.lower() == ".xlsx" else "csv"
    try:
        data = export_deck(target, fmt)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    out.write_bytes(data)
    typer.echo(f"{target}: written to {out}")


@deck_app.command("diff")
def diff(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="CSV or XLSX deck to compare."),
    tariff: str | None = TariffOpt,
    destination_set: str | None = SetOpt,
    at: str | None = typer.Option(None, help="Compare the rates in force at this moment (default now)."),
) -> None:
    """Added, removed and changed prefixes between the stored deck and a file."""
    moment = _at(at)  # refused before anything is opened
    target = _target(tariff, destination_set)
    from tarifa.rating.decks import DeckRejected, describe_change, diff_deck, parse_file

    try:
        rows = parse_file(file.read_bytes(), file.name, target.time_zone)
    except DeckRejected as exc:
        _rejected(exc)
    result = diff_deck(target, rows, moment)
    for row in result.added:
        typer.echo(f"+ {row.prefix} {row.period} {row.destination} price_1={row.price_1}".replace("  ", " "))
    for old in result.removed:
        typer.echo(f"- {old['prefix']} {old['period']} {old['destination']}".replace("  ", " "))
    for old, new, names in result.changed:
        typer.echo(f"~ {new.prefix} {new.period} {describe_change(old, new, names)}".replace("  ", " "))
    typer.echo(
        f"{len(result.added)} added, {len(result.removed)} removed, {len(result.changed)} changed, "
        f"{result.unchanged} unchanged"
    )


def register(app: typer.Typer) -> None:
    app.add_typer(deck_app, name="deck")
