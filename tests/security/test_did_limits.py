"""Bad input to the DID inventory (attack findings 4, 6, 11, 13): dates out of any sense, files
that would exhaust a worker's memory or time, account names several accounts share, state codes
that only become two letters once upper-cased."""

from __future__ import annotations

import io
import zipfile
from datetime import date
from decimal import Decimal

import openpyxl
import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from typer.testing import CliRunner

from tarifa.customers.models import Account, Customer
from tarifa.dids.imports import ImportRejected, import_file
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


# --- 6: files that would hold a worker's memory or time ------------------------------------------------


def _xlsx(*rows: tuple[str, ...]) -> bytes:
    book = openpyxl.Workbook()
    for row in rows:
        book.active.append(list(row))
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _repacked(data: bytes, **members: bytes) -> bytes:
    """The workbook with some members replaced or added (compressed, so the file stays small)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            if item.filename not in members:
                target.writestr(item, source.read(item.filename))
        for name, content in members.items():
            target.writestr(name, content)
    return out.getvalue()


def test_an_xlsx_shared_strings_bomb_is_refused_before_it_is_unpacked(world) -> None:
    strings = (
        b'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        + b"<si><t>a</t></si>" * (2_100_000)
        + b"</sst>"
    )
    bomb = _repacked(_xlsx(("number",), ("+12125550100",)), **{"xl/sharedStrings.xml": strings})
    assert len(bomb) < 1_000_000
    with pytest.raises(ImportRejected) as caught:
        import_file(bomb, "bomb.xlsx")
    assert "shared-strings table of 35,700,077 bytes; at most 33,554,432" in str(caught.value.errors[0])
    padded = _repacked(_xlsx(("number",), ("+12125550100",)), **{"xl/media/padding.bin": b"\0" * (65 * 1024 * 1024)})
    with pytest.raises(ImportRejected) as caught:
        import_file(padded, "padded.xlsx")
    assert "an XLSX file may unpack to at most 67,108,864 bytes" in str(caught.value.errors[0])
    assert Did.objects.count() == 1  # the fixture's number only


def test_an_inventory_file_has_at_most_100000_rows(world) -> None:
    lines = "".join(f"+1212{n:07d}\n" for n in range(100_001))
    with pytest.raises(ImportRejected) as caught:
        import_file(("number\n" + lines).encode(), "big.csv")
    assert [str(e) for e in caught.value.errors] == [
        "big.csv line 100002: file 'big.csv' is refused: has more than 100,000 numbers; a DID inventory file has at most that many"
    ]
    rows = [("number",)] + [("+12125550100",)] * 100_001  # the attack's file: one number many times
    with pytest.raises(ImportRejected) as caught:
        import_file(_xlsx(*rows), "rows.xlsx")
    assert "has more than 100,000 numbers" in str(caught.value.errors[0])
    assert Did.objects.count() == 1


def test_the_errors_of_a_refused_file_are_listed_up_to_100(world, cli, boss, tmp_path) -> None:
    data = ("number\n" + "not a number\n" * 500).encode()
    with pytest.raises(ImportRejected) as caught:
        import_file(data, "bad.csv")
    assert (caught.value.count, len(caught.value.errors), caught.value.more) == (500, 100, 400)
    path = tmp_path / "bad.csv"
    path.write_bytes(data)
    refused = cli("did", "import", str(path))
    assert refused.exit_code == 2 and "... and 400 more error(s), not listed." in refused.output
    assert refused.output.count("is refused") == 100 and "500 error(s); nothing was imported." in refused.output
    page = boss.post(
        reverse("admin:dids_did_did_import"), {"file": SimpleUploadedFile("bad.csv", data, content_type="text/csv")}
    )
    text = page.content.decode()
    assert page.status_code == 200 and "500 errors — nothing was imported" in text and "and 400 more errors" in text
    assert text.count("must be an international number") == 100


def test_a_lata_file_stops_at_100_problems_and_1000000_rows(monkeypatch) -> None:
    from tarifa.core import origination
    from tarifa.dids.lata import LataRejected, import_lata

    with pytest.raises(LataRejected) as caught:
        import_lata(("npa_nxx,lata,state\n" + "1,x,ß\n" * 5000).encode(), "l.csv")
    problems = caught.value.problems
    assert len(problems) <= 103 and "the check stopped after 100 problems" in str(problems[-1])
    monkeypatch.setattr(origination, "LATA_ROWS_MAX", 3)  # the real limit is a million rows
    with pytest.raises(LataRejected) as caught:
        import_lata(b"npa_nxx,lata,state\n212555,1,NY\n212556,1,NY\n212557,1,NY\n212558,1,NY\n", "l.csv")
    assert [str(p) for p in caught.value.problems] == [
        "l.csv, row 5, field file: 'row 5' is refused: a LATA file has at most 3 rows"
    ]


def test_a_deck_zip_bomb_is_refused_by_the_same_reader() -> None:
    from tarifa.rating.decks import DeckRejected, read_table

    strings = b"<sst>" + b"<si><t>a</t></si>" * 2_000_000 + b"</sst>"
    bomb = _repacked(_xlsx(("prefix",), ("1212",)), **{"xl/sharedStrings.xml": strings})
    with pytest.raises(DeckRejected) as caught:
        read_table(bomb, "deck.xlsx")
    assert "has a shared-strings table of 34,000,011 bytes" in caught.value.errors[0].rule
    padded = _repacked(_xlsx(("prefix",), ("1212",)), **{"xl/media/padding.bin": b"\0" * (257 * 1024 * 1024)})
    with pytest.raises(DeckRejected) as caught:
        read_table(padded, "deck.xlsx")
    assert "may unpack to at most 268,435,456 bytes" in caught.value.errors[0].rule
    fine = _repacked(_xlsx(("prefix",), ("1212",)), **{"xl/media/padding.bin": b"\0" * (65 * 1024 * 1024)})
    header, rows = read_table(fine, "deck.xlsx")  # over the inventory's 64 MiB, within a deck's 256
    assert header == ["prefix"] and [list(cells) for _line, cells in rows] == [["1212"]]


def test_the_did_model_refuses_an_activation_date_out_of_range(world) -> None:
    """The back office's DID form runs the model's rules: the same range as Assign."""
    from django.core.exceptions import ValidationError

    did = assign_did(world["did"], world["account"], world["plan"], date(2026, 3, 10))
    did.activation_date = date(1, 1, 2)
    with pytest.raises(ValidationError) as caught:
        did.full_clean()
    assert caught.value.message_dict["activation_date"] == [
        "Activation date '0001-01-02' is refused: must be from 2000-01-01 to 2999-12-31"
    ]
