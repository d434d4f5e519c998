"""More attacks on the back office (attack report M2, L2, L3): secrets shown to view-only staff or
guessed through a listing filter, vendor data on the simulate-call page, 500s on bad ids and dates."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db.models import Model
from django.urls import reverse

from tarifa.sensitive import is_sensitive
from tests.factories import ACCOUNT_SIP_PASSWORD, DEVICE_SECRET, staff_user

pytestmark = pytest.mark.django_db


def _sensitive_fields(model: type[Model]) -> list[str]:
    opts = model._meta
    return [
        f.name for f in opts.get_fields() if not f.is_relation and is_sensitive(opts.app_label, opts.model_name, f.name)
    ]


def _secret_lookups(model: type[Model]) -> list[str]:
    """Every sensitive field of the model and of each model one relation away, as a lookup path."""
    paths = list(_sensitive_fields(model))
    for field in model._meta.get_fields():
        if field.is_relation and field.related_model is not None and field.related_model is not model:
            paths += [f"{field.name}__{name}" for name in _sensitive_fields(field.related_model)]
    return paths


# --- M2: secrets in listing filters ---------------------------------------------------------------


def test_no_listing_accepts_a_lookup_on_a_secret_field(client, secrets_stored) -> None:
    client.force_login(get_user_model().objects.create_superuser("boss", "boss@x.example", "Boss-pass-1234"))
    checked = set()
    for model, model_admin in admin.site._registry.items():
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        for path in _secret_lookups(model):
            for suffix in ("", "__startswith", "__exact", "__iregex", "__gt", "__isnull"):
                lookup = f"{path}{suffix}"
                assert not model_admin.lookup_allowed(lookup, "x", None), (model, lookup)
                response = client.get(url, {lookup: "S"})
                assert response.status_code == 400, (url, lookup, response.status_code)
            checked.add(f"{model._meta.label}:{path}")
    # The attack report's three, and the same secrets reached through a relation.
    assert {
        "customers.Account:sip_password",
        "customers.SipDevice:secret",
        "api.ApiToken:key_hash",
        "customers.Customer:accounts__sip_password",
        "customers.Account:sipdevices__secret",
        "customers.SipDevice:account__sip_password",
    } <= checked


def test_the_attack_reports_guess_finds_nothing(client, secrets_stored) -> None:
    """viewer with view_account only used ``?sip_password__startswith=`` to guess character by character."""
    client.force_login(staff_user("viewer", "view_account", "view_sipdevice", "view_apitoken"))
    for name, lookup, value in [
        ("account", "sip_password__startswith", ACCOUNT_SIP_PASSWORD[:3]),
        ("sipdevice", "secret__startswith", DEVICE_SECRET[:3]),
        ("apitoken", "key_hash__startswith", secrets_stored["token_hash"][:3]),
    ]:
        app = "api" if name == "apitoken" else "customers"
        response = client.get(reverse(f"admin:{app}_{name}_changelist"), {lookup: value})
        assert response.status_code == 400, (name, response.status_code)


def test_ordinary_lookups_still_work(client, secrets_stored) -> None:
    client.force_login(staff_user("viewer", "view_account"))
    response = client.get(reverse("admin:customers_account_changelist"), {"name__startswith": "secret"})
    assert response.status_code == 200
    assert b"secret-main" in response.content


# --- M2: secrets on the change page of a view-only user ------------------------------------------


def test_a_view_only_user_sees_no_secret_on_any_change_page(client, secrets_stored) -> None:
    from tarifa.customers.models import Account

    secrets = [ACCOUNT_SIP_PASSWORD, DEVICE_SECRET, secrets_stored["token_hash"], secrets_stored["raw_token"]]
    viewer = staff_user("viewer")
    viewer.user_permissions.add(*Permission.objects.filter(codename__startswith="view_"))
    client.force_login(viewer)
    checked = []
    for model in admin.site._registry:
        if not _sensitive_fields(model) or model is get_user_model():
            continue
        for obj in model._default_manager.all():
            url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_change", args=[obj.pk])
            response = client.get(url)
            assert response.status_code == 200, url
            page = response.content.decode()
            for secret in secrets:
                assert secret not in page, (url, secret)
            for name in _sensitive_fields(model):
                assert f'name="{name}"' not in page and f"field-{name}" not in page, (url, name)
            checked.append(model._meta.label)
    assert {"customers.Account", "customers.SipDevice", "api.ApiToken"} <= set(checked)
    # The account page still shows the account (and its SIP device under it), only not the secrets.
    page = client.get(reverse("admin:customers_account_change", args=[Account.objects.get(name="secret-main").pk]))
    assert b"secret-main" in page.content and b"secretdev" in page.content


def test_a_user_who_may_change_the_record_still_has_the_field(client, secrets_stored) -> None:
    from tarifa.customers.models import Account

    client.force_login(staff_user("editor", "view_account", "change_account"))
    page = client.get(reverse("admin:customers_account_change", args=[Account.objects.get(name="secret-main").pk]))
    assert page.status_code == 200
    assert b'name="sip_password"' in page.content


# --- L2: the simulate-call page shows vendor data -------------------------------------------------


def test_simulate_call_needs_the_view_permission_of_vendor_connections(client, secrets_stored) -> None:
    from tarifa.customers.models import Account

    url = reverse("admin:customers_account_simulate_call", args=[Account.objects.get(name="secret-main").pk])
    client.force_login(staff_user("viewer2", "view_account"))
    assert client.get(url).status_code == 403
    assert client.post(url, {"callee": "441234567890"}).status_code == 403
    client.force_login(staff_user("router", "view_account", "view_connection"))
    response = client.get(url)
    assert response.status_code == 200
    assert b"Number dialled" in response.content


# --- L3: malformed ids and out-of-range dates are refusals, never a 500 or a traceback -----------

OVERFLOWING = ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59"]


@pytest.fixture
def boss(client):  # type: ignore[no-untyped-def]
    client.force_login(get_user_model().objects.create_superuser("boss", "boss@x.example", "Boss-pass-1234"))
    return client


@pytest.mark.parametrize("object_id", ["abc", "1.5", "99999999999999999999999"])
def test_add_money_with_a_malformed_customer_id_is_doesnt_exist(boss, object_id: str) -> None:
    from django.contrib.messages import get_messages

    url = reverse("admin:customers_customer_add_money", args=["X"]).replace("/X/", f"/{object_id}/")
    for response in (boss.get(url), boss.post(url, {"kind": "payment", "amount": "1"})):
        assert response.status_code == 302, (object_id, response.status_code)
        assert any("doesn’t exist" in str(m) for m in get_messages(response.wsgi_request))


@pytest.fixture(params=["tariff", "destinationset"])
def deck_target(request, tariff):  # type: ignore[no-untyped-def]
    from tarifa.routing.models import DestinationSet, Vendor

    if request.param == "tariff":
        return tariff
    return DestinationSet.objects.create(name="Vendor set", vendor=Vendor.objects.create(name="Carrier"))


@pytest.mark.parametrize("page", ["deck_import", "deck_diff"])
@pytest.mark.parametrize("at", OVERFLOWING)
def test_deck_pages_refuse_a_date_whose_utc_time_overflows(boss, deck_target, page: str, at: str) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    info = (deck_target._meta.app_label, deck_target._meta.model_name, page)
    url = reverse("admin:{}_{}_{}".format(*info), args=[deck_target.pk])
    upload = SimpleUploadedFile("deck.csv", b"prefix,destination,price_1\n44,UK,0.03\n", content_type="text/csv")
    response = boss.post(url, {"file": upload, "mode": "add", "at": at})
    assert response.status_code == 200
    page_text = response.content.decode()
    assert "is refused" in page_text and "between 0001-01-01 and 9999-12-31" in page_text
    assert not deck_target.rates.filter(price_1="0.03").exists()


@pytest.mark.parametrize(("name", "value"), [("since", OVERFLOWING[0]), ("until", OVERFLOWING[1])])
def test_cdr_listing_refuses_a_date_whose_utc_time_overflows(client, operator, name: str, value: str) -> None:
    from tarifa.api.models import ApiToken

    _token, raw = ApiToken.issue("portal", customer=operator)
    response = client.get("/api/v1/cdrs", {name: value}, HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert response.status_code == 422, response.content
    detail = response.json()["detail"]
    assert name in detail and value in detail and "9999-12-31" in detail
    assert (
        client.get("/api/v1/cdrs", {name: "2026-01-01T00:00:00Z"}, HTTP_AUTHORIZATION=f"Bearer {raw}").status_code
        == 200
    )


def _cli(*args: str):  # type: ignore[no-untyped-def]
    import typer
    from typer.testing import CliRunner

    from tarifa.cdrs.commands import register as register_cdr
    from tarifa.rating.commands import register as register_deck

    root = typer.Typer()
    register_deck(root)
    register_cdr(root)
    return CliRunner().invoke(root, list(args))


@pytest.mark.parametrize("at", OVERFLOWING)
def test_cli_deck_and_rerate_refuse_a_date_whose_utc_time_overflows(tariff, tmp_path, at: str) -> None:
    deck = tmp_path / "deck.csv"
    deck.write_bytes(b"prefix,destination,price_1\n44,UK,0.03\n")
    for args, option in [
        (("deck", "diff", str(deck), "--tariff", tariff.name, "--at", at), "--at"),
        (("deck", "import", str(deck), "--tariff", tariff.name, "--at", at), "--at"),
        (("cdr", "rerate", "--from", at, "--to", at, "--reason", "x"), "--from"),
        (("cdr", "rerate", "--from", "2026-01-01", "--to", at, "--reason", "x"), "--to"),
    ]:
        result = _cli(*args)
        assert result.exit_code == 2, (args, result.output, result.exception)
        assert not isinstance(result.exception, OverflowError)
        assert option in result.output and at in result.output and "9999-12-31" in result.output, result.output


# --- L5: `tarifa token --create-pop` validates the POP name with the model's rules ---------------

BAD_POP_NAMES = ["", "pop\x01x", "p" * 300, " pop-lon", "pop-lon ", "=cmd|x", "-pop", "pop lon"]


@pytest.mark.parametrize("name", BAD_POP_NAMES)
def test_the_pop_model_refuses_names_that_are_not_identifiers(name: str) -> None:
    from django.core.exceptions import ValidationError

    from tarifa.routing.models import Pop

    with pytest.raises(ValidationError) as refused:
        Pop(name=name).full_clean()
    assert "name" in refused.value.message_dict
    Pop(name="pop-lon_2.a").full_clean()


@pytest.mark.django_db(transaction=True)
def test_token_command_refuses_a_pop_name_the_model_refuses(cli) -> None:  # type: ignore[no-untyped-def]
    """The command as a user types it (in this process: the same typer app ``tarifa`` starts)."""
    for name in ["", "pop\x01x", "p" * 300, " pop-lon", "=cmd|x"]:
        done = cli("token", "kam1", "--switch", name, "--create-pop")
        assert done.exit_code == 2, (name, done.stdout, done.stderr)
        assert done.stdout == "" and "Traceback" not in done.stderr
        assert "--switch" in done.stderr, done.stderr
        assert "is refused" in done.stderr or "is required" in done.stderr, done.stderr
    made = cli("token", "kam1", "--switch", "pop-lon", "--create-pop")
    assert made.exit_code == 0 and made.stdout.strip().startswith("trf_"), made.stderr
    # No refused name was stored: the only POP is the valid one.
    listed = cli("token", "kam2", "--switch", "nope")
    assert "(known: 'pop-lon')" in listed.stderr, listed.stderr


# --- L6, L11: XLSX decks: bounded work, plain refusals --------------------------------------------


def _xlsx(sheet_data: bytes | None = None, *, no_sheets: bool = False) -> bytes:
    """A real workbook, with its first sheet's rows (and no <dimension>) or its sheet list replaced."""
    import io
    import re
    import zipfile

    import openpyxl

    book = openpyxl.Workbook()
    book.active.append(["prefix", "destination", "price_1"])
    buffer = io.BytesIO()
    book.save(buffer)
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml" and sheet_data is not None:
                data = re.sub(rb"<dimension[^>]*/>", b"", data)
                data = re.sub(
                    rb"<sheetData>.*</sheetData>|<sheetData/>",
                    b"<sheetData>" + sheet_data + b"</sheetData>",
                    data,
                    flags=re.S,
                )
            if item.filename == "xl/workbook.xml" and no_sheets:
                data = re.sub(rb"<sheets>.*</sheets>", b"", data, flags=re.S)
            dst.writestr(item.filename, data)
    return out.getvalue()


