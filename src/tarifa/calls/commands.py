"""``tarifa call simulate`` (the decision trace operators need when "my call fails") and
``tarifa worker`` (expires reservations of calls that never reported back, purges counters)."""

from __future__ import annotations

import json

import typer

from tarifa.bootstrap import start_django

call_app = typer.Typer(no_args_is_help=True, help="Call authorisation tools.")


@call_app.command("simulate")
def simulate(
    account: str = typer.Option(..., "--account", help="Account code, SIP user, trunk name or name of the account."),
    callee: str = typer.Option(..., "--callee", help="The number as the customer dials it."),
    caller: str = typer.Option("", "--caller"),
    source_ip: str = typer.Option("", "--source-ip"),
    pop: str = typer.Option(
        "",
        "--pop",
        help="POP the call arrives at (a known POP's name). Without it, an "
        "account restricted to exactly one POP uses that one.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the whole decision as JSON."),
) -> None:
    """Run the full authorisation decision without reserving anything and print each step."""
    start_django()
    from tarifa.calls.authorize import find_account, simulate_for
    from tarifa.calls.pops import default_pop, pop_names, pop_problem

    try:
        found = find_account(account)
    except LookupError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    why = pop_problem(found, pop)
    if why:
        typer.echo(f"error: --pop {pop!r} is refused: {why}", err=True)
        raise typer.Exit(2)
    if not pop:
        pop = default_pop(found)
        allowed, _others = pop_names(found)
        if pop:
            typer.echo(
                f"note: --pop not given: using {pop!r}, the only POP account {found.name!r} may call through", err=True
            )
        elif found.pop_restriction.exists():
            typer.echo(
                f"note: --pop not given: account {found.name!r} may only call through POPs "
                f"{', '.join(allowed)}; without one the call is refused (pop_not_allowed)",
                err=True,
            )
    decision = simulate_for(found.account_code, callee, caller=caller, source_ip=source_ip, pop=pop)
    if as_json:
        from dataclasses import asdict

        document = asdict(decision)
        del document["tracing"]  # how the decision was taken, not part of it
        typer.echo(json.dumps(document, indent=2))
        return
    for n, step in enumerate(decision.trace, start=1):
        typer.echo(f"{n:>2}. {step}")
    if decision.allowed:
        typer.echo(f"=> ALLOWED, max duration {decision.max_duration} s, {len(decision.routes)} route(s):")
        for route in decision.routes:
            typer.echo("   " + ", ".join(f"{k}={v}" for k, v in route.items()))
    else:
        typer.echo(f"=> REFUSED: {decision.reason} (SIP {decision.sip_code})")


def register(app: typer.Typer) -> None:
    app.add_typer(call_app, name="call")
