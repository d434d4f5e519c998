"""The ``tarifa`` command: serve, worker-free set-up (migrate, demo, createadmin) and Django passthrough."""

from __future__ import annotations

import os
import secrets
import sys

import typer

from tarifa.bootstrap import start_django

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Tarifa: VoIP billing, rating and routing.",
)


@app.command()
def serve(
    host: str | None = typer.Option(None, help="Listen address (default from TARIFA_LISTEN, else 127.0.0.1)."),
    port: int | None = typer.Option(None, help="Listen port (default from TARIFA_LISTEN, else 8080)."),
    workers: int | None = typer.Option(None, help="Worker processes (default TARIFA_WORKERS, else 2)."),
) -> None:
    """Serve the back office, the portal and the API with granian (several worker processes)."""
    from tarifa import config

    config.check_all()  # every TARIFA_* value first: a bad one is named before anything is served
    listen = config.listen()
    bind_host, bind_port = host or listen.host, port or listen.port
    count = workers or config.workers()
    _refuse_taken_address(bind_host, bind_port)
    start_django()  # like every command: refuse (saying where it looked) without a migrated database
    from django.db import connections

    connections.close_all()  # the workers open their own

    url = config.base_url(bind_host, bind_port)
    typer.echo(f"Tarifa serving on {url}/ ({count} workers); admin at {url}/admin/", err=True)
    # granian: HTTP parsing and connections in Rust; in each worker an event loop (tarifa.front) reads
    # request bodies within TARIFA_BODY_TIMEOUT and their size limit -- no thread waits for a client --
    # and runs the WSGI application (tarifa.wsgi) in TARIFA_THREADS + TARIFA_WAITING_THREADS threads,
    # TARIFA_THREADS of them at once (api/switch_endpoints.py's gate). Every worker loads the call-authorisation
    # caches before it accepts requests. The access log is tarifa.front's (control characters escaped).
    common = [
        "--host",
        bind_host,
        "--port",
        str(bind_port),
        "--workers",
        str(count),
        "--no-ws",
        "--respawn-failed-workers",
        "--workers-kill-timeout",
        "5",
        "--no-access-log",
    ]
    if config.body_timeout():
        args = [sys.executable, "-m", "granian", "--interface", "asgi", *common, "tarifa.asgi:application"]
    else:
        # TARIFA_BODY_TIMEOUT=0: granian's WSGI interface directly (no body deadline; see config.body_timeout):
        # the threads beyond TARIFA_THREADS may wait, boundedly (api/bodies.py), for slow bodies.
        module = "tarifa.wsgi:logged" if config.access_log() else "tarifa.wsgi:application"
        args = [
            sys.executable,
            "-m",
            "granian",
            "--interface",
            "wsgi",
            *common,
            "--blocking-threads",
            str(config.threads() + config.waiting_threads()),
            # keep idle threads (and their database connections) for 10 minutes, not granian's 30 s
            "--blocking-threads-idle-timeout",
            "600",
            module,
        ]
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tarifa.settings")
    os.environ[config.WARM_UP_VARIABLE] = "1"
    os.execv(sys.executable, args)


def _refuse_taken_address(host: str, port: int) -> None:
    """Stop (exit 2) when ``host:port`` cannot be listened on -- above all when a server listens there
    already. granian binds with SO_REUSEPORT, so a second ``tarifa serve`` on a taken port would start
    and share the connections with the first instead of failing. A bind without SO_REUSEPORT fails next
    to any listener. SO_REUSEADDR is set (as granian does): the closing connections of a server just
    stopped (TIME_WAIT) then do not count, while a listener still does."""
    import errno
    import socket

    shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        family, kind, proto, _name, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except socket.gaierror as exc:
        problem = f"the host cannot be resolved ({exc.strerror})"
    except OSError as exc:
        problem = exc.strerror or str(exc)
        if exc.errno == errno.EADDRINUSE:
            problem = "address already in use (another server listens there: stop it, or choose another port)"
    else:
        return
    typer.echo(f"Cannot listen on {shown}: {problem}.", err=True)
    raise typer.Exit(2)


@app.command()
def migrate() -> None:
    """Create or upgrade the database schema (Django migrations)."""
    start_django(database=False)
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=1)


@app.command()
def demo(
    if_empty: bool = typer.Option(False, "--if-empty", help="Only when the database has no customers yet."),
) -> None:
    """Load the demo data set; running it again changes nothing."""
    start_django()
    from tarifa.customers.models import Customer
    from tarifa.demo import load_demo

    if if_empty and Customer.objects.exists():
        typer.echo("Customers exist already: demo data not loaded.", err=True)
        return

    summary = load_demo(echo=lambda text: typer.echo(text, err=True))
    for name, count in summary.items():
        typer.echo(f"{name}: {count}")


