"""``tarifa rate`` pieces (src/tarifa/batchrate/) and the converters it shares with CDR ingestion
(src/tarifa/core/converters.py), called directly with temporary files."""

from __future__ import annotations

import csv
import io
import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tarifa import batchrate
from tarifa.batchrate import (
    CDR_COLUMNS,
    OUTPUT_COLUMNS,
    InputError,
    check_cdr_header,
    connect_times,
    durations,
    fast_deck_for_window,
    load_cdrs,
    load_deck,
    parse_connect_time,
    parse_duration,
    rate_file,
)
from tarifa.batchrate.readers import _fast_times, _read_fast
from tarifa.core.array_rating import FastDeck, FastPathUnsupported
from tarifa.core.converters import format_units, format_units_int, normalize_numbers
from tarifa.core.deck import COLUMNS as DECK_COLUMNS
from tarifa.core.numbering import InvalidNumber, normalize
from tarifa.core.rating import RateTable, duration_from_seconds, rate_call

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

DECK = """prefix,destination,price_1,price_n,interval_1,interval_n,connect_fee,forbidden
1,USA,0.01,0.01,60,60,0,0
1212,New York,0.008,0.008,6,6,0,0
1900,Premium,0,0,60,60,0,1
44,UK,0.02,0.02,60,60,0.01,0
"""
CDRS = """call_id,caller,callee,connect_time,duration
a,1,+1 212 555 1234,2024-03-01T15:00:00Z,61.2
b,1,19005551234,2024-03-01T15:00:00+01:00,60
c,1,12a45,2024-03-01 16:00:00+00:00,60
d,1,8613800138000,2024-03-01T15:00:00.5-05:00,10
e,1,0044 20 7123 4567,2024-03-01T15:00:00+00:00, 1e2
"""


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def reference(normalize_mode: str, value: str) -> str | None:
    try:
        return normalize(value, normalize_mode)
    except InvalidNumber:
        return None


# ---------------------------------------------------------------------------------------
# Numbers: the vectorised normalisation must equal core.numbering.normalize

NUMBER_ALPHABET = "0123456789" * 4 + "+-.() \t" + "x#٣１\n"


def _generated_numbers(rng: random.Random, count: int) -> list[str]:
    heads = ["", "+", "00", "011", "1", "0", "+0", "00 0", "(", "+1 ", "1-", "011 44 "]
    out = []
    for _ in range(count):
        kind = rng.random()
        if kind < 0.6:
            digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(0, 18)))
            sep = rng.choice(["", " ", "-", ".", "(", ")"])
            if sep and digits:
                cut = rng.randint(0, len(digits))
                digits = digits[:cut] + sep + digits[cut:]
            out.append(rng.choice(heads) + digits)
        elif kind < 0.7:
            out.append(rng.choice(["411", "911", "211", "011", "111", "0411", "1411", "2125551234"]))
        else:
            out.append("".join(rng.choice(NUMBER_ALPHABET) for _ in range(rng.randint(0, 20))))
    out += ["", "+", "00", "011", "+" + "1" * 15, "+" + "1" * 16, "1" * 65, "1 " * 33, "٣" * 11]
    return out


@pytest.mark.parametrize("mode", ["e164", "nanp"])
def test_normalize_numbers_equals_reference_on_many_inputs(mode: str) -> None:
    values = _generated_numbers(random.Random(7), 30_000)
    got = normalize_numbers(pl.Series(values), mode).to_list()
    expected = [reference(mode, v) for v in values]
    diffs = [(v, g, e) for v, g, e in zip(values, got, expected, strict=True) if g != e]
    assert not diffs, diffs[:10]
    assert sum(e is not None for e in expected) > 5_000  # the sample has valid numbers too


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.text(alphabet=NUMBER_ALPHABET, max_size=25), min_size=1, max_size=30), st.sampled_from(["e164", "nanp"])
)
def test_normalize_numbers_property(values: list[str], mode: str) -> None:
    assert normalize_numbers(pl.Series(values), mode).to_list() == [reference(mode, v) for v in values]


