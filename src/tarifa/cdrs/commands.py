"""``tarifa cdr import`` and ``tarifa cdr rerate``."""

from __future__ import annotations

import csv
import getpass
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import typer

from tarifa.bootstrap import start_django

if TYPE_CHECKING:
    from rich.progress import Progress

cdr_app = typer.Typer(no_args_is_help=True, help="Import and re-rate call detail records.")

EXIT_REJECTED = 3


def _progress(total: int) -> Progress:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        transient=True,
        disable=not sys.stderr.isatty(),
    )


@cdr_app.command("import")
def import_(
    file: Path = typer.Argument(..., exists=True, dir_okay=False),
    format: str = typer.Option(
        ..., "--format", help="asterisk, freeswitch-csv, freeswitch-json, kamailio, tarifa, tarifa-json"
    ),
    switch: str = typer.Option(
        "",
        "--switch",
        help="Name of the switch (POP) that wrote the file: part of the idempotency key, and checked against the accounts' POP restrictions (default: the file's name).",
    ),
    tz: str = typer.Option("UTC", "--tz", help="Time zone of timestamps written without an offset."),
    rejects: Path | None = typer.Option(
        None, "--rejects", help="Where to write refused lines (default FILE.rejects.csv)."
    ),
    batch_size: int = typer.Option(20000, "--batch-size", min=1, max=100000, help="CDRs per database transaction."),
) -> None:
    """Store, rate and post every CDR of a file exactly once; bad lines go to a reject file."""
    start_django()
    from tarifa.cdrs.columns import read_canonical_csv
    from tarifa.cdrs.formats.registry import parse
    from tarifa.cdrs.ingest import ingest, ingest_frames
    from tarifa.core.cdr import FIELD_LIMITS, text_problem, too_long

    name = switch or file.stem
    problem = text_problem("switch", name) or (
        too_long("switch", name, FIELD_LIMITS["switch"]) if len(name) > FIELD_LIMITS["switch"] else None
    )
    if problem:  # part of every record's key: refused once, before anything is read
        hint = "" if switch else " (without --switch, the switch is the file's name)"
        typer.echo(f"error: {problem}{hint}", err=True)
        raise typer.Exit(2)
    if switch:  # a name no POP has would leave every call of a POP-restricted account unratable
        from tarifa.routing.models import Pop

        if not Pop.objects.filter(name=switch).exists():
            known = ", ".join(repr(n) for n in Pop.objects.order_by("name").values_list("name", flat=True))
            typer.echo(
                f"error: --switch {switch!r} is refused: no POP has that name (known: {known or 'none yet'}); "
                "give the POP that wrote the file (add one with tarifa token NAME --switch POP --create-pop)",
                err=True,
            )
            raise typer.Exit(2)

    # Invalid UTF-8 bytes become lone surrogates: the lines holding them are refused (and
    # written back byte for byte to the rejects file), the others are read.
    text = file.read_bytes().decode("utf-8-sig", errors="surrogateescape")
    try:
        if format == "tarifa":  # read straight into columns (the bulk path)
            chunks = read_canonical_csv(text, switch=switch or file.stem, tz=tz, chunk_lines=batch_size)
        else:
            records = parse(format, text, switch=switch or file.stem, tz=tz)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    total = text.count("\n") or 1
    started = datetime.now(UTC)
    with _progress(total) as bar:
        task = bar.add_task(f"Importing {_printable(file.name)}", total=total)
        if format == "tarifa":
            report = ingest_frames(
                chunks,
                source=str(file),
                fmt=format,
                switch=switch or file.stem,
                started_by=getpass.getuser(),
                progress=lambda n: bar.advance(task, n),
            )
        else:
            report = ingest(
                records,
                source=str(file),
                fmt=format,
                switch=switch or file.stem,
                started_by=getpass.getuser(),
                progress=lambda n: bar.advance(task, n),
                batch_size=batch_size,
                parallel=True,
            )
    seconds = max((datetime.now(UTC) - started).total_seconds(), 1e-9)  # float-ok: elapsed time
    typer.echo(f"{_printable(file.name)}: {report.summary()} ({report.received / seconds:,.0f} CDR/s)")
    if report.rejected:
        target = rejects or file.with_name(file.name + ".rejects.csv")
        with _private(target) as out:
            writer = csv.writer(out)
            writer.writerow(["line", "reason", "text"])
            for error in report.rejected:
                writer.writerow([error.line, error.reason, error.text])
        for error in report.rejected[:20]:
            typer.echo(str(error), err=True)
        typer.echo(f"{len(report.rejected)} line(s) refused, written to {_printable(str(target))}", err=True)
        raise typer.Exit(EXIT_REJECTED)


def _private(target: Path) -> TextIO:
    """The rejects file, opened for writing and readable by its owner only (600, like the files in
    var/): its lines are the refused CDRs -- callers, callees, accounts -- which other local users
    must not read. A file already there is emptied and tightened to 600 before anything is written."""
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
    except OSError:
        os.close(fd)
        raise
    return open(fd, "w", newline="", encoding="utf-8", errors="surrogateescape")


def _printable(name: str) -> str:
    """A file name as printed: invalid UTF-8 bytes (which Linux names may hold) escaped."""
    return name.encode("utf-8", "backslashreplace").decode("utf-8")


def _day(value: str | None, name: str) -> datetime | None:
    if not value:
        return None
    from tarifa.core.instants import MomentRefused, parse_moment

    try:
        return parse_moment(value, name)
    except MomentRefused as exc:
        raise typer.BadParameter(str(exc), param_hint=name) from None


@cdr_app.command("rerate")
def rerate(
    unrated: bool = typer.Option(False, "--unrated", help="Re-rate every unratable CDR."),
    start: str | None = typer.Option(None, "--from", help="Calls started at or after (ISO 8601)."),
    end: str | None = typer.Option(None, "--to", help="Calls started before (ISO 8601)."),
    customer: str | None = typer.Option(None, "--customer", help="Account code or web user name of the customer."),
    reason: str = typer.Option(..., "--reason", help="Why: recorded with every adjustment."),
    by: str = typer.Option("", "--by", help="Who re-rates (default: the login name)."),
) -> None:
    """Re-rate CDRs after a tariff fix; only the difference is posted, as adjustments."""
    since, before = _day(start, "--from"), _day(end, "--to")  # refused before anything is opened
    start_django()
    from tarifa.cdrs.rerate import Criteria
    from tarifa.cdrs.rerate import rerate as run

    if not unrated and not (start or end or customer):
        raise typer.BadParameter("say what to re-rate: --unrated, or --from/--to and/or --customer")
    criteria = Criteria(unrated_only=unrated, start=since, end=before, customer=customer)
    try:
        result = run(criteria, reason=reason, by=by or getpass.getuser())
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(
        f"{result.examined} examined, {result.changed} changed, {result.still_unrated} still unratable, "
        f"adjustments {result.adjustment_total}"
    )


def register(app: typer.Typer) -> None:
    app.add_typer(cdr_app, name="cdr")
