"""``tarifa rate``: standalone batch rating of a CDR file against a deck file (no database).

An operator checks a vendor's invoice against their own rate deck::

    tarifa rate --deck DECK.csv --cdrs CDRS.csv --out RATED.csv [--decimals N]
                [--rounding half_up|up|down] [--dialing-mode e164|nanp] [--tz ZONE]

Pipeline (docs/batch-rating.md has the user's view):

1. The deck (CSV or XLSX) is read cell by cell and validated with
   :func:`tarifa.core.deck.parse_deck`; any deck error stops the run (exit 2).
2. At the same time, in a second thread, polars reads the CDR file (all columns as text) and
   validates and converts it with vectorised expressions: connect times to UTC microseconds,
   durations to whole seconds (a fraction rounds *up*, decided on the digits, never via
   ``float``), dialled numbers to E.164 digits as ``int64`` (the same result as
   :func:`tarifa.core.numbering.normalize`). The few values the vectorised forms do not
   cover (unusual but valid ISO 8601 spellings, ``1e3`` durations...) are parsed one by one
   with the reference functions, so the accepted language is exactly theirs.
   Malformed rows stop the run (exit 2) with every bad line listed; line numbers come from
   a second, slower read with the :mod:`csv` module that knows where each record starts.
3. Fast path: when the deck is valid for the whole time window of the file (the rule of
   :meth:`tarifa.core.fastrate.FastDeck.for_window`: every rate version overlapping the
   window covers all of it and has no period), the calls are rated with
   :func:`tarifa.core.fastrate.rate_batch` in integer micro-units. Otherwise (or with more
   than 6 decimals, or amounts too large for ``int64``) every call is rated with the
   reference :func:`tarifa.core.rating.rate_call`: exact as well, but slower, and the
   summary says so.
4. The result is written to a temporary file next to ``--out`` and renamed over it at the
   end, so a failed run never leaves a partial output behind.

Money never passes through ``float``: costs are integer units of ``10**-decimals`` and are
formatted with integer ``//`` and ``%``.
"""

from __future__ import annotations

import csv
import gc
import os
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, cast

import typer

from tarifa.core.deck import DeckError, DeckRow, parse_deck
from tarifa.core.periods import EPOCH, micros, moment
from tarifa.core.rating import MAX_DECIMALS, RateTable, Rounding, duration_from_seconds, rate_call

if TYPE_CHECKING:  # numpy and polars are imported when the command runs, not with the CLI
    import numpy as np
    import numpy.typing as npt
    import polars as pl

    from tarifa.core.fastrate import FastDeck

__all__ = [
    "CDR_COLUMNS",
    "MAX_DURATION",
    "OUTPUT_COLUMNS",
    "InputError",
    "RateSummary",
    "check_cdr_header",
    "connect_times",
    "durations",
    "fast_deck_for_window",
    "format_units",
    "format_units_expr",
    "load_cdrs",
    "load_deck",
    "normalize_numbers",
    "parse_connect_time",
    "parse_duration",
    "rate_file",
    "register",
]

CDR_COLUMNS: Final = ("call_id", "caller", "callee", "connect_time", "duration")
OUTPUT_COLUMNS: Final = (
    "call_id", "callee", "prefix", "destination", "billed_seconds", "cost", "status", "reason",
)
#: Longest CDR duration accepted, in seconds (about 31,700 years: anything longer is a
#: broken record, and the limit keeps every duration an int64).
MAX_DURATION: Final = 10**12
_CHUNK: Final = 1 << 17  # rows per rate_batch call
_MICROSECOND: Final = timedelta(microseconds=1)

# Vectorised forms (Rust regex: \d would be any Unicode digit, so [0-9] is spelled out).
_FAST_TIME: Final = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?(Z|[+-][0-9]{2}:[0-9]{2})$"
)
_SEPARATORS: Final = r"[ \t\-.()]"  # what core.numbering.normalize ignores
_MAX_RAW_NUMBER: Final = 64  # core.numbering._MAX_RAW_LENGTH


class InputError(Exception):
    """Malformed deck or CDR input: every problem found, one message per line."""

    def __init__(self, messages: Sequence[str]) -> None:
        self.messages = list(messages)
        super().__init__("\n".join(self.messages))


# ---------------------------------------------------------------------------------------
# Reading CSV with line numbers


class _CsvSyntaxError(Exception):
    def __init__(self, line: int, message: str) -> None:
        self.line = line
        super().__init__(message)


def _csv_records(path: Path) -> Iterator[tuple[int, list[str]]]:
    """(first line of the record, fields) for every record; a blank line gives ``[]``.

    Line numbers are as in the file (header = line 1), also after a quoted field that
    spans several lines.
    """
    with open(path, newline="", encoding="utf-8-sig", errors="replace") as handle:
        reader = csv.reader(handle)
        previous_end = 0
        while True:
            try:
                record = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise _CsvSyntaxError(previous_end + 1, str(exc)) from None
            yield previous_end + 1, record
            previous_end = reader.line_num