def test_normalize_numbers_nulls_and_docs_examples() -> None:
    got = normalize_numbers(pl.Series(["(212) 555-1234", "1-212-555-1234", "011 44 20 7123 4567", "411", None]), "nanp")
    assert got.to_list() == ["12125551234", "12125551234", "442071234567", "1411", None]
    got = normalize_numbers(pl.Series(["+44 20 7123 4567", "0044 20 7123 4567", "442071234567"]), "e164")
    assert got.to_list() == ["442071234567"] * 3
    with pytest.raises(ValueError):
        normalize_numbers(pl.Series(["1"]), "uk")


# ---------------------------------------------------------------------------------------
# Connect times and durations: vectorised forms equal the reference parsers


def _generated_times(rng: random.Random, count: int) -> list[str]:
    out = []
    for _ in range(count):
        y = rng.choice([1, 1970, 1999, 2024, 2025, 2026, 9999, 0])
        m, d = rng.randint(0, 13), rng.randint(0, 32)
        hh, mm, ss = rng.randint(0, 25), rng.randint(0, 61), rng.randint(0, 61)
        text = f"{y:04d}-{m:02d}-{d:02d}{rng.choice('T T')}{hh:02d}:{mm:02d}:{ss:02d}"
        if rng.random() < 0.4:
            text += "." + "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 9)))
        zone = rng.random()
        if zone < 0.3:
            text += "Z"
        elif zone < 0.9:
            text += f"{rng.choice('+-')}{rng.randint(0, 25):02d}:{rng.randint(0, 61):02d}"
        elif zone < 0.95:
            text += f"{rng.choice('+-')}{rng.randint(0, 14):02d}{rng.randint(0, 59):02d}"
        if rng.random() < 0.02:
            text = " " + text
        out.append(text)
    return out


def test_connect_times_equal_reference() -> None:
    rng = random.Random(3)
    values = [
        *_generated_times(rng, 20_000),
        "",
        "2024-03-01",
        "2024-03-01T15:00",
        "20240301T150000Z",
        "2024-03-01T15:00:00,5+01:00",
        "2024-03-01T15:00:00+01",
        "2024-02-29T23:59:59.999999Z",
        "2023-02-29T10:00:00Z",
        "2024-03-01T15:00:60Z",
        "0000-01-01T00:00:00Z",
        "0001-01-01T00:30:00+01:00",
        "2024-03-01T24:00:00Z",
        "2024-03-01T15:00:00+24:00",
        "2024-03-01T15:00:00-23:59",
        "2024-03-01T15:00:00Zx",
        "\uff12\uff10\uff12\uff14-03-01T15:00:00Z",  # full-width digits
    ]
    got, errors = connect_times(pl.Series(values))
    for i, text in enumerate(values):
        expected = parse_connect_time(text)
        if isinstance(expected, str):
            assert errors.get(i) == expected, text
        else:
            assert i not in errors and int(got[i]) == expected, text
    fast = _fast_times(pl.Series(values)).to_list()
    assert sum(v is not None for v in fast) > 3_000  # the vectorised form did most valid rows


def test_parse_connect_time_reference() -> None:
    assert parse_connect_time("1970-01-01T00:00:01Z") == 1_000_000
    assert parse_connect_time("1970-01-01T01:00:00.25+01:00") == 250_000
    assert parse_connect_time(" 2024-03-01T15:00:00+00:00 ") == (
        datetime(2024, 3, 1, 15, tzinfo=UTC) - EPOCH
    ) // timedelta(microseconds=1)
    assert "no UTC offset" in str(parse_connect_time("2024-03-01T15:00:00"))
    assert "missing" in str(parse_connect_time(None))
    assert "day is out of range" in str(parse_connect_time("2024-02-30T15:00:00Z"))


def test_durations_equal_reference() -> None:
    rng = random.Random(5)
    values = [str(rng.randint(0, 4000)) for _ in range(2000)]
    values += [f"{rng.randint(0, 4000)}.{rng.randint(0, 10 ** rng.randint(1, 8))}" for _ in range(2000)]
    values += [
        "0",
        "0.0",
        "0.000",
        "0.001",
        "1.",
        ".5",
        "+5",
        "-0",
        "-1",
        "-0.5",
        "1e3",
        "1E-2",
        "nan",
        "inf",
        "",
        " 7 ",
        "1_000",
        "abc",
        "999999999999",
        "999999999999.1",
        "1000000000001",
        "99999999999999999999",
        "\uff11\uff12",
        "3.0000000001",
        "60.0",
        "1e999999999",
        "-inf",
        "sNaN",
        "1000000000000",
        "1000000000000.5",
        "0.000000000000000000001",
    ]
    got, errors = durations(pl.Series(values))
    for i, text in enumerate(values):
        expected = parse_duration(text)
        if isinstance(expected, str):
            assert errors.get(i) == expected, text
        else:
            assert i not in errors and int(got[i]) == expected, text
            assert expected == duration_from_seconds(text)


