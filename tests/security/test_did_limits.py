"""Bad input to the DID inventory (attack findings 4, 6, 11, 13): dates out of any sense, files
that would exhaust a worker's memory or time, account names several accounts share, state codes
that only become two letters once upper-cased."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from typer.testing import CliRunner

from tarifa.customers.models import Account, Customer
from tarifa.dids.models import Did, DidPlan
from tarifa.dids.service import DidRefused, assign_did, release_did

pytestmark = pytest.mark.django_db


def _customer(operator, name: str, web: str) -> Customer:  # type: ignore[no-untyped-def]
    return Customer.objects.create(
        kind="customer",
        parent=operator,
        name=name,
        company=name,
        web_username=web,
        tariff=operator.tariff,
        email=f"{web}@x.example",
        country="US",
    )


@pytest.fixture
def world(operator):  # type: ignore[no-untyped-def]
    account = Account.objects.create(customer=_customer(operator, "Acme", "acme"), name="acme-did", kind="did")
    plan = DidPlan.objects.create(name="US local", monthly_fee=Decimal("1.50"))
    did = Did.objects.create(number="12125551234")
    return {"account": account, "plan": plan, "did": did}


@pytest.fixture
def cli(monkeypatch):  # type: ignore[no-untyped-def]
    from tarifa import cli as root
    from tarifa import config

    monkeypatch.setattr(config, "embedded_database", lambda: None)
    if not any(group.name == "did" for group in root.app.registered_groups):
        root._register_commands()

    def run(*args: str):  # type: ignore[no-untyped-def]
        return CliRunner().invoke(root.app, list(args))

    return run


@pytest.fixture
def boss(client):  # type: ignore[no-untyped-def]
    client.force_login(get_user_model().objects.create_superuser("boss", "b@example.com", "Boss-pass1"))
    return client


# --- 4: activation and release dates ------------------------------------------------------------------


@pytest.mark.parametrize("day", [date(1, 1, 2), date(1999, 12, 31), date(9999, 12, 31)])
def test_an_activation_date_out_of_range_is_refused(world, day: date) -> None:
    with pytest.raises(DidRefused, match=f"activation date '{day.isoformat()}' is refused: must be from 2000-01-01"):
        assign_did(world["did"], world["account"], world["plan"], day)
    world["did"].refresh_from_db()
    assert world["did"].status == "available" and world["did"].account is None


def test_a_release_on_9999_12_31_is_refused_cleanly(world, cli, boss) -> None:
    did = assign_did(world["did"], world["account"], world["plan"], date(2026, 3, 10))
    with pytest.raises(DidRefused, match="release date '9999-12-31' is refused: must be from 2000-01-01 to 2999-12-31"):
        release_did(did, date(9999, 12, 31), quarantine_days=0)
    refused = cli("did", "release", "+12125551234", "--on", "9999-12-31", "--quarantine-days", "0")
    assert refused.exit_code == 2 and "release date '9999-12-31' is refused" in refused.output
    assert "Traceback" not in refused.output and isinstance(refused.exception, SystemExit)
    page = boss.post(reverse("admin:dids_did_did_release", args=[did.pk]), {"on": "9999-12-31", "quarantine_days": "0"})
    assert page.status_code == 200 and "release date &#x27;9999-12-31&#x27; is refused" in page.content.decode()
    did.refresh_from_db()
    assert (did.status, did.account) == ("assigned", world["account"])  # nothing changed


def test_cli_and_admin_refuse_an_activation_in_year_one(world, cli, boss) -> None:
    refused = cli(
        "did",
        "assign",
        "+12125551234",
        "--account",
        "acme-did",
        "--plan",
        "US local",
        "--activation-date",
        "0001-01-02",
    )
    assert refused.exit_code == 2 and "activation date '0001-01-02' is refused" in refused.output
    page = boss.post(
        reverse("admin:dids_did_did_assign", args=[world["did"].pk]),
        {"account": "acme-did", "plan": world["plan"].pk, "activation_date": "0001-01-02"},
    )
    assert page.status_code == 200 and "0001-01-02" in page.content.decode()
    assert Did.objects.get(pk=world["did"].pk).account is None


# --- 11: account names that several accounts share -------------------------------------------------


def test_an_account_name_several_accounts_share_is_refused_naming_their_codes(operator, world, cli, boss) -> None:
    first = Account.objects.create(customer=_customer(operator, "One", "one"), name="Office", kind="did")
    second = Account.objects.create(customer=_customer(operator, "Two", "two"), name="Office", kind="did")
    refused = cli("did", "assign", "+12125551234", "--account", "Office", "--plan", "US local")
    assert refused.exit_code == 2, refused.output
    assert "--account 'Office' is refused: several accounts have this name" in refused.output
    assert first.account_code in refused.output and second.account_code in refused.output
    page = boss.post(
        reverse("admin:dids_did_did_assign", args=[world["did"].pk]), {"account": "Office", "plan": world["plan"].pk}
    )
    text = page.content.decode()
    assert page.status_code == 200 and "several accounts have this name" in text
    assert first.account_code in text and second.account_code in text
    assert Did.objects.get(pk=world["did"].pk).account is None
    by_code = cli("did", "assign", "+12125551234", "--account", second.account_code, "--plan", "US local")
    assert by_code.exit_code == 0 and Did.objects.get(pk=world["did"].pk).account == second


# --- 13: LATA states -----------------------------------------------------------------------------------


def test_a_lata_state_that_is_two_letters_only_when_upper_cased_is_refused() -> None:
    from tarifa.dids.lata import LataRejected, import_lata
    from tarifa.dids.models import NpaNxx

    with pytest.raises(LataRejected) as caught:
        import_lata("npa_nxx,lata,state\n212555,132,ß\n".encode(), "l.csv")
    assert [(p.field, p.value) for p in caught.value.problems] == [("state", "ß")]
    assert not NpaNxx.objects.exists()
    import_lata(b"npa_nxx,lata,state\n212555,132,ny\n", "l.csv")
    assert NpaNxx.objects.get().state == "NY"
