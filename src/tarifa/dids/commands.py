"""``tarifa did import|search|assign|release|status|order``: the DID inventory from the command
line, through the same services as the back office (:mod:`tarifa.dids.service`)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import typer

if TYPE_CHECKING:
    from tarifa.customers.models import Account
    from tarifa.dids.models import DidPlan

did_app = typer.Typer(no_args_is_help=True, help="The DID inventory: import, search, assign, release, order.")


def _setup() -> None:
    from tarifa.bootstrap import start_django

    start_django()


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def _date(value: str | None, option: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        _fail(f"{option} {value!r} is refused: must be a date such as 2026-12-31")


def _account(text: str) -> Account:
    from tarifa.dids.service import DidRefused, find_account

    try:
        return find_account(text, by_id=True)
    except DidRefused as exc:
        _fail(f"--{exc}")


def _plan(text: str) -> DidPlan:
    from tarifa.dids.models import DidPlan

    found = DidPlan.objects.filter(name=text).first()
    if found is None and text.isdigit() and len(text) <= 18:
        found = DidPlan.objects.filter(pk=int(text)).first()
    if found is None:
        known = ", ".join(repr(n) for n in DidPlan.objects.values_list("name", flat=True)[:20]) or "none yet"
        _fail(f"--plan {text!r} is refused: no DID plan has this name or id (known: {known})")
    return found


@did_app.command("import")
def import_(file: Path = typer.Argument(..., exists=True, dir_okay=False, help="CSV or XLSX inventory file.")) -> None:
    """Add numbers to the inventory; a file with any error adds nothing and lists every bad row.

    Columns (first row): number (required, international form), vendor, monthly_cost, plan,
    status (available, reserved, porting or disabled; default available)."""
    _setup()
    from tarifa.dids.imports import ImportRejected, import_file

    try:
        result = import_file(file.read_bytes(), file.name)
    except ImportRejected as exc:
        for error in exc.errors:
            typer.echo(str(error), err=True)
        if exc.more:
            typer.echo(f"... and {exc.more:,} more error(s), not listed.", err=True)
        typer.echo(f"{exc.count} error(s); nothing was imported.", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"{file.name}: {result}")


@did_app.command("search")
def search(
    country: str | None = typer.Option(None, help="ISO 3166 country code, e.g. US."),
    area_code: str | None = typer.Option(None, "--area-code", help="Area code, e.g. 212."),
    pattern: str | None = typer.Option(None, help="Local number pattern: digits, * (any digits), ? (one digit)."),
    status: str = typer.Option("available", help="available (sellable today), any, or a stored status."),
    limit: int = typer.Option(50, min=1, max=10000, help="At most this many numbers."),
) -> None:
    """List numbers by country, area code and pattern (sellable ones by default)."""
    _setup()
    from tarifa.core.money import minor_unit, shown_amount
    from tarifa.customers.choices import CustomerKind
    from tarifa.customers.models import Customer
    from tarifa.dids.service import DidRefused, search_dids, today

    try:
        found = list(
            search_dids(
                country=country, area_code=area_code, pattern=pattern, status=None if status == "any" else status
            ).select_related("vendor")[:limit]
        )
    except DidRefused as exc:
        _fail(str(exc))
    day = today()
    # the monthly cost is the vendor's price, in its currency; a number without a vendor: the operator's
    own = Customer.objects.filter(kind=CustomerKind.OPERATOR).values_list("currency", flat=True).first() or "USD"
    for did in found:
        shown = did.effective_status(day).value
        until = f" until {did.quarantine_until}" if shown == "quarantined" else ""
        currency = did.vendor.currency if did.vendor else own
        cost = f"{shown_amount(did.monthly_cost, minor_unit(currency))} {currency}"
        typer.echo(f"+{did.number}\t{did.country}\t{did.area_code}\t{shown}{until}\t{cost}")
    typer.echo(f"{len(found)} number(s)", err=True)


@did_app.command("assign")
def assign(
    number: str = typer.Argument(..., help="The DID, e.g. +12125551234."),
    account: str = typer.Option(..., "--account", help="Account code, name or id."),
    plan: str = typer.Option(..., "--plan", help="DID plan name or id."),
    activation_date: str | None = typer.Option(None, "--activation-date", help="YYYY-MM-DD; default today (UTC)."),
    mac_address: str = typer.Option("", "--mac-address"),
    username: str = typer.Option("", "--username"),
    password_prompt: bool = typer.Option(
        False, "--password", help="Ask for the device password (typed hidden, never on the command line)."
    ),
    cost_center: str = typer.Option("", "--cost-center", help="Location / cost center."),
    out_payment_rate: str = typer.Option("0", "--out-payment-rate", help="Per inbound minute credited to the owner."),
) -> None:
    """Assign an available number to an account with a plan; a number that is not available is
    refused with the reason (its status, its account, the end of its quarantine)."""
    when = _date(activation_date, "--activation-date")
    try:
        rate = Decimal(out_payment_rate)
    except InvalidOperation:
        _fail(f"--out-payment-rate {out_payment_rate!r} is refused: must be a decimal amount such as 0.005")
    password = typer.prompt("Password", hide_input=True, confirmation_prompt=True) if password_prompt else ""
    _setup()
    from tarifa.dids.service import DidOptions, DidRefused, assign_did, find_did

    try:
        did = assign_did(
            find_did(number),
            _account(account),
            _plan(plan),
            when,
            DidOptions(
                mac_address=mac_address,
                username=username,
                password=password,
                cost_center=cost_center,
                out_payment_rate=rate,
            ),
        )
    except DidRefused as exc:
        _fail(str(exc))
    typer.echo(f"+{did.number} assigned to {did.account} with plan {did.plan} from {did.activation_date}")


@did_app.command("release")
def release(
    number: str = typer.Argument(..., help="The DID, e.g. +12125551234."),
    on: str | None = typer.Option(None, "--on", help="Release date YYYY-MM-DD; default today (UTC)."),
    quarantine_days: int | None = typer.Option(
        None, "--quarantine-days", help="Default TARIFA_DID_QUARANTINE_DAYS (90)."
    ),
) -> None:
    """Take a number off its account; it is quarantined, then available again."""
    when = _date(on, "--on")
    _setup()
    from tarifa.dids.service import DidRefused, find_did, release_did

    try:
        did = release_did(find_did(number), when, quarantine_days=quarantine_days)
    except DidRefused as exc:
        _fail(str(exc))
    typer.echo(f"+{did.number} released; quarantined until {did.quarantine_until}")


@did_app.command("status")
def status(
    number: str = typer.Argument(..., help="The DID, e.g. +12125551234."),
    new: str = typer.Argument(..., help="available, reserved, porting or disabled."),
) -> None:
    """Change a number's status (assign and release have their own commands)."""
    _setup()
    from tarifa.dids.service import DidRefused, find_did, set_status

    try:
        did = set_status(find_did(number), new)
    except DidRefused as exc:
        _fail(str(exc))
    typer.echo(f"+{did.number} is now {did.status}")