def test_parse_duration_messages() -> None:
    assert parse_duration("61.2") == 62
    assert parse_duration("0.0") == 0
    assert parse_duration("-3") == "duration '-3' is negative"
    assert "not a number" in str(parse_duration("x"))
    assert "not a finite" in str(parse_duration("inf"))
    assert "longer than" in str(parse_duration(str(batchrate.MAX_DURATION + 1)))
    assert parse_duration(str(batchrate.MAX_DURATION)) == batchrate.MAX_DURATION


# ---------------------------------------------------------------------------------------
# Money text


@pytest.mark.parametrize("decimals", [0, 1, 2, 4, 6])
def test_format_units_is_exact(decimals: int) -> None:
    rng = random.Random(decimals)
    units = [0, 1, 9, 10, 10**decimals - 1, 10**decimals, 2**62] + [rng.randint(0, 10**12) for _ in range(500)]
    got = format_units(pl.Series([*units, None], dtype=pl.Int64), decimals).to_list()
    expected = [format(Decimal(u).scaleb(-decimals), "f") for u in units] + [None]
    assert got == expected
    assert format_units_int(12345, decimals) == format(Decimal(12345).scaleb(-decimals), "f")


# ---------------------------------------------------------------------------------------
# The deck


def test_load_deck_csv_and_errors(tmp_path: Path) -> None:
    rows, errors = load_deck(write(tmp_path / "deck.csv", DECK))
    assert not errors and [r.prefix for r in rows] == ["1", "1212", "1900", "44"]
    assert rows[0].line == 2
    bad = write(tmp_path / "bad.csv", 'prefix,price_1,destination\n44,abc,UK\n"4\n5",0.1,x\n4a,0.1,x\n')
    rows, errors = load_deck(bad)
    assert [(e.line, e.field) for e in errors] == [(2, "price_1"), (3, "prefix"), (5, "prefix")]
    rows, errors = load_deck(write(tmp_path / "empty.csv", ""))
    assert errors and errors[0].line == 1


def test_load_deck_xlsx_matches_csv(tmp_path: Path) -> None:
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["prefix", "destination", "price_1", "price_n", "effective_from", "forbidden"])
    sheet.append(["44", "UK", 0.0125, "0.02", datetime(2024, 1, 1, 0, 0), 0])
    sheet.append([1212, "New York", 0.008, 0.008, date(2024, 2, 1), True])
    sheet.append([None, None, None, None, None, None])  # a formatted, empty row
    path = tmp_path / "deck.xlsx"
    book.save(path)
    rows, errors = load_deck(path, "Europe/London")
    assert not errors
    assert [(r.line, r.prefix, r.price_1, r.forbidden) for r in rows] == [
        (2, "44", Decimal("0.0125"), False),
        (3, "1212", Decimal("0.008"), True),
    ]
    assert rows[1].effective_from == datetime(2024, 2, 1, tzinfo=UTC)  # London is UTC in winter


def _random_dated_rows(rng: random.Random, tmp_path: Path, index: int) -> Path:
    lines = [",".join(DECK_COLUMNS)]
    for _ in range(rng.randint(1, 25)):
        prefix = rng.choice(["1", "12", "123", "44", "447", "4478", "0", "33"])
        start = rng.choice(["", "2024-01-01", "2024-03-01T00:00:00Z", "2024-06-01", "2023-01-01"])
        end = rng.choice(["", "", "2024-04-01", "2025-01-01", "2024-03-15T12:00:00+00:00"])
        if start and end and start[:10] >= end[:10]:
            end = ""
        period = rng.choice(["", "", "", "", "mon-fri 08:00-18:00", "always"])
        price = f"0.{rng.randint(0, 999):03d}"
        lines.append(f"{prefix},D {prefix},{price},{price},60,60,0,0,0,0,0,{start},{end},{period},0")
    return write(tmp_path / f"dated{index}.csv", "\n".join(lines) + "\n")