HEADER_ROW = b'<row r="1"><c t="inlineStr"><is><t>prefix</t></is></c><c t="inlineStr"><is><t>price_1</t></is></c></row>'


def test_an_xlsx_row_of_millions_of_cells_is_refused_fast() -> None:
    import time

    from tarifa.rating import decks

    wide = _xlsx(HEADER_ROW + b'<row r="2">' + b"<c><v>1</v></c>" * 3_000_000 + b"</row>")
    started = time.monotonic()
    with pytest.raises(decks.DeckRejected) as refused:
        decks.parse_file(wide, "wide.xlsx")
    assert time.monotonic() - started < 3
    assert [str(e) for e in refused.value.errors] == [
        "line 2: file 'wide.xlsx' is refused: has a row with more than 256 cells; a deck has at most 15 columns"
    ]


def test_an_xlsx_deck_is_read_only_as_wide_as_the_format() -> None:
    from tarifa.rating import decks

    # 40 columns: within the cell bound, but more columns than a deck has; the extra is still named.
    cells = b"".join(b"<c><v>%d</v></c>" % i for i in range(40))
    with pytest.raises(decks.DeckRejected) as refused:
        decks.parse_file(
            _xlsx(HEADER_ROW + b'<row r="2"><c><v>44</v></c><c><v>0.1</v></c>' + cells + b"</row>"), "d.xlsx"
        )
    # openpyxl pads the header to the widest row; only 16 columns (15 known + 1) are read at all.
    errors = [str(e) for e in refused.value.errors]
    assert errors[:14] == ["line 1: header '' is refused: unknown column; allowed: " + ", ".join(decks.COLUMNS)] * 14
    assert errors[14:] == ["line 1: header '' is refused: column appears more than once"]
    rows = decks.parse_file(_xlsx(HEADER_ROW + b'<row r="2"><c><v>44</v></c><c><v>0.1</v></c></row>'), "d.xlsx")
    assert [(r.prefix, str(r.price_1)) for r in rows] == [("44", "0.1")]


