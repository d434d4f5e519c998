"""``tarifa rate`` as a subprocess: exit codes, output, malformed input, fast and fallback paths."""

from __future__ import annotations

import csv
import random
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from tarifa.core.deck import parse_deck
from tarifa.core.rating import RateTable, rate_call

OUTPUT_HEADER = ["call_id", "callee", "prefix", "destination", "billed_seconds", "cost", "status", "reason"]
DECK_HEADER = (
    "prefix,destination,price_1,price_n,interval_1,interval_n,connect_fee,free_seconds,grace_period,"
    "post_call_surcharge,min_charge,effective_from,effective_to,period,forbidden"
)


def tarifa_rate(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tarifa.cli", "rate", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
    )


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def make_files(tmp_path: Path, seed: int, count: int, dated: bool) -> tuple[Path, Path]:
    """A deck (with effective dates and a period when ``dated``) and ``count`` CDRs."""
    rng = random.Random(seed)
    prefixes = sorted({str(rng.randint(1, 9)) + str(rng.randint(0, 10 ** rng.randint(0, 6))) for _ in range(400)})
    lines = [DECK_HEADER]
    for p in prefixes:
        i1, i_n = rng.choice([(1, 1), (6, 6), (30, 6), (60, 60), (60, 1)])
        price = f"{rng.randint(0, 2)}.{rng.randint(0, 999999):06d}"
        row = [
            p,
            f"Destination {p}",
            price,
            rng.choice([price, f"0.{rng.randint(0, 9999):04d}"]),
            str(i1),
            str(i_n),
            rng.choice(["0", "0", "0.015"]),
            rng.choice(["0", "0", "0", "6"]),
            rng.choice(["0", "0", "2"]),
            rng.choice(["0", "0", "5", "12.5"]),
            rng.choice(["0", "0", "0.1"]),
            "",
            "",
            "",
            "1" if rng.random() < 0.03 else "0",
        ]
        lines.append(",".join(row))
        if dated and rng.random() < 0.2:  # a new price from the middle of the month
            lines.append(",".join([*row[:2], "0.9", "0.9", *row[4:11], "2024-03-15T12:00:00Z", "", "", "0"]))
        if dated and rng.random() < 0.05:
            lines.append(",".join([*row[:2], "0.7", "0.7", *row[4:11], "", "", "mon-fri 08:00-18:00", "0"]))
    deck = tmp_path / f"deck-{seed}.csv"
    deck.write_text("\n".join(lines) + "\n")
    cdr_lines = ["call_id,caller,callee,connect_time,duration"]
    for i in range(count):
        p = rng.choice(prefixes)
        digits = p + "".join(rng.choice("0123456789") for _ in range(rng.randint(0, 15 - len(p))))
        style = rng.random()
        callee = (
            "+" + digits
            if style < 0.3
            else "00" + digits
            if style < 0.4
            else "12ab"
            if style < 0.41
            else str(rng.randint(1, 9)) + digits
            if style < 0.45
            else digits
        )
        moment = datetime(2024, 3, 1, tzinfo=UTC) + timedelta(seconds=rng.randint(0, 30 * 86400))
        offset = rng.choice(["Z", "+00:00", "+02:00", "-05:00"])
        shown = moment.astimezone(timezone(timedelta(hours={"Z": 0, "+00:00": 0, "+02:00": 2, "-05:00": -5}[offset])))
        stamp = shown.strftime("%Y-%m-%dT%H:%M:%S") + offset
        duration = str(rng.randint(0, 3600)) + (f".{rng.randint(1, 999)}" if rng.random() < 0.25 else "")
        cdr_lines.append(f"call-{i},442000000000,{callee},{stamp},{duration}")
    cdrs = tmp_path / f"cdrs-{seed}.csv"
    cdrs.write_text("\n".join(cdr_lines) + "\n")
    return deck, cdrs