def test_fast_deck_for_window_agrees_with_for_window(tmp_path: Path) -> None:
    rng = random.Random(11)
    checked = supported = 0
    for index in range(300):
        rows, errors = load_deck(_random_dated_rows(rng, tmp_path, index))
        if errors:  # a repeated (prefix, period, effective_from): parse_deck refuses it
            continue
        table = RateTable([r.entry() for r in rows])
        lines = {id(e): r.line for e, r in zip(table.entries, rows, strict=True)}
        for _ in range(5):
            start = datetime(2023, 6, 1, tzinfo=UTC) + timedelta(hours=rng.randint(0, 24 * 600))
            end = start + timedelta(hours=rng.randint(1, 24 * 90))
            try:
                expected = FastDeck.for_window(table, start, end)
            except FastPathUnsupported as exc:
                with pytest.raises(FastPathUnsupported) as caught:
                    fast_deck_for_window(rows, start, end)
                assert str(caught.value) == str(exc)
            else:
                got = fast_deck_for_window(rows, start, end)
                assert got.prefixes == expected.prefixes
                assert [e.line for e in got.entries] == [lines[id(e)] for e in expected.entries]
                supported += 1
            checked += 1
    assert checked > 500 and supported > 50


# ---------------------------------------------------------------------------------------
# CDR files


def test_check_cdr_header() -> None:
    assert check_cdr_header(list(CDR_COLUMNS)) == []
    assert check_cdr_header([" Call_ID", "caller", "callee", "connect_time", "duration", "extra"]) == []
    problems = check_cdr_header(["call_id", "callee", "callee", "connect_time"])
    assert len(problems) == 3 and all(p.startswith("line 1: header") for p in problems)


def test_load_cdrs_converts(tmp_path: Path) -> None:
    batch = load_cdrs(write(tmp_path / "c.csv", CDRS))
    assert len(batch) == 5
    assert batch.seconds.tolist() == [62, 60, 60, 10, 100]
    assert batch.numbers.tolist() == [12125551234, 19005551234, 0, 8613800138000, 442071234567]
    assert batch.connect_us[1] == (datetime(2024, 3, 1, 14, tzinfo=UTC) - EPOCH) // timedelta(microseconds=1)
    assert batch.call_id.to_list() == list("abcde")


def test_load_cdrs_lists_every_bad_line_with_file_line_numbers(tmp_path: Path) -> None:
    text = (
        "call_id,caller,callee,connect_time,duration\n"  # 1
        "a,1,441234,2024-03-01T15:00:00Z,5\n"  # 2 fine
        ",1,44,2024-03-01T15:00:00,x\n"  # 3 three problems
        "\n"  # 4 blank: ignored
        '"multi\nline",1,44,2024-02-30T15:00:00Z,-3\n'  # 5-6
        "d,1,4 4,2024-03-01T15:00:00Z,1e3\n"  # 7 fine (1e3 = 1000 s)
        "e,1,44,2024-03-01T15:00:00Z,2,extra\n"  # 8 too many fields
        "f,1,not a number,2024-03-01T15:00:00Z,2\n"  # 9 fine: an invalid number is not malformed
    )
    with pytest.raises(InputError) as caught:
        load_cdrs(write(tmp_path / "bad.csv", text))
    messages = caught.value.messages
    assert [m.split(":")[0] for m in messages] == ["line 3", "line 5", "line 8"]
    assert "call_id is missing" in messages[0] and "no UTC offset" in messages[0]
    assert "not a number" in messages[0]
    assert "negative" in messages[1] and "day is out of range" in messages[1]
    assert "6 fields" in messages[2]


def test_load_cdrs_header_problems(tmp_path: Path) -> None:
    for text in ["", "\n", "call_id,caller,callee,connect_time\n1,2,3,4\n", "a,b,c\n"]:
        with pytest.raises(InputError) as caught:
            load_cdrs(write(tmp_path / "h.csv", text))
        assert all(m.startswith("line 1: header") for m in caught.value.messages)


def test_load_cdrs_polars_refusal_goes_through_csv_module(tmp_path: Path) -> None:
    # A stray quote inside a field: polars refuses the file, the csv module reads it.
    text = CDRS + 'f,1,44 20,2024-03-01T15:00:00Z,7"\n'
    assert _read_fast(write(tmp_path / "q.csv", text), 5, {c: i for i, c in enumerate(CDR_COLUMNS)}) is None
    with pytest.raises(InputError) as caught:
        load_cdrs(tmp_path / "q.csv")
    assert caught.value.messages == ["line 7: duration '7\"' is not a number of seconds"]
    batch = load_cdrs(write(tmp_path / "q2.csv", CDRS + 'f,1,44 2"0,2024-03-01T15:00:00Z,7\n'))
    assert len(batch) == 6 and batch.callee.to_list()[-1] == '44 2"0'


