"""``tarifa worker`` (the background jobs) and ``tarifa charges run``."""

from __future__ import annotations

import time

import typer

from tarifa.bootstrap import start_django

charges_app = typer.Typer(no_args_is_help=True, help="Recurring and one-time charges of services with a plan.")


@charges_app.command("run")
def run(
    until: str | None = typer.Option(
        None, "--until", help="Post what is due by this day (YYYY-MM-DD, at most today UTC); default today."
    ),
) -> None:
    """Post every service charge due and not posted yet (the worker does this on every sweep);
    safe to run again or next to a running worker: each charge is posted once."""
    from datetime import UTC, date, datetime

    start_django()
    from tarifa.services.recurring import run_charges

    today = datetime.now(UTC).date()
    day = today
    if until is not None:
        try:
            day = date.fromisoformat(until)
        except ValueError:
            typer.echo(f"error: --until {until!r} is refused: must be a date as YYYY-MM-DD", err=True)
            raise typer.Exit(2) from None
        if day > today:
            typer.echo(
                f"error: --until {until!r} is refused: must not be after today ({today.isoformat()}); "
                "charges are posted once due, never ahead",
                err=True,
            )
            raise typer.Exit(2)
    result = run_charges(day)
    typer.echo(
        f"{result.services} service(s) checked up to {day.isoformat()}: {result.posted} charge(s) posted, "
        f"total {result.amount}; {result.blocked} account(s) blocked for unpaid charges"
    )
    for label, reason in result.failed:
        typer.echo(f"error: the charges of {label} were not posted (tried again next run): {reason}", err=True)
    if result.failed:
        raise typer.Exit(1)


def worker(
    interval: float = typer.Option(5.0, "--interval", min=0.5, help="Seconds between sweeps."),  # float-ok: seconds
    once: bool = typer.Option(False, "--once", help="Sweep once and exit."),
    charges_every: float = typer.Option(  # float-ok: seconds
        300.0,
        "--charges-every",
        min=1.0,
        help="Seconds between runs of the service charges (each reads every service with a plan).",
    ),
    notices_every: float = typer.Option(  # float-ok: seconds
        60.0, "--notices-every", min=1.0, help="Seconds between low-balance and card-expiry checks."
    ),
) -> None:
    """Background jobs: expire stale reservations, purge old CPS counters, post service charges due,
    queue and send notices (the outbox is sent on every sweep)."""
    start_django()
    from tarifa.calls.reservations import sweep
    from tarifa.notices.worker import NoticeJob
    from tarifa.services.recurring import run_charges

    charged_at: float | None = None  # float-ok: monotonic seconds
    notices = NoticeJob(notices_every, typer.echo)
    while True:
        # An error in one job is logged (one line, its reason) and the sweeps go on: a worker that
        # exits stops expiring reservations for every call.
        try:
            expired, purged = sweep()
            if expired or purged or once:
                typer.echo(f"expired {expired} reservation(s), purged {purged} counter row(s)")
        except Exception as exc:  # noqa: BLE001 - logged; the next sweep tries again
            typer.echo(f"error: the reservation sweep failed (tried again next sweep): {_reason(exc)}", err=True)
        if charged_at is None or time.monotonic() - charged_at >= charges_every:
            charged_at = time.monotonic()
            try:
                charged = run_charges()
            except Exception as exc:  # noqa: BLE001 - logged; the next run tries again
                typer.echo(f"error: the service charges run failed (tried again next run): {_reason(exc)}", err=True)
            else:
                if charged.posted or once:
                    typer.echo(f"posted {charged.posted} service charge(s), total {charged.amount}")
                for label, reason in charged.failed:
                    typer.echo(
                        f"error: the charges of {label} were not posted (tried again next run): {reason}", err=True
                    )
        notices.sweep(once)
        if once:
            return
        time.sleep(interval)


def _reason(exc: BaseException) -> str:
    """One line: the error's type and message, line breaks flattened."""
    return " ".join(f"{type(exc).__name__}: {exc}".split())


def register(app: typer.Typer) -> None:
    from tarifa.notices.commands import notices_app

    app.add_typer(charges_app, name="charges")
    app.add_typer(notices_app, name="notices")
    app.command("worker")(worker)
