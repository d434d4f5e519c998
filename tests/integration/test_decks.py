"""Rate decks: import modes with history, all-or-nothing validation, exact round trips, diff, overrides."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.urls import reverse

from tarifa.rating.decks import DeckRejected, diff_deck, export_deck, import_file, parse_file
from tarifa.rating.models import SINCE_EVER, Rate, Tariff
from tarifa.rating.services import tariff_table

pytestmark = pytest.mark.django_db

HEADER = "prefix,destination,price_1,price_n,interval_1,interval_n,connect_fee,free_seconds,grace_period,post_call_surcharge,min_charge,effective_from,effective_to,period,forbidden\n"
JAN = datetime(2026, 1, 1, tzinfo=UTC)
FEB = datetime(2026, 2, 1, tzinfo=UTC)


@pytest.fixture
def deck_tariff():  # type: ignore[no-untyped-def]
    return Tariff.objects.create(name="Deck test", time_zone="Europe/London")


def csv_bytes(*lines: str, header: str = "prefix,destination,price_1\n") -> bytes:
    return (header + "".join(line + "\n" for line in lines)).encode()


def test_add_mode_adds_changes_and_keeps_history(deck_tariff) -> None:
    header = "prefix,destination,price_1,effective_from\n"
    first = import_file(deck_tariff, csv_bytes("44,UK,0.02,", "447,UK mobile,0.10,", header=header), "a.csv")
    assert (first.added, first.changed, first.unchanged) == (2, 0, 0)
    # Same versions again: nothing changes (re-import is idempotent).
    again = import_file(deck_tariff, csv_bytes("44,UK,0.02,", "447,UK mobile,0.10,", header=header), "a.csv")
    assert (again.added, again.changed, again.unchanged) == (0, 0, 2)
    # New prices from February (--at FEB; 44 also says so itself): each ends the old version there.
    later = import_file(
        deck_tariff,
        csv_bytes("44,UK,0.03,2026-02-01T00:00:00+00:00", "447,UK mobile,0.12,", header=header),
        "b.csv",
        at=FEB,
    )
    assert (later.added, later.changed, later.unchanged, later.superseded) == (0, 2, 0, 2)
    assert Rate.objects.filter(tariff=deck_tariff, prefix="44").count() == 2
    assert Rate.objects.get(tariff=deck_tariff, prefix="447", effective_from=SINCE_EVER).effective_to == FEB
    table = tariff_table(deck_tariff)
    assert table.find("4420", JAN + timedelta(days=3)).terms.price_1 == Decimal("0.02")
    assert table.find("4420", FEB + timedelta(days=3)).terms.price_1 == Decimal("0.03")
    assert table.find("4477", JAN).terms.price_1 == Decimal("0.10")
    assert table.find("4477", FEB).terms.price_1 == Decimal("0.12")


def test_defaults_of_optional_columns(deck_tariff) -> None:
    import_file(deck_tariff, csv_bytes("49,Germany,0.015"), "d.csv")
    rate = Rate.objects.get(tariff=deck_tariff, prefix="49")
    assert rate.price_n == Decimal("0.015") and (rate.interval_1, rate.interval_n) == (60, 60)
    assert rate.connect_fee == 0 and rate.free_seconds == 0 and rate.grace_period == 0 and not rate.forbidden
    assert rate.effective_from == SINCE_EVER and rate.effective_to is None and rate.period == ""


def test_replace_at_date_end_dates_absent_rates(deck_tariff) -> None:
    import_file(deck_tariff, csv_bytes("44,UK,0.02", "33,France,0.02", "49,Germany,0.02"), "old.csv")
    result = import_file(deck_tariff, csv_bytes("44,UK,0.025", "49,Germany,0.02"), "new.csv", mode="replace", at=FEB)
    assert (result.added, result.changed, result.unchanged, result.ended, result.superseded) == (0, 1, 1, 1, 1)
    france = Rate.objects.get(tariff=deck_tariff, prefix="33")
    assert france.effective_to == FEB
    assert Rate.objects.filter(tariff=deck_tariff, prefix="49").count() == 1  # unchanged: no new version
    table = tariff_table(deck_tariff)
    assert table.find("3312", JAN).terms.price_1 == Decimal("0.02")  # history: January calls still rated
    assert table.find("3312", FEB) is None  # gone from the date on
    assert table.find("4412", FEB).terms.price_1 == Decimal("0.025")
    assert table.find("4412", FEB - timedelta(seconds=1)).terms.price_1 == Decimal("0.02")


def test_a_deck_with_errors_imports_nothing_and_reports_every_bad_row(deck_tariff) -> None:
    import_file(deck_tariff, csv_bytes("44,UK,0.02"), "ok.csv")
    bad = (
        HEADER
        + "44,UK,0.03,,,,,,,,,,,,\n"
        + "4x,Bad,0.01,,,,,,,,,,,,\n"
        + "45,Denmark,-0.01,,0,,,,,,,,,,\n"
        + "46,Sweden,0.01,,,,,,,,,2026-03-01,2026-02-01,,\n"
        + "47,Norway,0.01,,,,,,,,,,,,maybe\n"
        + "48,Poland,0.01,,,,,,,,,,,,\n"
        + "48,Poland again,0.02,,,,,,,,,,,,\n"
    ).encode()
    with pytest.raises(DeckRejected) as exc:
        import_file(deck_tariff, bad, "bad.csv")
    found = {(e.line, e.field, e.value) for e in exc.value.errors}
    assert (3, "prefix", "4x") in found
    assert (4, "price_1", "-0.01") in found
    assert (4, "interval_1", "0") in found
    assert (5, "effective_to", "2026-02-01") in found
    assert (6, "forbidden", "maybe") in found
    assert (8, "prefix", "48") in found
    assert all(e.rule for e in exc.value.errors)
    assert "same prefix, period and effective_from as line 7" in str(next(e for e in exc.value.errors if e.line == 8))
    # Nothing of the file was stored, not even its good rows.
    assert list(Rate.objects.filter(tariff=deck_tariff).values_list("prefix", "price_1")) == [("44", Decimal("0.02"))]


def test_header_errors(deck_tariff) -> None:
    with pytest.raises(DeckRejected) as exc:
        import_file(deck_tariff, b"prefx,price\n44,0.1\n", "h.csv")
    rules = [str(e) for e in exc.value.errors]
    assert any("unknown column" in r and "prefx" in r for r in rules)
    assert any("'price_1' is refused: required column is missing" in r for r in rules)


def _full_deck() -> bytes:
    return (
        HEADER
        + "1,USA,0.0085,0.0085,1,1,0,0,0,0,0,,,,0\n"
        + "44,UK peak,0.021234,0.018,30,6,0.05,5,3,12.5,0.1,2026-01-01T00:00:00+00:00,2026-06-01T00:00:00+00:00,mon-fri 08:00-18:00,0\n"
        + "44,UK off-peak,0.011,0.011,60,60,0,0,0,0,0,2026-01-01T00:00:00+00:00,,,0\n"
        + "882,Satellite,0,0,60,60,0,0,0,0,0,,,,1\n"
    ).encode()


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_export_round_trips_exactly(deck_tariff, fmt: str) -> None:
    import_file(deck_tariff, _full_deck(), "full.csv")
    exported = export_deck(deck_tariff, fmt)
    copy = Tariff.objects.create(name=f"Copy {fmt}", time_zone="Europe/London")
    result = import_file(copy, exported, f"export.{fmt}")
    assert result.added == 4
    fields = [
        "prefix",
        "destination",
        "price_1",
        "price_n",
        "interval_1",
        "interval_n",
        "connect_fee",
        "free_seconds",
        "grace_period",
        "post_call_surcharge",
        "min_charge",
        "effective_from",
        "effective_to",
        "period",
        "forbidden",
    ]
    original = list(Rate.objects.filter(tariff=deck_tariff).order_by("prefix", "period").values(*fields))
    copied = list(Rate.objects.filter(tariff=copy).order_by("prefix", "period").values(*fields))
    assert original == copied
    assert export_deck(copy, "csv") == export_deck(deck_tariff, "csv")
    # And importing the export into its own tariff changes nothing, in either mode.
    assert import_file(deck_tariff, exported, f"export.{fmt}").unchanged == 4
    again = import_file(deck_tariff, exported, f"export.{fmt}", mode="replace")
    assert (again.added, again.changed, again.unchanged, again.ended) == (0, 0, 4, 0)
    assert export_deck(deck_tariff, "csv") == export_deck(copy, "csv")


def test_xlsx_deck_with_numeric_cells(deck_tariff) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["prefix", "destination", "price_1", "interval_1"])
    sheet.append([44, "UK", 0.0125, 30])
    buffer = io.BytesIO()
    book.save(buffer)
    import_file(deck_tariff, buffer.getvalue(), "numeric.xlsx")
    rate = Rate.objects.get(tariff=deck_tariff)
    assert (rate.prefix, rate.price_1, rate.interval_1) == ("44", Decimal("0.0125"), 30)


def test_diff_shows_added_removed_and_changed(deck_tariff) -> None:
    import_file(deck_tariff, csv_bytes("44,UK,0.02", "33,France,0.02", "49,Germany,0.02"), "old.csv")
    rows = parse_file(csv_bytes("44,UK,0.025", "49,Germany,0.02", "39,Italy,0.03"), "new.csv")
    diff = diff_deck(deck_tariff, rows)
    assert [r.prefix for r in diff.added] == ["39"]
    assert [r["prefix"] for r in diff.removed] == ["33"]
    assert [(old["prefix"], names) for old, _new, names in diff.changed] == [("44", ["price_1", "price_n"])]
    assert diff.unchanged == 1


def test_override_wins_for_its_prefix(deck_tariff) -> None:
    import_file(deck_tariff, csv_bytes("44,UK,0.02", "447,UK mobile,0.10", "49,Germany,0.02"), "base.csv")
    custom = Tariff.objects.create(name="Customer X", base=deck_tariff)
    import_file(custom, csv_bytes("447,UK mobile special,0.05"), "override.csv")
    table = tariff_table(custom)
    assert table.find("447700900123", FEB).terms.price_1 == Decimal("0.05")
    assert table.find("442079460958", FEB).terms.price_1 == Decimal("0.02")  # base for other prefixes
    assert table.find("4915112345678", FEB).destination == "Germany"
    assert tariff_table(deck_tariff).find("447700900123", FEB).terms.price_1 == Decimal("0.10")


def test_tariff_base_cycle_is_refused(deck_tariff) -> None:
    from django.core.exceptions import ValidationError

    child = Tariff.objects.create(name="Child", base=deck_tariff)
    deck_tariff.base = child
    with pytest.raises(ValidationError) as exc:
        deck_tariff.full_clean()
    assert "cycle" in str(exc.value)


@pytest.mark.django_db(transaction=True)
@pytest.mark.django_db
def test_deck_cli_end_to_end(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    """The deck commands as a user types them (the typer app ``tarifa`` runs, in this process)."""
    tarifa = cli
    Tariff.objects.create(name="CLI")
    good = tmp_path / "deck.csv"
    good.write_bytes(csv_bytes("44,UK,0.02", "49,Germany,0.02"))
    done = tarifa("deck", "import", str(good), "--tariff", "CLI")
    assert done.exit_code == 0 and "2 added" in done.stdout
    bad = tmp_path / "bad.csv"
    bad.write_bytes(csv_bytes("44,UK,zero", "4a,X,0.1"))
    done = tarifa("deck", "import", str(bad), "--tariff", "CLI")
    assert done.exit_code == 2
    assert "line 2: price_1 'zero' is refused" in done.stderr and "line 3: prefix '4a' is refused" in done.stderr
    assert "nothing was imported" in done.stderr
    out = tmp_path / "out.xlsx"
    assert tarifa("deck", "export", str(out), "--tariff", "CLI").exit_code == 0
    assert openpyxl.load_workbook(out).active.max_row == 3
    changed = tmp_path / "changed.csv"
    changed.write_bytes(csv_bytes("44,UK,0.03", "33,France,0.02"))
    done = tarifa("deck", "diff", str(changed), "--tariff", "CLI")
    assert done.exit_code == 0
    assert "+ 33" in done.stdout and "- 49" in done.stdout and "~ 44 price_1 0.02 -> 0.03" in done.stdout
    assert "1 added, 1 removed, 1 changed, 0 unchanged" in done.stdout
    # A price change from --at: the summary says what was added, changed, ended and kept.
    repriced = tmp_path / "repriced.csv"
    repriced.write_bytes(csv_bytes("44,UK,0.03", "49,Germany,0.02"))
    done = tarifa("deck", "import", str(repriced), "--tariff", "CLI", "--at", "2026-03-01T00:00:00Z")
    assert done.exit_code == 0, done.stderr
    assert (
        "CLI: 0 added, 1 changed (1 old version(s) end-dated), 1 unchanged, 0 ended (not in the deck); "
        "rows without effective_from take effect at 2026-03-01T00:00:00+00:00"
    ) in done.stdout
    assert (
        "  44: price_1 0.02 -> 0.03, price_n 0.02 -> 0.03 from 2026-03-01T00:00:00+00:00; "
        "version from since ever end-dated at 2026-03-01T00:00:00+00:00"
    ) in done.stdout
    # Amounts beyond their limits: named with line, column, value and limit; no traceback.
    huge = tmp_path / "huge.csv"
    huge.write_bytes(csv_bytes("44,UK,99999999999999,20000", header="prefix,destination,price_1,post_call_surcharge\n"))
    done = tarifa("deck", "import", str(huge), "--tariff", "CLI")
    assert done.exit_code == 2 and "Traceback" not in done.stderr
    assert "line 2: price_1 '99999999999999' is refused: must be between 0 and 9223372036854.775807" in done.stderr
    assert "line 2: post_call_surcharge '20000' is refused: must be between 0 and 10000 %" in done.stderr
    missing = tarifa("deck", "import", str(good), "--tariff", "Nope")
    assert missing.exit_code == 2 and "tariff 'Nope' does not exist" in missing.stderr


@pytest.fixture
def staff(client):  # type: ignore[no-untyped-def]
    client.force_login(get_user_model().objects.create_superuser("boss", "b@example.com", "Boss-pass1"))
    return client


def test_admin_deck_pages(staff, deck_tariff) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    url = reverse("admin:rating_tariff_deck_import", args=[deck_tariff.pk])
    assert staff.get(url).status_code == 200
    bad = SimpleUploadedFile("bad.csv", csv_bytes("44,UK,-1", "4a,X,0.1"), content_type="text/csv")
    page = staff.post(url, {"file": bad, "mode": "add"}).content.decode()
    assert "2 errors — nothing was imported" in page and "must be 1 to 15 digits" in page
    assert "must be between 0 and 9223372036854.775807" in page
    good = SimpleUploadedFile("good.csv", csv_bytes("44,UK,0.02"), content_type="text/csv")
    response = staff.post(url, {"file": good, "mode": "add"})
    assert response.status_code == 302 and Rate.objects.filter(tariff=deck_tariff).count() == 1
    export = staff.get(reverse("admin:rating_tariff_deck_export_csv", args=[deck_tariff.pk]))
    assert export.status_code == 200 and export.content.startswith(b"prefix,destination,price_1")
    diff_url = reverse("admin:rating_tariff_deck_diff", args=[deck_tariff.pk])
    other = SimpleUploadedFile("other.csv", csv_bytes("44,UK,0.04", "39,Italy,0.1"), content_type="text/csv")
    page = staff.post(diff_url, {"file": other, "mode": "add"}).content.decode()
    assert "1 added, 0 removed, 1 changed, 0 unchanged" in page and "price_1 0.02 -&gt; 0.04" in page
    change = staff.get(reverse("admin:rating_tariff_change", args=[deck_tariff.pk])).content.decode()
    assert "Import deck" in change and "Compare with file" in change


# --- history: a price change ends the old version (issue 11 item 3) ---------------------------------


@pytest.fixture(params=["tariff", "destination_set"])
def deck_target(request):  # type: ignore[no-untyped-def]
    if request.param == "tariff":
        return Tariff.objects.create(name="History", time_zone="UTC")
    from tarifa.routing.models import DestinationSet, Vendor

    return DestinationSet.objects.create(name="Carrier H A-Z", vendor=Vendor.objects.create(name="Carrier H"))


def _table(target):  # type: ignore[no-untyped-def]
    from tarifa.core.rating import RateTable
    from tarifa.rating.services import load_entries

    return RateTable(load_entries(target.rates.all()), target.time_zone)


def test_add_mode_price_change_ends_the_old_version_and_keeps_its_price(deck_target) -> None:
    from django.utils import timezone

    import_file(deck_target, csv_bytes("44,UK,0.02", "49,Germany,0.03"), "v1.csv")
    before = timezone.now()
    result = import_file(deck_target, csv_bytes("44,UK,0.025", "49,Germany,0.03"), "v2.csv")  # add, at now
    after = timezone.now()
    assert (result.added, result.changed, result.unchanged, result.superseded) == (0, 1, 1, 1)
    assert str(result).startswith("0 added, 1 changed (1 old version(s) end-dated), 1 unchanged, 0 ended")
    assert result.details[0].startswith("44: price_1 0.02 -> 0.025, price_n 0.02 -> 0.025 from ")
    old, new = deck_target.rates.filter(prefix="44").order_by("effective_from")
    assert (old.price_1, old.effective_from) == (Decimal("0.02"), SINCE_EVER)
    assert before <= old.effective_to <= after
    assert (new.price_1, new.effective_from, new.effective_to) == (Decimal("0.025"), old.effective_to, None)
    assert deck_target.rates.filter(prefix="49").count() == 1  # the unchanged row changed nothing
    # The export keeps both versions; a CDR re-rated for yesterday finds yesterday's price.
    exported = export_deck(deck_target).decode()
    assert "\n44,UK,0.02,0.02," in exported and "\n44,UK,0.025,0.025," in exported
    table = _table(deck_target)
    assert table.find("4420", before - timedelta(days=1)).terms.price_1 == Decimal("0.02")
    assert table.find("4420", after + timedelta(seconds=1)).terms.price_1 == Decimal("0.025")


def test_replace_mode_leaves_unchanged_rates_alone(deck_target) -> None:
    import_file(deck_target, csv_bytes("44,UK,0.02", "49,Germany,0.03"), "v1.csv")
    stored = sorted(deck_target.rates.values_list("id", "effective_from", "effective_to", "updated_at"))
    result = import_file(deck_target, csv_bytes("44,UK,0.02", "49,Germany,0.03"), "v1.csv", mode="replace", at=FEB)
    assert (result.added, result.changed, result.unchanged, result.ended, result.superseded) == (0, 0, 2, 0, 0)
    assert sorted(deck_target.rates.values_list("id", "effective_from", "effective_to", "updated_at")) == stored


def test_replace_mode_price_change_at_a_date(deck_target) -> None:
    import_file(deck_target, csv_bytes("44,UK,0.02", "49,Germany,0.03", "33,France,0.04"), "v1.csv")
    result = import_file(deck_target, csv_bytes("44,UK,0.021", "49,Germany,0.03"), "v2.csv", mode="replace", at=FEB)
    assert (result.added, result.changed, result.unchanged, result.ended, result.superseded) == (0, 1, 1, 1, 1)
    assert "33: ended at 2026-02-01T00:00:00+00:00 (not in the deck)" in result.details
    table = _table(deck_target)
    assert table.find("4420", JAN).terms.price_1 == Decimal("0.02")
    assert table.find("4420", FEB).terms.price_1 == Decimal("0.021")
    assert table.find("3312", JAN).terms.price_1 == Decimal("0.04") and table.find("3312", FEB) is None
    # The same deck again: nothing to do.
    again = import_file(deck_target, csv_bytes("44,UK,0.021", "49,Germany,0.03"), "v2.csv", mode="replace", at=FEB)
    assert (again.added, again.changed, again.unchanged, again.ended) == (0, 0, 2, 0)


def test_a_dated_row_never_rewrites_a_past_price_unless_at_says_so(deck_target) -> None:
    import_file(deck_target, csv_bytes("44,UK,0.02"), "v1.csv")
    dated = csv_bytes("44,UK,0.05,2026-01-01T00:00:00+00:00", header="prefix,destination,price_1,effective_from\n")
    with pytest.raises(DeckRejected) as exc:
        import_file(deck_target, dated, "dated.csv", at=FEB)
    error = exc.value.errors[0]
    assert (error.line, error.field, error.value) == (2, "effective_from", "2026-01-01T00:00:00+00:00")
    assert "never rewrites past prices" in error.rule and "from 2026-01-01T00:00:00+00:00" in error.rule
    assert list(deck_target.rates.values_list("price_1", "effective_to")) == [(Decimal("0.02"), None)]
    # With --at at (or before) the row's date the operator rewrites the past on purpose.
    done = import_file(deck_target, dated, "dated.csv", at=JAN)
    assert (done.changed, done.superseded) == (1, 1)
    assert _table(deck_target).find("4420", JAN).terms.price_1 == Decimal("0.05")


def test_a_promotion_with_an_end_date_leaves_the_regular_price_to_return(deck_target) -> None:
    import_file(deck_target, csv_bytes("44,UK,0.02"), "v1.csv")
    promo = csv_bytes(
        "44,UK,0.01,2026-03-01T00:00:00+00:00,2026-04-01T00:00:00+00:00",
        header="prefix,destination,price_1,effective_from,effective_to\n",
    )
    result = import_file(deck_target, promo, "promo.csv", at=FEB)
    assert (result.changed, result.superseded) == (1, 0)
    table = _table(deck_target)
    march, april = datetime(2026, 3, 15, tzinfo=UTC), datetime(2026, 4, 15, tzinfo=UTC)
    assert [table.find("4420", t).terms.price_1 for t in (FEB, march, april)] == [
        Decimal("0.02"),
        Decimal("0.01"),
        Decimal("0.02"),
    ]
    assert import_file(deck_target, promo, "promo.csv", at=FEB).unchanged == 1


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="row locks between sessions: SQLite has one writer at a time (and the test database is in memory)",
)
@pytest.mark.django_db(transaction=True)
def test_two_imports_into_one_tariff_at_once_run_one_after_the_other() -> None:
    import threading

    tariff = Tariff.objects.create(name="Race")
    deck = csv_bytes(*(f"{prefix},Dest {prefix},0.0{prefix[-1]}" for prefix in (str(n) for n in range(31, 91))))
    results: list[object] = []
    start = threading.Barrier(2)

    def run() -> None:
        try:
            start.wait()
            results.append(import_file(tariff, deck, "race.csv"))
        except Exception as exc:  # noqa: BLE001 - the test reports whatever went wrong
            results.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted((r.added, r.unchanged) for r in results) == [(0, 60), (60, 0)], results  # type: ignore[attr-defined]
    assert Rate.objects.filter(tariff=tariff).count() == 60


def test_admin_deck_import_keeps_history_and_says_what_changed(staff, deck_tariff) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    url = reverse("admin:rating_tariff_deck_import", args=[deck_tariff.pk])
    staff.post(url, {"file": SimpleUploadedFile("v1.csv", csv_bytes("44,UK,0.02", "49,Germany,0.02")), "mode": "add"})
    v2 = SimpleUploadedFile("v2.csv", csv_bytes("44,UK,0.03", "49,Germany,0.02"))
    page = staff.post(url, {"file": v2, "mode": "replace", "at": "2026-02-01 00:00"}, follow=True).content.decode()
    assert "0 added, 1 changed (1 old version(s) end-dated), 1 unchanged, 0 ended (not in the deck)" in page
    assert "44: price_1 0.02 -&gt; 0.03" in page
    assert list(
        Rate.objects.filter(tariff=deck_tariff, prefix="44")
        .order_by("effective_from")
        .values_list("price_1", "effective_to")
    ) == [(Decimal("0.02"), FEB), (Decimal("0.03"), None)]
    assert Rate.objects.filter(tariff=deck_tariff, prefix="49").count() == 1


def test_a_deck_import_makes_every_process_reread_its_rate_tables(
    deck_target, django_capture_on_commit_callbacks
) -> None:
    """Deck imports write by raw bulk statements (no post_save): ``rating.signals.rates_written``
    tells the call cache, which moves the shared configuration version once the import commits
    -- for a tariff and for a destination set alike; an import that changes nothing moves nothing."""
    from tarifa.calls.models import ConfigVersion

    def version() -> int:
        row = ConfigVersion.objects.filter(pk=1).first()
        return row.version if row else 0

    with django_capture_on_commit_callbacks(execute=True):
        import_file(deck_target, csv_bytes("44,UK,0.02"), "v1.csv")
    first = version()
    assert first > 0
    with django_capture_on_commit_callbacks(execute=True):
        import_file(deck_target, csv_bytes("44,UK,0.03"), "v2.csv")
    assert version() > first
    moved = version()
    with django_capture_on_commit_callbacks(execute=True):
        import_file(deck_target, csv_bytes("44,UK,0.03"), "v2.csv")  # the same deck again: nothing changes
    assert version() == moved
