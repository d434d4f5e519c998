"""CLI quirks from the new-user report (item I): ids for --tariff, the payment help, reversed
re-rating dates, and a whole-file deck error not shown as "Line 0"."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from typer.testing import CliRunner

from tarifa.cdrs.models import RerateRun
from tarifa.cdrs.rerate import Criteria, rerate
from tarifa.rating.commands import find_target
from tarifa.rating.models import Rate, Tariff
from tarifa.routing.models import DestinationSet, Vendor

pytestmark = pytest.mark.django_db


@pytest.fixture
def cli(monkeypatch):  # type: ignore[no-untyped-def]
    """``tarifa`` against the test database (the embedded-file check would look for var/)."""
    from tarifa import cli as root
    from tarifa import config

    monkeypatch.setattr(config, "embedded_database", lambda: None)
    if not any(group.name == "deck" for group in root.app.registered_groups):
        root._register_commands()
    return lambda *args: CliRunner().invoke(root.app, list(args))


def test_a_tariff_or_destination_set_is_found_by_name_or_id() -> None:
    tariff = Tariff.objects.create(name="Retail")
    named_like_an_id = Tariff.objects.create(name=str(tariff.pk + 100))
    assert find_target(tariff="Retail") == tariff
    assert find_target(tariff=str(tariff.pk)) == tariff
    assert find_target(tariff=str(tariff.pk + 100)) == named_like_an_id  # a name wins over an id
    dset = DestinationSet.objects.create(name="Carrier A", vendor=Vendor.objects.create(name="A"))
    assert find_target(destination_set=str(dset.pk)) == dset
    for bad in ("999999", "²", "1" * 40):
        with pytest.raises(ValueError, match=r"does not exist \(give its name or its id\)"):
            find_target(tariff=bad)


def test_deck_export_and_import_accept_an_id(cli, tmp_path: Path) -> None:
    tariff = Tariff.objects.create(name="Retail")
    deck = tmp_path / "in.csv"
    deck.write_text("prefix,destination,price_1\n44,UK,0.02\n")
    result = cli("deck", "import", str(deck), "--tariff", str(tariff.pk))
    assert result.exit_code == 0, result.output
    assert Rate.objects.filter(tariff=tariff, prefix="44").exists()
    out = tmp_path / "out.csv"
    result = cli("deck", "export", str(out), "--tariff", str(tariff.pk))
    assert result.exit_code == 0, result.output
    assert "44,UK,0.02" in out.read_text()


def test_payment_help_matches_how_a_negative_amount_is_typed(cli) -> None:
    result = cli("payment", "add", "--help")
    assert result.exit_code == 0
    assert "-- -5" not in result.output and "-2.50" in result.output


def test_rerate_refuses_a_from_after_its_to() -> None:
    start, end = datetime(2026, 12, 8, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)
    with pytest.raises(ValueError) as caught:
        rerate(Criteria(start=start, end=end), reason="fix", by="ops")
    assert str(caught.value) == (
        "--from 2026-12-08T00:00:00+00:00 is refused: must be before --to "
        "2026-12-01T00:00:00+00:00 (calls started from --from up to, not including, --to)"
    )
    assert not RerateRun.objects.exists()


def test_rerate_cli_refuses_reversed_dates_naming_both(cli) -> None:
    result = cli("cdr", "rerate", "--from", "2026-12-08", "--to", "2026-12-01", "--reason", "fix")
    assert result.exit_code == 2
    assert "--from 2026-12-08" in result.output and "--to 2026-12-01" in result.output


def test_a_whole_file_error_in_the_back_office_import_is_not_line_0(client) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    client.force_login(get_user_model().objects.create_superuser("boss", "b@example.com", "Boss-pass1"))
    tariff = Tariff.objects.create(name="Retail")
    url = reverse("admin:rating_tariff_deck_import", args=[tariff.pk])
    bad = SimpleUploadedFile("latin1.csv", "prefix,destination,price_1\n33,Fran\xe7e,0.02\n".encode("latin-1"))
    page = client.post(url, {"file": bad, "mode": "add"}).content.decode()
    assert "is not UTF-8 text" in page
    assert "<td>whole file</td>" in page and "<td>0</td>" not in page
