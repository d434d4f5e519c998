"""``tarifa notices run``: one round of the notices (the worker does this on its own schedule)."""

from __future__ import annotations

import typer

from tarifa.bootstrap import start_django

BATCH = 200

notices_app = typer.Typer(no_args_is_help=True, help="Low-balance, card-expiry, invoice and payment e-mails.")


@notices_app.command("run")
def run(
    check_only: bool = typer.Option(False, "--check-only", help="Queue what is due; send nothing."),
    retry_now: bool = typer.Option(
        False, "--retry-now", help="Try the e-mails waiting to retry now, not at their retry time (SMTP fixed)."
    ),
) -> None:
    """Queue the notices due (low balances, expiring cards, invoices whose e-mail was not queued)
    and send the outbox; safe to run again or next to a running worker: each notice is sent once."""
    start_django()
    from tarifa.notices import sender
    from tarifa.notices.sender import Delivery, deliver
    from tarifa.notices.service import check

    low, cards, invoices = check()
    typer.echo(f"queued {low} low-balance, {cards} card-expiry and {invoices} invoice notice(s)")
    if check_only:
        return
    if retry_now:
        typer.echo(f"{sender.retry_now()} e-mail(s) waiting to retry made due now")
    result = Delivery()
    while True:  # batch after batch until nothing due is left (failures wait for their retry time)
        batch = deliver(limit=BATCH)
        result.sent, result.retrying, result.failed = (
            result.sent + batch.sent,
            result.retrying + batch.retrying,
            result.failed + batch.failed,
        )
        if batch.sent + batch.retrying + batch.failed < BATCH:
            break
    # rows still waiting count too, not only those that failed in this run (their time may not have come)
    result.retrying = sender.waiting()
    typer.echo(f"sent {result.sent} e-mail(s); {result.retrying} waiting to retry, {result.failed} failed")
    if result.retrying or result.failed:
        raise typer.Exit(1)