@app.command()
def createadmin(
    username: str = typer.Option("admin", help="User name of the operator administrator."),
    email: str = typer.Option("admin@localhost", help="E-mail address."),
    password: str | None = typer.Option(
        None, help="Password; default: TARIFA_ADMIN_PASSWORD, else generated and kept in var/admin-password."
    ),
) -> None:
    """Create the operator administrator, or reset its password when one is given."""
    start_django()
    from django.contrib.auth import get_user_model
    from django.contrib.auth.password_validation import validate_password
    from django.core.exceptions import ValidationError

    from tarifa import config

    password = password or config.admin_password()
    stored = config.var_dir() / "admin-password"
    User = get_user_model()
    user = User.objects.filter(username=username).first()
    if password is None and user is not None:
        typer.echo(f"Administrator {username!r} exists; password unchanged.")
        first = stored.read_text().strip() if stored.exists() else ""
        # The generated password is shown only while it still opens the back office.
        if first and user.check_password(first):
            typer.echo(f"Login: {username} / {first}")
        else:
            typer.echo(
                f"Log in with the password you set. To set a new one: tarifa createadmin --username {username} "
                f"--password NEW (or tarifa manage changepassword {username})."
            )
        typer.echo(f"Back office: {config.base_url()}/admin/")
        return
    if password is None:
        password = secrets.token_urlsafe(12) + "A1!"
        stored.write_text(password + "\n")
        stored.chmod(0o600)
    try:
        validate_password(password)
    except ValidationError as exc:
        typer.echo("; ".join(exc.messages), err=True)
        raise typer.Exit(2) from None
    user = user or User(username=username, email=email)
    user.is_staff = user.is_superuser = True
    user.set_password(password)
    user.save()
    if stored.exists() and stored.read_text().strip() != password:
        stored.unlink()  # a generated password that no longer works is not kept
    typer.echo(f"Login: {username} / {password}")
    typer.echo(f"Back office: {config.base_url()}/admin/")


@app.command()
def token(
    name: str = typer.Argument(..., help="A name for the token, e.g. the switch host."),
    switch: str | None = typer.Option(None, "--switch", help="POP / switch the token belongs to (must exist)."),
    create_pop: bool = typer.Option(False, "--create-pop", help="Create the POP when none has that name."),
    operator: bool = typer.Option(False, "--operator", help="An operator token for the management API (sees all)."),
    scope: list[str] = typer.Option(
        [], "--scope", help="With --operator: a scope (read, full, customers:write, ...); repeat for more."
    ),
) -> None:
    """Issue an API token for a switch (call authorisation, CDR push) or, with --operator, for the
    management API. Shown once."""
    start_django()
    from tarifa.api.models import ApiToken
    from tarifa.routing.models import Pop

    if operator == (switch is not None):  # an empty --switch '' is a POP name, refused by the POP model below
        typer.echo("Give exactly one of --switch POP and --operator.", err=True)
        raise typer.Exit(2)
    if operator:
        from tarifa.core.scopes import refusals

        problems = refusals(scope or ["read"])
        if problems:
            typer.echo("--scope: " + "; ".join(problems), err=True)
            raise typer.Exit(2)
        _token, raw = ApiToken.issue(name, operator=True, scopes=scope or ["read"])
        typer.echo(raw)
        return
    assert switch is not None  # not --operator: --switch was given (checked above)
    pop = Pop.objects.filter(name=switch).first()
    if pop is None and not create_pop:
        known = ", ".join(repr(n) for n in Pop.objects.order_by("name").values_list("name", flat=True)) or "none yet"
        typer.echo(
            f"POP {switch!r} is refused: no POP has that name (known: {known}). "
            "Give an existing POP, or add --create-pop to create it.",
            err=True,
        )
        raise typer.Exit(2)
    if pop is None:
        from django.core.exceptions import ValidationError

        pop = Pop(name=switch)
        try:
            pop.full_clean()  # the model's own rules: an identifier of at most 64 characters
        except ValidationError as exc:
            for error in exc.error_dict.get("name", []) if hasattr(exc, "error_dict") else exc.error_list:
                said = " ".join(error.messages)
                if error.code in ("blank", "null", "required"):
                    said = f"POP name {switch!r} is refused: a name is required"
                typer.echo(f"--switch: {said}", err=True)
            raise typer.Exit(2) from None
        pop.save()
        typer.echo(f"POP {switch!r} created.", err=True)
    _token, raw = ApiToken.issue(name, switch=pop)
    typer.echo(raw)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def manage(ctx: typer.Context) -> None:
    """Run a Django management command, e.g. ``tarifa manage check``."""
    start_django(database=False)
    from django.core.management import execute_from_command_line

    execute_from_command_line(["tarifa manage", *ctx.args])


def _register_commands() -> None:
    """Commands that live in their own modules (kept out of this file so it stays small)."""
    from tarifa import batchrate
    from tarifa.billing import commands as payment_commands
    from tarifa.billing import sample_commands as invoice_sample_commands
    from tarifa.calls import commands as call_commands
    from tarifa.cdrs import commands as cdr_commands
    from tarifa.cdrs import origination_commands
    from tarifa.dids import commands as did_commands
    from tarifa.portal import commands as signup_commands
    from tarifa.rating import commands as deck_commands
    from tarifa.services import billing_commands
    from tarifa.services import commands as service_commands

    batchrate.register(app)
    deck_commands.register(app)
    cdr_commands.register(app)
    call_commands.register(app)
    payment_commands.register(app)
    invoice_sample_commands.register(app)
    service_commands.register(app)
    did_commands.register(app)
    origination_commands.register(app)
    billing_commands.register(app)
    signup_commands.register(app)


def main() -> None:
    from tarifa.config import ConfigError

    _register_commands()
    try:
        app()
    except ConfigError as error:  # a TARIFA_* variable Tarifa cannot use: say which, no traceback
        typer.echo(str(error), err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