def check_against_reference(deck: Path, cdrs: Path, out: Path, decimals: int, rounding: str, tz: str = "UTC") -> None:
    with open(deck, newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        rows, errors = parse_deck(header, ((i, r) for i, r in enumerate(reader, start=2)), tz)
    assert not errors
    table = RateTable([r.entry() for r in rows], tz)
    calls, rated = read_csv(cdrs), read_csv(out)
    assert [r["call_id"] for r in rated] == [c["call_id"] for c in calls]
    for call, row in zip(calls, rated, strict=True):
        result = rate_call(
            table,
            call["callee"],
            datetime.fromisoformat(call["connect_time"]),
            call["duration"],
            decimals,
            rounding,
            dialing_mode="e164",
        )
        expected = "" if result.cost is None else str(result.cost)
        assert (row["status"], row["prefix"], row["cost"]) == (result.status.value, result.prefix or "", expected), call
        assert int(row["billed_seconds"]) == result.billed_seconds


@pytest.mark.parametrize(("decimals", "rounding"), [(4, "half_up"), (2, "up"), (6, "down")])
def test_fast_path_costs_equal_rate_call(tmp_path: Path, decimals: int, rounding: str) -> None:
    deck, cdrs = make_files(tmp_path, seed=decimals, count=4000, dated=False)
    out = tmp_path / "rated.csv"
    result = tarifa_rate("--deck", deck, "--cdrs", cdrs, "--out", out, "--decimals", decimals, "--rounding", rounding)
    assert result.returncode == 0, result.stderr
    summary = result.stdout.strip()
    assert summary.startswith("rows 4000, rated ") and summary.endswith("CDR/s (fast path)")
    assert result.stderr == ""  # no progress bar: stderr is not a terminal
    with open(out, newline="") as handle:
        assert next(csv.reader(handle)) == OUTPUT_HEADER
    check_against_reference(deck, cdrs, out, decimals, rounding)
    rated = read_csv(out)
    statuses = {(r["status"], r["reason"]) for r in rated}
    assert statuses == {("rated", ""), ("forbidden", ""), ("unrated", "no_rate"), ("unrated", "invalid_number")}
    for row in rated:
        assert (row["cost"] != "") == (row["status"] == "rated")
        if row["cost"]:
            assert len(row["cost"].partition(".")[2]) == decimals
    total = sum((Decimal(r["cost"]) for r in rated if r["cost"]), Decimal(0))
    assert f"total cost {total}," in summary


def test_fallback_path_with_dates_and_periods(tmp_path: Path) -> None:
    deck, cdrs = make_files(tmp_path, seed=42, count=2500, dated=True)
    out = tmp_path / "rated.csv"
    result = tarifa_rate("--deck", deck, "--cdrs", cdrs, "--out", out, "--tz", "Europe/Paris")
    assert result.returncode == 0, result.stderr
    assert "(reference path, slower: " in result.stdout
    check_against_reference(deck, cdrs, out, 4, "half_up", tz="Europe/Paris")


def test_malformed_cdrs_exit_2_list_lines_and_write_nothing(tmp_path: Path) -> None:
    deck, _ = make_files(tmp_path, seed=1, count=0, dated=False)
    cdrs = tmp_path / "bad.csv"
    cdrs.write_text(
        "call_id,caller,callee,connect_time,duration\n"
        "ok1,1,441234,2024-03-01T15:00:00Z,5\n"
        ",1,441234,2024-03-01T15:00:00Z,5\n"  # 3: no call_id
        "x2,1,441234,yesterday,5\n"  # 4: time
        "x3,1,441234,2024-03-01T15:00:00Z,-1\n"  # 5: negative duration
        "x4,1,not-a-number,2024-03-01T15:00:00Z,5\n"  # fine: invalid_number, not malformed
        "x5,1,441234,2024-03-01T15:00:00Z,five\n"  # 7: duration
        "x6,1,441234,2024-03-01T15:00:00,5\n"  # 8: no offset
    )
    out = tmp_path / "rated.csv"
    result = tarifa_rate("--deck", deck, "--cdrs", cdrs, "--out", out)
    assert result.returncode == 2
    bad = [line for line in result.stderr.splitlines() if ": line " in line]
    assert [line.split(": line ")[1].split(":")[0] for line in bad] == ["3", "4", "5", "7", "8"]
    assert "nothing written" in result.stderr or "not written" in result.stderr
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([deck.name, "cdrs-1.csv", "bad.csv"])


def test_bad_header_and_bad_deck_exit_2(tmp_path: Path) -> None:
    deck, cdrs = make_files(tmp_path, seed=2, count=10, dated=False)
    out = tmp_path / "rated.csv"
    headerless = tmp_path / "headerless.csv"
    headerless.write_text("id,from,to,start,seconds\n1,2,3,4,5\n")
    result = tarifa_rate("--deck", deck, "--cdrs", headerless, "--out", out)
    assert result.returncode == 2 and "line 1: header" in result.stderr and not out.exists()

    bad_deck = tmp_path / "bad-deck.csv"
    bad_deck.write_text("prefix,price_1,interval_1\n44,0.1,60\n4x,0.1,60\n33,-1,0\n")
    result = tarifa_rate("--deck", bad_deck, "--cdrs", cdrs, "--out", out)
    assert result.returncode == 2 and not out.exists()
    errors = [line for line in result.stderr.splitlines() if line.startswith("deck ")]
    assert [e.split(": ")[1] for e in errors] == ["line 3", "line 4", "line 4"]


def test_existing_output_is_replaced_only_on_success(tmp_path: Path) -> None:
    deck, cdrs = make_files(tmp_path, seed=3, count=50, dated=False)
    out = tmp_path / "rated.csv"
    out.write_text("old\n")
    bad = tmp_path / "bad.csv"
    bad.write_text(cdrs.read_text() + "z,1,44,never,1\n")
    assert tarifa_rate("--deck", deck, "--cdrs", bad, "--out", out).returncode == 2
    assert out.read_text() == "old\n"
    assert tarifa_rate("--deck", deck, "--cdrs", cdrs, "--out", out).returncode == 0
    assert len(read_csv(out)) == 50


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    deck, cdrs = make_files(tmp_path, seed=4, count=5, dated=False)
    out = tmp_path / "rated.csv"
    for extra in (["--rounding", "sideways"], ["--dialing-mode", "uk"], ["--decimals", "13"], ["--tz", "Mars/Base"]):
        result = tarifa_rate("--deck", deck, "--cdrs", cdrs, "--out", out, *extra)
        assert result.returncode == 2, extra
    assert tarifa_rate("--deck", tmp_path / "missing.csv", "--cdrs", cdrs, "--out", out).returncode == 2
    assert not out.exists()


def test_nanp_and_decimals_over_six(tmp_path: Path) -> None:
    deck = tmp_path / "deck.csv"
    deck.write_text("prefix,destination,price_1\n1212,New York,0.0123456\n1,North America,0.01\n1411,Directory,0.5\n")
    cdrs = tmp_path / "cdrs.csv"
    cdrs.write_text(
        "call_id,caller,callee,connect_time,duration\n"
        "a,1,(212) 555-1234,2024-03-01T15:00:00Z,61\n"
        "b,1,411,2024-03-01T15:00:00Z,10\n"
        "c,1,5551234,2024-03-01T15:00:00Z,10\n"
    )
    out = tmp_path / "rated.csv"
    result = tarifa_rate("--deck", deck, "--cdrs", cdrs, "--out", out, "--dialing-mode", "nanp", "--decimals", "8")
    assert result.returncode == 2  # 0.0123456 has 7 places: the deck is refused
    deck.write_text("prefix,destination,price_1\n1212,New York,0.012345\n1,North America,0.01\n1411,Directory,0.5\n")
    result = tarifa_rate("--deck", deck, "--cdrs", cdrs, "--out", out, "--dialing-mode", "nanp", "--decimals", "8")
    assert result.returncode == 0, result.stderr
    assert "reference path, slower: 8 decimals" in result.stdout
    rows = read_csv(out)
    assert [(r["prefix"], r["cost"], r["reason"]) for r in rows] == [
        ("1212", "0.02469000", ""),
        ("1411", "0.50000000", ""),
        ("", "", "invalid_number"),
    ]


def test_unwritable_output_exits_1(tmp_path: Path) -> None:
    deck, cdrs = make_files(tmp_path, seed=5, count=5, dated=False)
    result = tarifa_rate("--deck", deck, "--cdrs", cdrs, "--out", tmp_path / "no-such-dir" / "rated.csv")
    assert result.returncode == 1 and "error:" in result.stderr


def test_output_cells_never_run_as_spreadsheet_formulas(tmp_path: Path) -> None:
    """Call ids and callees come from switches, destinations from vendors' decks: a value a
    spreadsheet would run (=, +, -, @, tab) is written with a leading ' (issue 12 item 5);
    numbers, even negative ones, are left alone."""
    deck = tmp_path / "deck.csv"
    deck.write_text(DECK_HEADER + "\n" + '44,=HYPERLINK("http://evil.example/"),0.1,0.1,60,60,0,0,0,0,0,,,,0\n')
    cdrs = tmp_path / "cdrs.csv"
    cdrs.write_text(
        "call_id,caller,callee,connect_time,duration\n"
        "=cmd|x,1,442079460958,2024-03-01T10:00:00Z,60\n"
        "@SUM(1),1,+2+2,2024-03-01T10:00:00Z,60\n"
        "plain,1,442079460959,2024-03-01T10:00:00Z,60\n"
    )
    out = tmp_path / "out.csv"
    done = tarifa_rate("--deck", deck, "--cdrs", cdrs, "--out", out)
    assert done.returncode in (0, 3), done.stderr
    rows = read_csv(out)
    by_id = {row["call_id"]: row for row in rows}
    assert set(by_id) == {"'=cmd|x", "'@SUM(1)", "plain"}, rows
    assert by_id["'=cmd|x"]["destination"] == '\'=HYPERLINK("http://evil.example/")'
    assert by_id["'@SUM(1)"]["callee"] == "'+2+2"
    assert by_id["plain"]["destination"] == '\'=HYPERLINK("http://evil.example/")'
    assert by_id["plain"]["cost"] == "0.1000" or Decimal(by_id["plain"]["cost"]) == Decimal("0.1")
