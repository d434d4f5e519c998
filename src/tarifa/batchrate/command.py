"""The ``tarifa rate`` command: options, exit codes and the summary line (docs/batch-rating.md).

Only translates: the options to :func:`tarifa.batchrate.rating.rate_file`, its
:class:`~tarifa.batchrate.readers.InputError` to exit code 2 with every problem on stderr, an
``OSError`` on writing to exit code 1.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from tarifa.batchrate.rating import rate_file
from tarifa.batchrate.readers import InputError
from tarifa.core.numbering import DialingMode
from tarifa.core.rating import MAX_DECIMALS, Rounding

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add the ``rate`` command to the ``tarifa`` CLI."""

    @app.command("rate")
    def rate(
        deck: Path = typer.Option(
            ...,
            "--deck",
            exists=True,
            dir_okay=False,
            readable=True,
            help="Rate deck, CSV or XLSX (header prefix,destination,price_1,...; prefix and price_1 required).",
        ),
        cdrs: Path = typer.Option(
            ...,
            "--cdrs",
            exists=True,
            dir_okay=False,
            readable=True,
            help="CDR CSV with columns call_id,caller,callee,connect_time,duration.",
        ),
        out: Path = typer.Option(..., "--out", dir_okay=False, help="Rated CSV to write (replaced atomically)."),
        decimals: int = typer.Option(4, "--decimals", min=0, max=MAX_DECIMALS, help="Decimal places of each cost."),
        rounding: Rounding = typer.Option(Rounding.HALF_UP, "--rounding", help="Rounding of each call cost."),
        dialing_mode: DialingMode = typer.Option(
            DialingMode.E164, "--dialing-mode", help="How callee numbers are written: e164 or nanp."
        ),
        tz: str = typer.Option("UTC", "--tz", help="Time zone of the deck (periods, dates without offset)."),
    ) -> None:
        """Rate a CDR file against a rate deck, exactly (e.g. to check a vendor's invoice)."""
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise typer.BadParameter(f"unknown time zone {tz!r}", param_hint="--tz") from None
        try:
            summary = rate_file(
                deck,
                cdrs,
                out,
                decimals=decimals,
                rounding=rounding,
                dialing_mode=dialing_mode,
                tz_name=tz,
                progress=sys.stderr.isatty(),
            )
        except InputError as exc:
            sys.stderr.write("\n".join(exc.messages) + "\n")
            count = len(exc.messages)
            sys.stderr.write(f"error: malformed input ({count} problem{'s' * (count != 1)}); {out} not written\n")
            raise typer.Exit(2) from None
        except OSError as exc:
            sys.stderr.write(f"error: {exc}\n")
            raise typer.Exit(1) from None
        typer.echo(summary.line())