def test_load_cdrs_extra_columns_any_order_and_bom(tmp_path: Path) -> None:
    text = "\ufeffduration,note,callee,connect_time,caller,call_id\n5,x,441,2024-01-01T00:00:00Z,9,id1\n"
    batch = load_cdrs(write(tmp_path / "o.csv", text))
    assert batch.call_id.to_list() == ["id1"] and batch.seconds.tolist() == [5]


# ---------------------------------------------------------------------------------------
# rate_file


def test_rate_file_output(tmp_path: Path) -> None:
    out = tmp_path / "rated.csv"
    summary = rate_file(write(tmp_path / "d.csv", DECK), write(tmp_path / "c.csv", CDRS), out)
    rows = read_rows(out)
    assert list(rows[0]) == list(OUTPUT_COLUMNS)
    assert [r["call_id"] for r in rows] == list("abcde")
    assert [(r["prefix"], r["billed_seconds"], r["cost"], r["status"], r["reason"]) for r in rows] == [
        ("1212", "66", "0.0088", "rated", ""),
        ("1900", "0", "", "forbidden", ""),
        ("", "0", "", "unrated", "invalid_number"),
        ("", "0", "", "unrated", "no_rate"),
        ("44", "120", "0.0500", "rated", ""),
    ]
    # a callee as the switch wrote it; leading + with spaces would run as a formula: guarded (issue 12 item 5)
    assert rows[0]["callee"] == "'+1 212 555 1234" and rows[0]["destination"] == "New York"
    assert (summary.rows, summary.rated, summary.unrated, summary.forbidden) == (5, 2, 2, 1)
    assert summary.total_cost == "0.0588" and summary.fast_path
    line = summary.line()
    assert line.startswith("rows 5, rated 2, unrated 2, forbidden 1, total cost 0.0588, ")
    assert "CDR/s (fast path)" in line
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize(("decimals", "rounding", "fast"), [(0, "down", True), (2, "up", True), (8, "half_up", False)])
def test_rate_file_decimals_and_rounding(tmp_path: Path, decimals: int, rounding: str, fast: bool) -> None:
    out = tmp_path / "rated.csv"
    summary = rate_file(
        write(tmp_path / "d.csv", DECK), write(tmp_path / "c.csv", CDRS), out, decimals=decimals, rounding=rounding
    )
    assert summary.fast_path is fast
    costs = [r["cost"] for r in read_rows(out)]
    table = RateTable([r.entry() for r in load_deck(tmp_path / "d.csv")[0]])
    batch = load_cdrs(tmp_path / "c.csv")
    for i, (callee, cost) in enumerate(zip(batch.callee.to_list(), costs, strict=True)):
        moment = EPOCH + timedelta(microseconds=int(batch.connect_us[i]))
        result = rate_call(table, callee, moment, int(batch.seconds[i]), decimals, rounding, dialing_mode="e164")
        assert cost == ("" if result.cost is None else str(result.cost))
        if cost:
            assert len(cost.partition(".")[2]) == decimals


def test_rate_file_nanp_mode(tmp_path: Path) -> None:
    cdrs = write(tmp_path / "c.csv", CDRS.replace("+1 212 555 1234", "(212) 555-1234"))
    out = tmp_path / "r.csv"
    rate_file(write(tmp_path / "d.csv", DECK), cdrs, out, dialing_mode="nanp")
    rows = read_rows(out)
    assert rows[0]["prefix"] == "1212" and rows[4]["prefix"] == "44"  # 0044... is international


