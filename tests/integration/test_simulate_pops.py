"""The POP of a simulated call (user report G): a select of the known POPs in the back office,
an unknown POP refused naming the known ones, the only allowed POP by default in the CLI."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from typer.testing import CliRunner

from tarifa.calls import cache
from tarifa.routing.models import Pop
from tests.factories import UK

pytestmark = pytest.mark.django_db


@pytest.fixture
def pops(net):  # type: ignore[no-untyped-def]
    nyc, lon = Pop.objects.create(name="pop-nyc"), Pop.objects.create(name="pop-lon")
    Pop.objects.create(name="pop-fra")
    net["alice"].pop_restriction.set([nyc])
    net["pbx"].pop_restriction.set([nyc, lon])
    cache.reset()
    return net


@pytest.fixture
def cli(monkeypatch):  # type: ignore[no-untyped-def]
    """``tarifa`` against the test database (the embedded-file check would look for var/)."""
    from tarifa import cli as root
    from tarifa import config

    monkeypatch.setattr(config, "embedded_database", lambda: None)
    if not any(group.name == "call" for group in root.app.registered_groups):
        root._register_commands()
    return lambda *args: CliRunner().invoke(root.app, list(args))


def _page(client, account):  # type: ignore[no-untyped-def]
    client.force_login(get_user_model().objects.create_superuser("boss", "b@example.com", "Boss-pass1"))
    return reverse("admin:customers_account_simulate_call", args=[account.pk])


def test_the_pop_is_a_select_with_the_accounts_pops_first_and_its_only_pop_selected(client, pops) -> None:  # type: ignore[no-untyped-def]
    page = client.get(_page(client, pops["alice"])).content.decode()
    select = re.search(r'<select name="pop".*?</select>', page, re.DOTALL)
    assert select is not None
    options = re.findall(r'<option value="([^"]*)"( selected)?', select.group(0))
    assert options == [("", ""), ("pop-nyc", " selected"), ("pop-fra", ""), ("pop-lon", "")]
    assert "Allowed for this account" in select.group(0)


def test_the_page_simulates_with_the_preselected_pop_and_refuses_an_unknown_one(client, pops) -> None:  # type: ignore[no-untyped-def]
    url = _page(client, pops["alice"])
    assert "Allowed for" in client.post(url, {"callee": "011" + UK, "pop": "pop-nyc"}).content.decode()
    page = client.post(url, {"callee": "011" + UK, "pop": "nope"}).content.decode()
    assert "POP &#x27;nope&#x27; is refused: must be one of the known POPs: pop-fra, pop-lon, pop-nyc" in page
    assert 'id="decision"' not in page


def test_the_cli_refuses_an_unknown_pop_naming_the_known_ones(cli, pops) -> None:  # type: ignore[no-untyped-def]
    result = cli("call", "simulate", "--account", "alice", "--callee", "011" + UK, "--pop", "nope")
    assert result.exit_code == 2
    assert "--pop 'nope' is refused: must be one of the known POPs: pop-fra, pop-lon, pop-nyc" in result.output


def test_the_cli_uses_the_only_allowed_pop_and_says_so(cli, pops) -> None:  # type: ignore[no-untyped-def]
    result = cli("call", "simulate", "--account", "alice", "--callee", "011" + UK)
    assert result.exit_code == 0, result.output
    assert "using 'pop-nyc', the only POP account 'alice' may call through" in result.output
    assert "=> ALLOWED" in result.output


def test_the_cli_without_pop_for_several_allowed_pops_says_which(cli, pops) -> None:  # type: ignore[no-untyped-def]
    result = cli("call", "simulate", "--account", "pbx", "--callee", UK)
    assert result.exit_code == 0, result.output
    assert "may only call through POPs pop-lon, pop-nyc" in result.output
    assert "=> REFUSED: pop_not_allowed" in result.output
