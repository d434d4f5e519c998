"""API tokens: who may hold one, and the `tarifa token` command (issue 12, item 12)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from tarifa.api.models import ApiToken, hash_token
from tarifa.routing.models import Pop

ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.mark.django_db
def test_a_token_of_an_inactive_customer_is_refused(client, world) -> None:
    customer = world["customer"]
    _t, raw = ApiToken.issue("portal", customer=customer)
    auth = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
    assert client.get("/api/v1/cdrs", **auth).status_code == 200
    customer.status = "inactive"
    customer.save()
    response = client.get("/api/v1/cdrs", **auth)
    assert response.status_code == 403 and response["Content-Type"] == "application/problem+json"
    assert response.json()["detail"] == (
        f"The token's customer {customer.account_code} is inactive: its tokens are refused until it is active again."
    )
    customer.status = "active"
    customer.save()
    assert client.get("/api/v1/cdrs", **auth).status_code == 200


@pytest.mark.django_db
def test_a_token_belongs_to_a_switch_or_a_customer_exactly(world) -> None:
    pop = Pop.objects.create(name="pop-t")
    both = ApiToken(name="both", key_hash=hash_token("a"), prefix="a", switch=pop, customer=world["customer"])
    with pytest.raises(ValidationError) as refused:
        both.full_clean()
    assert "cannot also belong to a customer" in str(refused.value.message_dict["customer"])
    neither = ApiToken(name="neither", key_hash=hash_token("b"), prefix="b")
    with pytest.raises(ValidationError) as refused:
        neither.full_clean()
    assert "choose one" in str(refused.value.message_dict["switch"])
    for token in (both, neither):  # the database refuses them too, whatever writes them
        with pytest.raises(IntegrityError), transaction.atomic():
            token.save()
    assert not ApiToken.objects.exists()
    ApiToken(name="ok", key_hash=hash_token("c"), prefix="c", switch=pop).full_clean()


@pytest.mark.django_db
def test_token_command_refuses_an_unknown_pop(cli) -> None:  # type: ignore[no-untyped-def]
    made = cli("token", "kam1", "--switch", "pop-nyc", "--create-pop")
    assert made.exit_code == 0 and made.stdout.strip().startswith("trf_") and "created" in made.stderr
    typo = cli("token", "kam2", "--switch", "pop-nyx")
    assert typo.exit_code == 2 and typo.stdout == ""
    assert "POP 'pop-nyx' is refused: no POP has that name (known: 'pop-nyc')" in typo.stderr
    assert "--create-pop" in typo.stderr
    again = cli("token", "kam2", "--switch", "pop-nyc")
    assert again.exit_code == 0 and again.stdout.strip().startswith("trf_") and not again.stderr.strip()


def test_the_cli_says_where_the_database_is_expected(tmp_path: Path) -> None:
    """From a folder without var/: no empty ./var is created and the message names the path."""
    env = {k: v for k, v in os.environ.items() if k not in ("TARIFA_VAR_DIR", "TARIFA_DATABASE_URL")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "tarifa.cli", "token", "kam", "--switch", "pop"],
        env=env,
        cwd=elsewhere,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"No database at {elsewhere / 'var' / 'tarifa.sqlite3'}." in done.stderr
    assert "tarifa migrate" in done.stderr and "TARIFA_VAR_DIR" in done.stderr
    assert not (elsewhere / "var").exists()
    # a database file that was never migrated
    (elsewhere / "var").mkdir()
    (elsewhere / "var" / "tarifa.sqlite3").touch()
    done = subprocess.run(
        [sys.executable, "-m", "tarifa.cli", "token", "kam", "--switch", "pop"],
        env=env,
        cwd=elsewhere,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"The database at {elsewhere / 'var' / 'tarifa.sqlite3'} is not migrated (" in done.stderr
    assert "migrations pending). Run `tarifa migrate`" in done.stderr


def test_serve_from_another_folder_refuses_like_the_other_commands(tmp_path: Path) -> None:
    """L4: ``tarifa serve`` without a database where it looks says where it looked and exits 2,
    creating no ./var (it used to create an empty database and a secret key, and serve)."""
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("TARIFA_VAR_DIR", "TARIFA_DATABASE_URL")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "tarifa.cli", "serve", "--port", "1"],
            env=env,
            cwd=elsewhere,
            capture_output=True,
            text=True,
            timeout=60,
        )
    except subprocess.TimeoutExpired:  # it served (before the fix): a refusal is immediate
        pytest.fail("tarifa serve started without a database")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"No database at {elsewhere / 'var' / 'tarifa.sqlite3'}." in done.stderr
    assert "tarifa migrate" in done.stderr
    assert not (elsewhere / "var").exists()