@did_app.command("order")
def order(
    country: str = typer.Option(..., "--country", help="ISO 3166 country code, e.g. US."),
    account: str = typer.Option(..., "--account", help="Account code, name or id."),
    plan: str = typer.Option(..., "--plan", help="DID plan name or id."),
    area_code: str | None = typer.Option(None, "--area-code", help="Area code, e.g. 212."),
    pattern: str | None = typer.Option(None, help="Local number pattern, e.g. 555*."),
    activation_date: str | None = typer.Option(None, "--activation-date", help="YYYY-MM-DD; default today (UTC)."),
    inventory_only: bool = typer.Option(False, "--inventory-only", help="Do not order from the provider."),
) -> None:
    """Assign a number to an account: from the available inventory, else from the provider
    (TARIFA_DID_PROVIDER_URL). A refused order leaves nothing assigned."""
    when = _date(activation_date, "--activation-date")
    _setup()
    from tarifa.dids.ordering import order_did
    from tarifa.dids.service import DidRefused

    try:
        result = order_did(
            _account(account),
            _plan(plan),
            country=country,
            area_code=area_code,
            pattern=pattern,
            activation_date=when,
            use_provider=not inventory_only,
        )
    except DidRefused as exc:
        _fail(str(exc))
    typer.echo(f"+{result.did.number} assigned to {result.did.account} (from the {result.source})")


def register(app: typer.Typer) -> None:
    app.add_typer(did_app, name="did")
