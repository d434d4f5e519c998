"""``tarifa signups expire``: give back the numbers of online sign-ups whose e-mail link was never
followed within TARIFA_SIGNUP_VERIFY_HOURS (the sign-up page does it too, on each visit)."""

from __future__ import annotations

import typer

signups_app = typer.Typer(no_args_is_help=True, help="Online sign-ups of the customer portal.")


@signups_app.command("expire")
def expire() -> None:
    """Expire the sign-ups past their link's time: their reserved DIDs become available again."""
    from tarifa.bootstrap import start_django

    start_django()
    from tarifa.portal.signup import expire_due

    count = expire_due()
    typer.echo(f"{count} sign-up{'s' if count != 1 else ''} expired")


def register(app: typer.Typer) -> None:
    app.add_typer(signups_app, name="signups")
