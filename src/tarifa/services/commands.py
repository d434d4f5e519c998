"""``tarifa worker`` (the background jobs) and ``tarifa charges run``."""

from __future__ import annotations

import time

import typer

from tarifa.bootstrap import start_django
from tarifa.core.instants import day_rule

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
            typer.echo(f"error: --until {until!r} is refused: {day_rule(until)}", err=True)
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
    payments_every: float = typer.Option(  # float-ok: seconds
        60.0,
        "--payments-every",
        min=1.0,
        help="Seconds between runs of the automatic top-ups and of the allocation of unallocated payments.",
    ),
    billing_every: float = typer.Option(  # float-ok: seconds
        3600.0, "--billing-every", min=1.0, help="Seconds between runs of the late fees and deposit jobs."
    ),
    notices_every: float = typer.Option(  # float-ok: seconds
        60.0, "--notices-every", min=1.0, help="Seconds between low-balance and card-expiry checks."
    ),
) -> None:
    """Background jobs: expire stale reservations, purge old CPS counters, post service charges due,
    top up prepaid customers below their threshold, allocate payments to invoices issued since, late
    fees and deposit interest and adjustments, queue and send notices (the outbox on every sweep)."""
    start_django()
    from tarifa.calls.reservations import sweep
    from tarifa.notices.worker import NoticeJob
    from tarifa.services.recurring import run_charges

    charged_at: float | None = None  # float-ok: monotonic seconds
    paid_at: float | None = None  # float-ok: monotonic seconds
    billed_at: float | None = None  # float-ok: monotonic seconds
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
        if paid_at is None or time.monotonic() - paid_at >= payments_every:
            paid_at = time.monotonic()
            _payments(once)
        if billed_at is None or time.monotonic() - billed_at >= billing_every:
            billed_at = time.monotonic()
            try:
                from tarifa.services.billing_commands import billing_jobs

                lines = billing_jobs()
                for line in lines or (["late fees and deposits: nothing due"] if once else []):
                    typer.echo(line, err=line.startswith("error:"))
            except Exception as exc:  # noqa: BLE001 - logged; the next run tries again
                typer.echo(
                    f"error: the penalties and deposits run failed (tried again next run): {_reason(exc)}", err=True
                )
        notices.sweep(once)
        if once:
            return
        time.sleep(interval)


def _payments(verbose: bool) -> None:
    """The payment jobs of a sweep (services/topup.py, billing/allocation.py); errors are logged."""
    from tarifa.billing.allocation import apply_all_unallocated
    from tarifa.services.topup import run_topups

    try:
        topped = run_topups()
        placed = apply_all_unallocated()
    except Exception as exc:  # noqa: BLE001 - logged; the next run tries again
        typer.echo(f"error: the payment jobs failed (tried again next run): {_reason(exc)}", err=True)
        return
    if topped.charged or topped.declined or verbose:
        typer.echo(
            f"topped up {topped.charged} customer(s), total {topped.amount}; {topped.declined} declined; "
            f"{placed} allocation(s) of earlier payments"
        )
    for label, reason in topped.failed:
        typer.echo(f"error: the automatic top-up of {label} failed (tried again later): {reason}", err=True)


def _reason(exc: BaseException) -> str:
    """One line: the error's type and message, line breaks flattened."""
    return " ".join(f"{type(exc).__name__}: {exc}".split())


MAX_PDF_WORKERS = 256
invoice_app = typer.Typer(no_args_is_help=True, help="Invoices of ended billing periods, and credit notes.")


@invoice_app.command("run")
def invoice_run(
    period: str | None = typer.Option(
        None,
        "--period",
        help="YYYY-MM or YYYY-MM-DD..YYYY-MM-DD: invoice each customer's periods that end in these days "
        "(default: each customer's last ended period).",
    ),
    customer: str | None = typer.Option(None, "--customer", help="Only this customer (account code or web user name)."),
    pdf_workers: int | None = typer.Option(
        None,
        "--pdf-workers",
        help="Worker processes rendering the PDFs of the invoices issued (default: one per CPU core, fewer "
        "for a few invoices; 1: in this process; 0: none now, each is rendered on its first download).",
    ),
) -> None:
    """Issue one invoice per customer and ended period that has none yet, then render and store their
    PDFs in parallel worker processes; safe to run again (issues nothing twice) and after an
    interrupted run (finishes it; numbers stay gapless). A PDF that fails is named and rendered on
    its first download; the invoices stand."""
    if pdf_workers is not None and not 0 <= pdf_workers <= MAX_PDF_WORKERS:
        typer.echo(
            f"error: PDF workers {pdf_workers} is refused: must be a whole number from 0 to {MAX_PDF_WORKERS}", err=True
        )
        raise typer.Exit(2)
    start_django()
    from tarifa.core.invoicing import parse_period
    from tarifa.services.invoicing import PeriodNotEnded, run_invoices

    try:
        wanted = parse_period(period) if period is not None else None
        result = run_invoices(period=wanted, customer=customer)
    except PeriodNotEnded as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(result.summary())
    if result.issued:
        shown = result.issued if len(result.issued) <= 5 else [*result.issued[:2], "...", *result.issued[-2:]]
        typer.echo(f"numbers: {', '.join(shown)}")
    if result.ids and pdf_workers != 0:
        from tarifa.billing.pdfs import render_invoice_pdfs

        pdfs = render_invoice_pdfs(result.ids, pdf_workers)
        typer.echo(pdfs.summary())
        for number, reason in sorted(pdfs.failed.items()):
            typer.echo(f"warning: PDF of invoice {number} not rendered: {reason}", err=True)


@invoice_app.command("credit")
def invoice_credit(
    number: str = typer.Argument(..., help="The number of the issued invoice to credit."),
    amount: str = typer.Option(
        ...,
        "--amount",
        help="Amount to credit, tax included, e.g. 12.50 (at most what is left), or 'all' for what is left.",
    ),
    reason: str = typer.Option(..., "--reason", help="Why (printed on the credit note)."),
) -> None:
    """Issue a credit note against an issued invoice (the invoice itself never changes); the credit
    is posted to the customer's balance."""
    start_django()
    from tarifa.billing.payments import cli_actor
    from tarifa.services.invoicing import CreditRefused, credit_invoice, parse_amount

    try:
        wanted = None if amount.strip().lower() == "all" else parse_amount(amount)
        note = credit_invoice(number, wanted, reason, actor=cli_actor())
    except CreditRefused as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    from tarifa.core.money import format_money

    places = note.customer.billing_decimals
    given = format_money(-note.total, note.currency, places)
    if note.tax:
        net, tax = format_money(-note.subtotal, note.currency, places), format_money(-note.tax, note.currency, places)
        given += f" ({net} net + {tax} tax)"
    typer.echo(f"credit note {note.number} issued for invoice {number}: {given} given back")


def register(app: typer.Typer) -> None:
    from tarifa.notices.commands import notices_app

    app.add_typer(charges_app, name="charges")
    app.add_typer(invoice_app, name="invoice")
    app.add_typer(notices_app, name="notices")
    app.command("worker")(worker)