def test_rate_file_fallback_with_periods(tmp_path: Path) -> None:
    deck = write(
        tmp_path / "d.csv",
        "prefix,destination,price_1,period\n44,UK,0.03,\n"
        "447,UK mobile peak,0.08,mon-fri 08:00-18:00\n447,UK mobile,0.04,\n",
    )
    cdrs = write(
        tmp_path / "c.csv",
        CDRS + "f,1,447700900123,2024-03-04T13:00:00Z,60\ng,1,447700900123,2024-03-04T18:00:00Z,60\n",
    )
    out = tmp_path / "r.csv"
    summary = rate_file(deck, cdrs, out, tz_name="Europe/London")
    assert not summary.fast_path and "time period" in summary.fallback_reason
    assert "reference path, slower" in summary.line()
    rows = read_rows(out)
    assert [(r["prefix"], r["cost"]) for r in rows[-2:]] == [("447", "0.0800"), ("447", "0.0400")]
    assert rows[4]["cost"] == "0.0600"  # 0044..., 100 s at 0.03


def test_rate_file_malformed_writes_nothing(tmp_path: Path) -> None:
    out = write(tmp_path / "rated.csv", "previous result\n")
    with pytest.raises(InputError) as caught:
        rate_file(
            write(tmp_path / "d.csv", "prefix,price_1\n44,abc\n"),
            write(tmp_path / "c.csv", CDRS + ",1,44,2024-03-01T15:00:00Z,1\n"),
            out,
        )
    assert [m.split(": line")[0] for m in caught.value.messages] == [
        f"deck {tmp_path / 'd.csv'}",
        f"cdrs {tmp_path / 'c.csv'}",
    ]
    assert "line 7: call_id is missing" in caught.value.messages[1]
    assert out.read_text() == "previous result\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.csv", "d.csv", "rated.csv"]


def test_rate_file_header_only_and_empty_deck(tmp_path: Path) -> None:
    out = tmp_path / "r.csv"
    summary = rate_file(write(tmp_path / "d.csv", DECK), write(tmp_path / "c.csv", ",".join(CDR_COLUMNS) + "\n"), out)
    assert out.read_text().strip() == ",".join(OUTPUT_COLUMNS) and summary.rows == 0
    summary = rate_file(write(tmp_path / "d2.csv", "prefix,price_1\n"), tmp_path / "c.csv", out)
    summary = rate_file(tmp_path / "d2.csv", write(tmp_path / "c2.csv", CDRS), out)
    assert summary.unrated == 5 and summary.total_cost == "0.0000"


def test_rate_file_write_failure_leaves_no_temp_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(self: pl.DataFrame, target: str) -> None:
        Path(target).write_text("partial")
        raise OSError("disk full")

    monkeypatch.setattr(pl.DataFrame, "write_csv", boom)
    with pytest.raises(OSError, match="disk full"):
        rate_file(write(tmp_path / "d.csv", DECK), write(tmp_path / "c.csv", CDRS), tmp_path / "r.csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.csv", "d.csv"]


def test_rate_file_with_progress_bar(tmp_path: Path) -> None:
    summary = rate_file(
        write(tmp_path / "d.csv", DECK), write(tmp_path / "c.csv", CDRS), tmp_path / "r.csv", progress=True
    )
    assert summary.rows == 5


def test_rate_file_overflow_falls_back(tmp_path: Path) -> None:
    deck = write(tmp_path / "d.csv", "prefix,price_1\n44,999999999.999999\n")
    cdrs = write(tmp_path / "c.csv", ",".join(CDR_COLUMNS) + "\nx,1,4412,2024-01-01T00:00:00Z,999999999999\n")
    out = tmp_path / "r.csv"
    summary = rate_file(deck, cdrs, out)
    assert not summary.fast_path
    table = RateTable([r.entry() for r in load_deck(deck)[0]])
    expected = rate_call(table, "4412", datetime(2024, 1, 1, tzinfo=UTC), 999999999999, 4, "half_up")
    assert read_rows(out)[0]["cost"] == str(expected.cost)
    assert "too large" in summary.fallback_reason