# ---------------------------------------------------------------------------------------
# The deck


def _is_xlsx(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(4) == b"PK\x03\x04"  # a zip container: XLSX (CSV never starts so)


def _xlsx_cell(value: object) -> str:
    """A spreadsheet cell as the text an operator typed (never through float arithmetic)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        # repr is the shortest text that reads back as this double: 0.0125 -> "0.0125".
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "isoformat"):  # date, time
        return str(value.isoformat())
    return str(value)


def _xlsx_rows(path: Path) -> tuple[list[str] | None, list[tuple[int, list[str]]]]:
    import openpyxl

    book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    try:
        sheet = book.worksheets[0]
        header: list[str] | None = None
        rows: list[tuple[int, list[str]]] = []
        for line, values in enumerate(sheet.iter_rows(values_only=True), start=1):
            cells = [_xlsx_cell(v) for v in values]
            while cells and cells[-1] == "":  # formatted but empty cells on the right
                cells.pop()
            if header is None:
                header = cells
            else:
                rows.append((line, cells))
        return header, rows
    finally:
        book.close()


def load_deck(path: Path, tz_name: str = "UTC") -> tuple[list[DeckRow], list[DeckError]]:
    """Read a CSV or XLSX rate deck and validate it with :func:`parse_deck`."""
    path = Path(path)
    try:
        if _is_xlsx(path):
            header, rows = _xlsx_rows(path)
        else:
            records = _csv_records(path)
            first = next(records, None)
            header = first[1] if first else None
            rows = list(records)
    except _CsvSyntaxError as exc:
        return [], [DeckError(exc.line, "row", "", f"not valid CSV ({exc})")]
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:  # unreadable, or a broken XLSX
        return [], [DeckError(1, "file", str(path), f"cannot be read as CSV or XLSX ({exc})")]
    if not header:
        return [], [DeckError(1, "header", "", "the deck is empty; expected a header line")]
    return parse_deck(header, rows, tz_name)


class _FastEntry:
    """A validated deck row in the shape :class:`FastDeck` reads (``prefix``, ``period``,
    ``terms.*``). ``terms`` is the :class:`DeckRow` itself: it has every field of
    :class:`~tarifa.core.rating.RateTerms` under the same name, already validated by
    ``parse_deck``; building 60,000 real ``RateTerms`` would cost about a second."""

    __slots__ = ("destination", "line", "period", "prefix", "terms")

    def __init__(self, row: DeckRow) -> None:
        self.prefix = row.prefix
        self.destination = row.destination
        self.line = row.line
        self.period = None
        self.terms = row


def fast_deck_for_window(rows: Sequence[DeckRow], start: datetime, end: datetime) -> FastDeck:
    """The :class:`FastDeck` for calls connected in ``[start, end)``, or FastPathUnsupported.

    The same rule and the same choice of version as :meth:`FastDeck.for_window` on the
    :class:`RateTable` of ``rows`` (tests check both agree), without building that table.
    """
    from tarifa.core.fastrate import FastDeck, FastPathUnsupported

    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("window bounds must be timezone-aware")
    if end <= start:
        raise ValueError("window end must be after its start")
    for row in rows:
        if row.effective_from is not None and row.effective_from >= end:
            continue
        if row.effective_to is not None and row.effective_to <= start:
            continue
        if row.period:  # parse_deck stores the canonical text; "" is the always-period
            raise FastPathUnsupported(f"prefix {row.prefix} has a time period ({row.period})")
        if (row.effective_from is not None and row.effective_from > start) or (
            row.effective_to is not None and row.effective_to < end
        ):
            raise FastPathUnsupported(f"prefix {row.prefix}: a version starts or ends inside the window")
    if not any(row.effective_from or row.effective_to or row.period for row in rows):
        # The common deck without dates or periods: parse_deck refuses a second row with the
        # same (prefix, period, effective_from), so every prefix has exactly one version.
        return FastDeck(cast(Any, [_FastEntry(row) for row in rows]))
    # Per prefix, the version the reference prefers at `start`: latest effective_from, then
    # (at equal dates) one with a period, then the first listed. None of the rows effective
    # at `start` has a period (it would overlap the window and have raised above).
    beginning = datetime.min.replace(tzinfo=timezone.utc)
    chosen: dict[str, tuple[tuple[datetime, bool, int], DeckRow]] = {}
    for order, row in enumerate(rows):
        if row.effective_from is not None and start < row.effective_from:
            continue
        if row.effective_to is not None and start >= row.effective_to:
            continue
        rank = (row.effective_from or beginning, bool(row.period), -order)
        best = chosen.get(row.prefix)
        if best is None or rank > best[0]:
            chosen[row.prefix] = (rank, row)
    order_of_prefix = {}
    for row in rows:
        order_of_prefix.setdefault(row.prefix, len(order_of_prefix))
    picked = sorted(chosen.items(), key=lambda item: order_of_prefix[item[0]])  # table order
    return FastDeck(cast(Any, [_FastEntry(row) for _, (_, row) in picked]))


# ---------------------------------------------------------------------------------------
# CDR values, one at a time (the reference) and vectorised


def parse_connect_time(text: str | None) -> int | str:
    """UTC microseconds since 1970 of an ISO 8601 date-time with an offset, or an error text.

    The reference for the vectorised parser: :meth:`datetime.fromisoformat` on the text
    without surrounding blanks; a time without a UTC offset is refused.
    """
    raw = "" if text is None else text.strip()
    if not raw:
        return "connect_time is missing"
    try:
        at = datetime.fromisoformat(raw)
    except ValueError as exc:
        why = "" if str(exc).startswith("Invalid isoformat") else f" ({exc})"
        return f"connect_time {text!r} is not an ISO 8601 date-time{why}"
    if at.tzinfo is None or at.utcoffset() is None:
        return f"connect_time {text!r} has no UTC offset (write e.g. 2026-01-31T08:00:00+00:00 or ...Z)"
    return micros(at)


def parse_duration(text: str | None) -> int | str:
    """Whole seconds of a CDR duration (a fraction rounds up, exactly), or an error text."""
    raw = "" if text is None else text.strip()
    if not raw:
        return "duration is missing"
    try:
        value = Decimal(raw)
    except InvalidOperation:
        return f"duration {text!r} is not a number of seconds"
    if value.is_nan():
        return f"duration {text!r} is not a number of seconds"
    if value < 0:
        return f"duration {text!r} is negative"
    if value.is_infinite():
        return f"duration {text!r} is not a finite number of seconds"
    if value > MAX_DURATION:  # checked before rounding: 1e999999999 must not become an int
        return f"duration {text!r} is longer than {MAX_DURATION} seconds"
    seconds = duration_from_seconds(raw)
    if seconds > MAX_DURATION:  # a fraction above the limit rounds past it
        return f"duration {text!r} is longer than {MAX_DURATION} seconds"
    return seconds


def normalize_numbers(raw: pl.Series, mode: str) -> pl.Series:
    """E.164 digits of each dialled number (null when invalid), as ``normalize(raw, mode)``.

    Vectorised copy of :func:`tarifa.core.numbering.normalize`; the tests compare the two
    on many generated inputs. Computed in stages (``with_columns``) so that polars
    evaluates each intermediate column once instead of once per reference.
    """
    import polars as pl

    if mode not in ("e164", "nanp"):
        raise ValueError(f"unknown dialing mode {mode!r}; expected 'nanp' or 'e164'")
    col = pl.col
    df = pl.DataFrame({"raw": raw.cast(pl.String).fill_null("")})
    df = df.with_columns(s0=col("raw").str.replace_all(_SEPARATORS, ""))
    df = df.with_columns(plus=col("s0").str.starts_with("+"))
    df = df.with_columns(s=pl.when(col("plus")).then(col("s0").str.slice(1)).otherwise(col("s0")))
    df = df.with_columns(
        chars_ok=(col("raw").str.len_chars() <= _MAX_RAW_NUMBER) & col("s").str.contains(r"^[0-9]+$"),
        idd_011=~col("plus") & col("s").str.starts_with("011"),
        idd_00=~col("plus") & col("s").str.starts_with("00"),
        n=col("s").str.len_chars(),
    )
    df = df.with_columns(
        body=pl.when(col("idd_011")).then(col("s").str.slice(3))
        .when(col("idd_00")).then(col("s").str.slice(2))
        .otherwise(col("s"))
    )
    df = df.with_columns(body_len=col("body").str.len_chars())
    international_ok = (
        col("chars_ok") & (col("body_len") > 0) & (col("body_len") <= 15) & ~col("body").str.starts_with("0")
    )
    if mode == "e164":
        result = pl.when(international_ok).then(col("body"))
    else:
        international = col("plus") | col("idd_011") | col("idd_00")
        s, n = col("s"), col("n")
        result = (
            pl.when(international).then(pl.when(international_ok).then(col("body")))
            .when(~col("chars_ok")).then(pl.lit(None, pl.String))
            .when(n == 10).then(pl.lit("1") + s)
            .when((n == 11) & s.str.starts_with("1")).then(s)
            .when((n == 3) & s.str.contains(r"^[2-9]11$")).then(pl.lit("1") + s)
        )
    return df.select(result.otherwise(pl.lit(None, pl.String)).alias(raw.name)).to_series()


def _fast_times(raw: pl.Series) -> pl.DataFrame:
    """Column ``us``: UTC microseconds, null where the vectorised form does not apply.

    Polars parses ``YYYY-MM-DDTHH:MM:SS`` quickly but ``%.f`` and ``%:z`` slowly, so only
    that part goes through its parser; the fraction (microseconds) and the offset (whole
    minutes, validated by the regex) are sliced out and added as integers.
    """
    import polars as pl

    col = pl.col
    s = col("s")
    df = pl.DataFrame({"s": raw.cast(pl.String).fill_null("")})
    df = df.with_columns(
        applies=s.str.contains(_FAST_TIME)
        & (s.str.slice(0, 4) != "0000")  # year 0 does not exist for datetime
        & (s.str.slice(17, 2) < "60")  # no leap second: datetime refuses :60
        & (s.str.ends_with("Z") | ((s.str.slice(-5, 2) < "24") & (s.str.slice(-2, 2) < "60"))),
        zulu=s.str.ends_with("Z"),
    )
    df = df.with_columns(
        # The seconds-precision part: polars parses it fast without %.f and %z.
        local=s.str.slice(0, 19).str.replace(" ", "T", literal=True),
        micro=s.str.extract(r"\.([0-9]{1,6})", 1).str.pad_end(6, "0").cast(pl.Int64, strict=False).fill_null(0),
        offset_minutes=pl.when(col("zulu")).then(pl.lit(0, pl.Int64)).otherwise(
            (s.str.slice(-5, 2).cast(pl.Int64, strict=False) * 60 + s.str.slice(-2, 2).cast(pl.Int64, strict=False))
            * pl.when(s.str.slice(-6, 1) == "-").then(-1).otherwise(1)
        ),
    )
    local_us = col("local").str.to_datetime(
        "%Y-%m-%dT%H:%M:%S", time_unit="us", strict=False, cache=False
    ).dt.epoch("us")
    utc_us = local_us + col("micro") - col("offset_minutes") * 60_000_000
    return df.select(us=pl.when(col("applies")).then(utc_us))


def _fast_durations(raw: pl.Series) -> pl.Series:
    """Whole seconds (null where the vectorised form does not apply): the integer part,
    plus 1 if any fractional digit is not 0; decided on the digits, so 0.1 is exactly 0.1."""
    import polars as pl

    from tarifa.cdrs.columns import whole_seconds

    return pl.DataFrame({"s": raw.cast(pl.String).fill_null("")}).select(whole_seconds(pl.col("s"))).to_series()


# ---------------------------------------------------------------------------------------
# The CDR file


@dataclass
class CdrBatch:
    """The CDR rows, validated and converted (row i of every array is the i-th row)."""

    call_id: pl.Series
    callee: pl.Series  # as in the file (null where empty)
    connect_us: npt.NDArray[np.int64]  # UTC microseconds since 1970
    seconds: npt.NDArray[np.int64]  # whole seconds, rounded up
    numbers: npt.NDArray[np.int64]  # E.164 digits as int64, 0 where invalid

    def __len__(self) -> int:
        return len(self.seconds)


def check_cdr_header(header: Sequence[str]) -> list[str]:
    """Error messages for a CDR header (empty list: fine). Extra columns are allowed."""
    names = [name.strip().lower() for name in header]
    expected = ",".join(CDR_COLUMNS)
    errors = []
    for name in CDR_COLUMNS:
        count = names.count(name)
        if count == 0:
            errors.append(f"line 1: header: required column {name!r} is missing (expected {expected})")
        elif count > 1:
            errors.append(f"line 1: header: column {name!r} appears more than once")
    return errors


def _blank_rows(columns: Sequence[str]) -> pl.Expr:
    import polars as pl

    return pl.all_horizontal(
        [pl.col(c).is_null() | (pl.col(c).str.strip_chars() == "") for c in columns]
    )


def _read_fast(path: Path, width: int, positions: dict[str, int]) -> pl.DataFrame | None:
    """Polars read of the five columns (blank rows removed); None when polars refuses the file."""
    import polars as pl

    names = [f"column_{i}" for i in range(width)]
    try:
        df = pl.read_csv(
            path, has_header=True, infer_schema=False, encoding="utf8-lossy", new_columns=names,
        )
    except (pl.exceptions.PolarsError, OSError, ValueError):
        return None
    if df.width != width:
        return None
    df = df.filter(~_blank_rows(names))
    return df.select(pl.col(f"column_{positions[c]}").alias(c) for c in CDR_COLUMNS)


def _read_slow(
    path: Path, width: int, positions: dict[str, int],
) -> tuple[pl.DataFrame, list[tuple[int, str]]]:
    """The same rows through the csv module, with a ``line`` column and field-count errors."""
    import polars as pl

    errors: list[tuple[int, str]] = []
    lines: list[int] = []
    columns: dict[str, list[str | None]] = {c: [] for c in CDR_COLUMNS}
    wanted = [(c, positions[c]) for c in CDR_COLUMNS]
    records = _csv_records(path)
    next(records, None)  # header
    try:
        for line, record in records:
            if len(record) > width:
                errors.append((line, f"line {line}: {len(record)} fields, but the header has {width}"))
                continue
            if not any(cell.strip() for cell in record):
                continue  # blank line
            lines.append(line)
            for name, pos in wanted:
                columns[name].append(record[pos] if pos < len(record) else None)
    except _CsvSyntaxError as exc:
        errors.append((exc.line, f"line {exc.line}: not valid CSV ({exc}); nothing after it was read"))
    frame = pl.DataFrame({"line": lines, **columns}, schema={"line": pl.Int64, **dict.fromkeys(CDR_COLUMNS, pl.String)})
    return frame, errors


def _with_reference(
    fast: pl.Series, raw: pl.Series, reference: Callable[[str | None], int | str]
) -> tuple[npt.NDArray[np.int64], dict[int, str]]:
    """The vectorised values, with every row the fast form left null decided by ``reference``
    (which returns the value, or the error text)."""
    import numpy as np

    values = fast.fill_null(0).to_numpy().astype(np.int64, copy=True)
    errors: dict[int, str] = {}
    slow = np.flatnonzero(fast.is_null().to_numpy())
    for i, text in zip(slow.tolist(), raw.gather(slow).to_list(), strict=True):
        value = reference(text)
        if isinstance(value, str):
            errors[i] = value
        else:
            values[i] = value
    return values, errors


def connect_times(raw: pl.Series) -> tuple[npt.NDArray[np.int64], dict[int, str]]:
    """UTC microseconds of each connect time and the errors by row index (value 0 there).

    Vectorised for the usual ``YYYY-MM-DDTHH:MM:SS[.ffffff](Z|+HH:MM)``; anything else is
    decided by :func:`parse_connect_time`, the reference.
    """

    return _with_reference(_fast_times(raw)["us"], raw, parse_connect_time)


def durations(raw: pl.Series) -> tuple[npt.NDArray[np.int64], dict[int, str]]:
    """Whole seconds of each duration (rounded up) and the errors by row index.

    Vectorised for plain decimals (``75``, ``12.5``); anything else is decided by
    :func:`parse_duration`, the reference.
    """

    return _with_reference(_fast_durations(raw), raw, parse_duration)


def _convert(frame: pl.DataFrame, mode: str) -> tuple[CdrBatch, dict[int, list[str]]]:
    """Vectorised validation and conversion; returns the batch and errors by row index."""
    import numpy as np
    import polars as pl

    missing_id = frame.select(
        pl.col("call_id").is_null() | (pl.col("call_id").str.strip_chars() == "")
    ).to_series()
    errors: dict[int, list[str]] = {}
    for i in np.flatnonzero(missing_id.to_numpy()).tolist():
        errors[i] = ["call_id is missing"]
    times, time_errors = connect_times(frame["connect_time"])
    seconds, duration_errors = durations(frame["duration"])
    for found in (time_errors, duration_errors):
        for i, message in found.items():
            errors.setdefault(i, []).append(message)
    numbers = normalize_numbers(frame["callee"], mode).cast(pl.Int64).fill_null(0)
    batch = CdrBatch(
        call_id=frame["call_id"], callee=frame["callee"], connect_us=times, seconds=seconds,
        numbers=numbers.to_numpy().astype(np.int64, copy=False),
    )
    return batch, errors


def load_cdrs(path: Path, dialing_mode: str = "e164") -> CdrBatch:
    """Read, validate and convert a CDR file; raises :class:`InputError` listing every bad line."""
    path = Path(path)
    try:
        first = next(_csv_records(path), None)
    except _CsvSyntaxError as exc:
        raise InputError([f"line 1: header: not valid CSV ({exc})"]) from None
    if first is None or not any(cell.strip() for cell in first[1]):
        raise InputError([f"line 1: header: the file has no header; expected {','.join(CDR_COLUMNS)}"])
    header = first[1]
    problems = check_cdr_header(header)
    if problems:
        raise InputError(problems)
    names = [name.strip().lower() for name in header]
    positions = {c: names.index(c) for c in CDR_COLUMNS}
    frame = _read_fast(path, len(header), positions)
    if frame is not None:
        batch, errors = _convert(frame, dialing_mode)
        if not errors:
            return batch
    # Polars refused the file, or some rows are bad: read again knowing each row's line.
    slow, messages = _read_slow(path, len(header), positions)
    batch, errors = _convert(slow.drop("line"), dialing_mode)
    lines = slow["line"].to_list()
    found = [(lines[i], f"line {lines[i]}: " + "; ".join(texts)) for i, texts in errors.items()]
    found += messages
    if not found:  # the csv module reads what polars refused, and every row is fine
        return batch
    found.sort(key=lambda item: item[0])
    raise InputError([message for _, message in found])


# ---------------------------------------------------------------------------------------
# Rating and output


def format_units_expr(units: pl.Expr, decimals: int) -> pl.Expr:
    """Non-negative integer units of ``10**-decimals`` as text with exactly ``decimals``
    places (12345, 4 -> "1.2345"); null stays null. Integer ``//`` and ``%`` only."""
    import polars as pl

    if decimals == 0:
        return units.cast(pl.String)
    scale = 10**decimals
    return (units // scale).cast(pl.String) + "." + (units % scale).cast(pl.String).str.zfill(decimals)


def format_units(units: pl.Series, decimals: int) -> pl.Series:
    """:func:`format_units_expr` on a Series of integer units."""
    import polars as pl

    return pl.select(format_units_expr(pl.lit(units.cast(pl.Int64)), decimals)).to_series().alias(units.name)


def _format_int_units(units: int, decimals: int) -> str:
    if decimals == 0:
        return str(units)
    whole, part = divmod(units, 10**decimals)
    return f"{whole}.{part:0{decimals}d}"


@dataclass
class RateSummary:
    """What a run did; ``line()`` is the one-line summary the command prints."""

    rows: int = 0
    rated: int = 0
    unrated: int = 0
    forbidden: int = 0
    total_units: int = 0
    decimals: int = 4
    seconds: float = 0.0  # float-ok: elapsed wall time, not money
    fast_path: bool = True
    fallback_reason: str = ""
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def total_cost(self) -> str:
        return _format_int_units(self.total_units, self.decimals)

    @property
    def cdr_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    def line(self) -> str:
        path = "fast path" if self.fast_path else f"reference path, slower: {self.fallback_reason}"
        return (
            f"rows {self.rows}, rated {self.rated}, unrated {self.unrated}, "
            f"forbidden {self.forbidden}, total cost {self.total_cost}, "
            f"{self.cdr_per_second:,.0f} CDR/s ({path})"
        )


class _Progress:
    """A rich progress bar on stderr, or nothing when stderr is not a terminal."""

    def __init__(self, enabled: bool) -> None:
        self._bar: Any = None
        self._task: Any = None
        if enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn,
            )

            self._bar = Progress(
                SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                TimeElapsedColumn(), console=Console(stderr=True), transient=True,
            )
            self._bar.start()
            self._task = self._bar.add_task("reading deck and CDRs", total=None)

    def stage(self, description: str, total: int | None = None) -> None:
        """Start the next step; ``total`` rows, or None for a step without a count."""
        if self._bar is not None:
            self._bar.remove_task(self._task)
            self._task = self._bar.add_task(description, total=total)

    def advance(self, rows: int) -> None:
        if self._bar is not None:
            self._bar.advance(self._task, rows)

    def stop(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _write_atomically(write: Callable[[str], None], out: Path, mode: int) -> None:
    """Call ``write(temp_path)``, then rename the temp file to ``out``; no partial file."""
    out = Path(out)
    fd, temp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".part", dir=out.parent)
    os.close(fd)
    try:
        write(temp)
        os.chmod(temp, mode)
        os.replace(temp, out)
    except BaseException:
        try:
            os.unlink(temp)
        except FileNotFoundError:
            pass
        raise


def _rate_fast(
    deck: FastDeck, batch: CdrBatch, decimals: int, rounding: str, progress: _Progress,
) -> tuple[pl.DataFrame, RateSummary]:
    import numpy as np
    import polars as pl

    from tarifa.core.fastrate import FORBIDDEN, INVALID_NUMBER, NO_RATE, RATED, rate_batch

    n = len(batch)
    status = np.empty(n, dtype=np.int8)
    label = np.empty(n, dtype=np.int32)
    billed = np.empty(n, dtype=np.int64)
    units = np.empty(n, dtype=np.int64)
    progress.stage("rating (fast path)", n)

    def rate_chunk(lo: int) -> int:
        hi = min(lo + _CHUNK, n)
        result = rate_batch(deck, batch.numbers[lo:hi], batch.seconds[lo:hi], decimals, rounding)
        status[lo:hi] = result.status
        label[lo:hi] = result.entry_index
        billed[lo:hi] = result.billed_seconds
        units[lo:hi] = result.cost_units
        return hi - lo

    # NumPy releases the GIL in its array loops: chunks rated by two threads use two cores
    # (and chunks of ~100k rows stay in cache better than one pass over a million).
    workers = max(1, min(4, os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for done in pool.map(rate_chunk, range(0, n, _CHUNK)):
            progress.advance(done)

    rated = status == RATED
    rated_units = units[rated]
    if rated_units.size and int(rated_units.max()) <= np.iinfo(np.int64).max // rated_units.size:
        total = int(rated_units.sum())  # cannot overflow
    else:
        total = sum(rated_units.tolist())
    summary = RateSummary(
        rows=n, rated=int(rated.sum()), forbidden=int((status == FORBIDDEN).sum()),
        total_units=total, decimals=decimals,
    )
    summary.unrated = n - summary.rated - summary.forbidden

    entries = cast(Sequence[Any], deck.entries)
    missing = len(entries)  # index of the null appended below
    index = pl.Series(np.where(label < 0, missing, label).astype(np.int64))
    prefixes = pl.Series([*deck.prefixes, None], dtype=pl.String)
    destinations = pl.Series([*(e.destination for e in entries), None], dtype=pl.String)
    codes = pl.Series(status)
    frame = pl.DataFrame({
        "call_id": batch.call_id,
        "callee": batch.callee,
        "prefix": prefixes.gather(index),
        "destination": destinations.gather(index),
        "billed_seconds": pl.Series(billed),
        "cost": pl.Series(np.where(rated, units, -1)),
        "status": codes.replace_strict(
            {RATED: "rated", NO_RATE: "unrated", INVALID_NUMBER: "unrated", FORBIDDEN: "forbidden"},
            return_dtype=pl.String,
        ),
        "reason": codes.replace_strict(
            {RATED: None, NO_RATE: "no_rate", INVALID_NUMBER: "invalid_number", FORBIDDEN: None},
            return_dtype=pl.String,
        ),
    }).with_columns(
        cost=pl.when(pl.col("cost") >= 0).then(format_units_expr(pl.col("cost"), decimals))
    )
    return frame, summary


def _rate_reference(
    rows: Sequence[DeckRow], tz_name: str, batch: CdrBatch, decimals: int, rounding: str,
    dialing_mode: str, progress: _Progress,
) -> tuple[pl.DataFrame, RateSummary]:
    import polars as pl

    progress.stage("building the rate table")
    table = RateTable([row.entry() for row in rows], tz_name)
    n = len(batch)
    progress.stage("rating (reference path)", n)
    prefix: list[str | None] = [None] * n
    destination: list[str | None] = [None] * n
    billed: list[int] = [0] * n
    cost: list[str | None] = [None] * n
    status: list[str] = [""] * n
    reason: list[str | None] = [None] * n
    summary = RateSummary(rows=n, decimals=decimals)
    epoch = EPOCH
    total = 0
    callees = batch.callee.to_list()
    moments = batch.connect_us.tolist()
    durations = batch.seconds.tolist()
    step = 10_000
    for i in range(n):
        result = rate_call(
            table, callees[i] or "", epoch + timedelta(microseconds=moments[i]), durations[i],
            decimals, rounding, dialing_mode=dialing_mode,
        )
        status[i] = result.status.value
        prefix[i] = result.prefix
        destination[i] = result.destination
        billed[i] = result.billed_seconds
        if result.reason is not None:
            reason[i] = result.reason.value
        if result.cost is not None:
            units = int(result.cost.scaleb(decimals))  # exact: the cost has `decimals` places
            total += units
            cost[i] = _format_int_units(units, decimals)
        if i % step == step - 1:
            progress.advance(step)
    progress.advance(n % step)
    summary.rated = status.count("rated")
    summary.forbidden = status.count("forbidden")
    summary.unrated = n - summary.rated - summary.forbidden
    summary.total_units = total
    frame = pl.DataFrame(
        {
            "call_id": batch.call_id, "callee": batch.callee, "prefix": prefix,
            "destination": destination, "billed_seconds": billed, "cost": cost,
            "status": status, "reason": reason,
        },
        schema={
            "call_id": pl.String, "callee": pl.String, "prefix": pl.String, "destination": pl.String,
            "billed_seconds": pl.Int64, "cost": pl.String, "status": pl.String, "reason": pl.String,
        },
    )
    return frame, summary


def _dated(rows: Sequence[DeckRow]) -> bool:
    """Whether any row has an effective date or a time period."""
    return any(row.effective_from or row.effective_to or row.period for row in rows)


def _compile(
    rows: Sequence[DeckRow], window: tuple[datetime, datetime] | None,
) -> tuple[FastDeck | None, str]:
    """(the fast deck, "") or (None, why the reference path must rate this file)."""
    from tarifa.core.fastrate import FastPathUnsupported

    if window is None:  # an undated deck: any window gives the same deck
        window = (EPOCH, EPOCH + _MICROSECOND)
    try:
        return fast_deck_for_window(rows, *window), ""
    except FastPathUnsupported as exc:
        return None, str(exc)


def rate_file(
    deck_path: Path,
    cdrs_path: Path,
    out_path: Path,
    *,
    decimals: int = 4,
    rounding: str = "half_up",
    dialing_mode: str = "e164",
    tz_name: str = "UTC",
    progress: bool = False,
) -> RateSummary:
    """Rate a CDR file against a deck and write the result (see the module docstring).

    Raises :class:`InputError` (nothing written) when the deck or the CDRs are malformed.
    """
    started = time.perf_counter()
    if isinstance(decimals, bool) or not isinstance(decimals, int) or not 0 <= decimals <= MAX_DECIMALS:
        raise ValueError(f"decimals must be 0..{MAX_DECIMALS}, got {decimals!r}")
    rounding = Rounding(rounding).value
    if dialing_mode not in ("e164", "nanp"):
        raise ValueError(f"dialing mode must be e164 or nanp, got {dialing_mode!r}")
    file_mode = 0o666 & ~_umask()
    bar = _Progress(progress)
    # The run builds a few million long-lived objects and no reference cycles; the cyclic
    # collector would only walk them again and again (a third of the deck compile time).
    collecting = gc.isenabled()
    gc.disable()
    try:
        timings: dict[str, float] = {}
        fast: FastDeck | None = None
        fallback_reason = ""
        # The deck is pure-Python work; polars reads and converts the CDRs meanwhile in
        # another thread (it releases the GIL), so the two overlap on two cores.
        with ThreadPoolExecutor(max_workers=1) as pool:
            cdr_job = pool.submit(load_cdrs, Path(cdrs_path), dialing_mode)
            from tarifa.core.fastrate import MAX_FAST_DECIMALS, FastPathUnsupported

            deck_rows, deck_errors = load_deck(Path(deck_path), tz_name)
            timings["deck"] = time.perf_counter() - started
            if decimals > MAX_FAST_DECIMALS:
                fallback_reason = f"{decimals} decimals (the fast path does 0-{MAX_FAST_DECIMALS})"
            elif not deck_errors and not _dated(deck_rows):
                # Without dates or periods the compiled deck does not depend on the CDRs'
                # time window: compile it while the CDRs are still being read.
                fast, fallback_reason = _compile(deck_rows, None)
                timings["compiled"] = time.perf_counter() - started
            try:
                batch: CdrBatch | None = cdr_job.result()
                cdr_errors: list[str] = []
            except InputError as exc:
                batch, cdr_errors = None, exc.messages
            timings["cdrs"] = time.perf_counter() - started
        messages = [f"deck {deck_path}: {error}" for error in deck_errors]
        messages += [f"cdrs {cdrs_path}: {message}" for message in cdr_errors]
        if messages:
            raise InputError(messages)
        assert batch is not None

        frame: pl.DataFrame | None = None
        summary: RateSummary | None = None
        if len(batch) and not fallback_reason:
            if fast is None:
                bar.stage("compiling the deck")
                start = moment(int(batch.connect_us.min()))
                end = moment(int(batch.connect_us.max()) + 1)
                fast, fallback_reason = _compile(deck_rows, (start, end))
                timings["compiled"] = time.perf_counter() - started
            if fast is not None:
                try:
                    frame, summary = _rate_fast(fast, batch, decimals, rounding, bar)
                except FastPathUnsupported as exc:  # amounts too large for int64
                    fallback_reason = str(exc)
        if frame is None or summary is None:
            if len(batch):
                frame, summary = _rate_reference(
                    deck_rows, tz_name, batch, decimals, rounding, dialing_mode, bar,
                )
                summary.fast_path = False
                summary.fallback_reason = fallback_reason
            else:
                import polars as pl

                frame = pl.DataFrame(schema=dict.fromkeys(OUTPUT_COLUMNS, pl.String))
                summary = RateSummary(decimals=decimals)
        timings["rated"] = time.perf_counter() - started
        bar.stage("writing")
        output = frame.select(OUTPUT_COLUMNS)
        _write_atomically(lambda temp: output.write_csv(temp), Path(out_path), file_mode)
        timings["written"] = time.perf_counter() - started
        summary.seconds = time.perf_counter() - started
        summary.timings = timings
        return summary
    finally:
        if collecting:
            gc.enable()
        bar.stop()


# ---------------------------------------------------------------------------------------
# The command


class _RoundingChoice(str, Enum):
    half_up = "half_up"
    up = "up"
    down = "down"


class _DialingChoice(str, Enum):
    e164 = "e164"
    nanp = "nanp"


def register(app: typer.Typer) -> None:
    """Add the ``rate`` command to the ``tarifa`` CLI."""

    @app.command("rate")
    def rate(
        deck: Path = typer.Option(
            ..., "--deck", exists=True, dir_okay=False, readable=True,
            help="Rate deck, CSV or XLSX (header prefix,destination,price_1,...; prefix and price_1 required).",
        ),
        cdrs: Path = typer.Option(
            ..., "--cdrs", exists=True, dir_okay=False, readable=True,
            help="CDR CSV with columns call_id,caller,callee,connect_time,duration.",
        ),
        out: Path = typer.Option(..., "--out", dir_okay=False, help="Rated CSV to write (replaced atomically)."),
        decimals: int = typer.Option(4, "--decimals", min=0, max=MAX_DECIMALS, help="Decimal places of each cost."),
        rounding: _RoundingChoice = typer.Option(_RoundingChoice.half_up, "--rounding", help="Rounding of each call cost."),
        dialing_mode: _DialingChoice = typer.Option(
            _DialingChoice.e164, "--dialing-mode", help="How callee numbers are written: e164 or nanp."
        ),
        tz: str = typer.Option("UTC", "--tz", help="Time zone of the deck (periods, dates without offset)."),
    ) -> None:
        """Rate a CDR file against a rate deck, exactly (e.g. to check a vendor's invoice)."""
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise typer.BadParameter(f"unknown time zone {tz!r}", param_hint="--tz") from None
        try:
            summary = rate_file(
                deck, cdrs, out, decimals=decimals, rounding=rounding.value,
                dialing_mode=dialing_mode.value, tz_name=tz, progress=sys.stderr.isatty(),
            )
        except InputError as exc:
            sys.stderr.write("\n".join(exc.messages) + "\n")
            count = len(exc.messages)
            sys.stderr.write(f"error: malformed input ({count} problem{'s' * (count != 1)}); {out} not written\n")
            raise typer.Exit(2) from None
        except OSError as exc:
            sys.stderr.write(f"error: {exc}\n")
            raise typer.Exit(1) from None
        typer.echo(summary.line())