def test_an_xlsx_without_worksheet_or_broken_is_refused_in_plain_words() -> None:
    from tarifa.rating import decks

    for data, said in [
        (_xlsx(no_sheets=True), "the workbook has no worksheet"),
        (b"PK\x03\x04 not a zip", "is not a readable XLSX workbook"),
        (_xlsx(b"<row><c><v>1</v></row>"), "is not a readable XLSX worksheet"),
    ]:
        with pytest.raises(decks.DeckRejected) as refused:
            decks.parse_file(data, "x.xlsx")
        text = " ".join(str(e) for e in refused.value.errors)
        assert said in text, text
        assert "(" not in text.split("is refused:")[1], text  # no library message in brackets


# --- L9: a shared directory given as TARIFA_VAR_DIR is never changed ------------------------------


def _mode(path) -> int:  # type: ignore[no-untyped-def]
    import stat

    return stat.S_IMODE(path.stat().st_mode)


def test_a_shared_sticky_var_directory_keeps_its_mode(tmp_path, monkeypatch) -> None:
    from tarifa import config

    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    (shared / "someone-elses-file").write_text("x")
    monkeypatch.setenv("TARIFA_VAR_DIR", str(shared))
    assert config.var_dir() == shared
    assert _mode(shared) == 0o1777
    empty_shared = tmp_path / "tmp-like"
    empty_shared.mkdir()
    empty_shared.chmod(0o1777)  # sticky even when empty: shared by nature
    monkeypatch.setenv("TARIFA_VAR_DIR", str(empty_shared))
    config.var_dir()
    assert _mode(empty_shared) == 0o1777


def test_an_open_directory_of_other_files_is_left_alone_but_tarifas_own_is_tightened(tmp_path, monkeypatch) -> None:
    from tarifa import config

    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("x")
    other.chmod(0o755)
    monkeypatch.setenv("TARIFA_VAR_DIR", str(other))
    config.var_dir()
    assert _mode(other) == 0o755
    own = tmp_path / "own"
    own.mkdir()
    (own / "secret_key").write_text("k")
    own.chmod(0o755)
    monkeypatch.setenv("TARIFA_VAR_DIR", str(own))
    config.var_dir()
    assert _mode(own) == 0o700