def _generated_deck_and_cdrs(tmp_path: Path, rng: random.Random, dated: bool) -> tuple[Path, Path]:
    lines = [",".join(DECK_COLUMNS)]
    prefixes = sorted({str(rng.randint(1, 9)) + str(rng.randint(0, 10 ** rng.randint(0, 5))) for _ in range(300)})
    for p in prefixes:
        price = f"0.{rng.randint(0, 999999):06d}"
        i1, i_n = rng.choice([(1, 1), (6, 6), (30, 6), (60, 60)])
        fields = [
            p,
            f"D{p}",
            price,
            price if rng.random() < 0.7 else f"0.{rng.randint(0, 9999):04d}",
            str(i1),
            str(i_n),
            rng.choice(["0", "0", "0.05"]),
            rng.choice(["0", "0", "10"]),
            rng.choice(["0", "0", "3"]),
            rng.choice(["0", "0", "12.5"]),
            rng.choice(["0", "0", "0.25"]),
            "",
            "",
            "",
            "1" if rng.random() < 0.03 else "0",
        ]
        lines.append(",".join(fields))
        if dated and rng.random() < 0.1:
            fields[11], fields[2] = "2024-03-10", "0.5"
            lines.append(",".join(fields))
    deck = write(tmp_path / f"deck{dated}.csv", "\n".join(lines) + "\n")
    out = io.StringIO()
    out.write(",".join(CDR_COLUMNS) + "\n")
    for i in range(3000):
        p = rng.choice(prefixes)
        number = p + "".join(rng.choice("0123456789") for _ in range(rng.randint(0, 9)))
        number = rng.choice(["", "+", "00"]) + number if rng.random() < 0.97 else "x" + number
        moment = datetime(2024, 3, 1, tzinfo=UTC) + timedelta(seconds=rng.randint(0, 20 * 86400))
        duration = str(rng.randint(0, 3600)) + (f".{rng.randint(0, 99)}" if rng.random() < 0.3 else "")
        out.write(f"id{i},1,{number},{moment.isoformat()},{duration}\n")
    return deck, write(tmp_path / f"cdrs{dated}.csv", out.getvalue())


@pytest.mark.parametrize("dated", [False, True])
def test_rate_file_costs_equal_rate_call(tmp_path: Path, dated: bool) -> None:
    deck, cdrs = _generated_deck_and_cdrs(tmp_path, random.Random(int(dated)), dated)
    out = tmp_path / "r.csv"
    summary = rate_file(deck, cdrs, out, decimals=4, rounding="half_up")
    assert summary.fast_path is not dated
    rows, _ = load_deck(deck)
    table = RateTable([r.entry() for r in rows])
    with open(cdrs, newline="") as handle:
        calls = list(csv.DictReader(handle))
    rated = read_rows(out)
    assert len(rated) == len(calls) == 3000
    total = Decimal(0)
    for call, row in zip(calls, rated, strict=True):
        result = rate_call(
            table,
            call["callee"],
            datetime.fromisoformat(call["connect_time"]),
            call["duration"],
            4,
            "half_up",
            dialing_mode="e164",
        )
        assert row["call_id"] == call["call_id"]
        assert row["status"] == result.status.value
        assert row["reason"] == (result.reason.value if result.reason else "")
        assert row["prefix"] == (result.prefix or "")
        assert int(row["billed_seconds"]) == result.billed_seconds
        assert row["cost"] == ("" if result.cost is None else str(result.cost))
        total += result.cost or 0
    assert summary.total_cost == str(total)


def test_window_check_uses_file_times(tmp_path: Path) -> None:
    deck = write(tmp_path / "d.csv", "prefix,price_1,effective_from\n44,0.02,\n44,0.03,2024-06-01\n")
    cdrs = write(tmp_path / "c.csv", ",".join(CDR_COLUMNS) + "\na,1,441,2024-03-01T00:00:00Z,60\n")
    out = tmp_path / "r.csv"
    assert rate_file(deck, cdrs, out).fast_path  # the whole file is before the change
    assert read_rows(out)[0]["cost"] == "0.0200"
    write(cdrs, ",".join(CDR_COLUMNS) + "\na,1,441,2024-03-01T00:00:00Z,60\nb,1,441,2024-06-01T00:00:00Z,60\n")
    summary = rate_file(deck, cdrs, out)
    assert not summary.fast_path and "inside the window" in summary.fallback_reason
    assert [r["cost"] for r in read_rows(out)] == ["0.0200", "0.0300"]


def test_cli_module_registers_rate_without_importing_polars() -> None:
    import subprocess
    import sys

    code = (
        "import sys, typer; from tarifa import batchrate; app = typer.Typer(); batchrate.register(app); "
        "print('polars' in sys.modules, 'numpy' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "False"]


def test_numbers_array_dtype() -> None:
    batchless = normalize_numbers(pl.Series(["+44 1"]), "e164").cast(pl.Int64).to_numpy()
    assert batchless.dtype == np.int64 and batchless.tolist() == [441]
