"""``tarifa rate``'s inputs: the rate deck (CSV or XLSX) and the CDR file (CSV), read and validated.

The deck is read cell by cell and validated as a whole with :func:`tarifa.core.deck.parse_deck`.
The CDR file is read by polars (all columns as text) and converted with the vectorised
converters of :mod:`tarifa.core.converters`: connect times to UTC microseconds, durations to
whole seconds (a fraction rounds *up*, decided on the digits, never via ``float``), dialled
numbers to E.164 digits as ``int64``. The few values the vectorised forms do not cover (unusual
but valid ISO 8601 spellings, ``1e3`` durations...) are parsed one by one with the reference
functions here, so the accepted language is exactly theirs. Malformed rows raise
:class:`InputError` with every bad line; line numbers come from a second, slower read with the
:mod:`csv` module that knows where each record starts.
"""

from __future__ import annotations

import csv
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Final

from tarifa.core.deck import DeckError, DeckRow, parse_deck
from tarifa.core.numbering import DialingMode
from tarifa.core.periods import micros
from tarifa.core.rating import duration_from_seconds

if TYPE_CHECKING:  # numpy and polars are imported when the command runs, not with the CLI
    import numpy as np
    import numpy.typing as npt
    import polars as pl

__all__ = [
    "CDR_COLUMNS",
    "MAX_DURATION",
    "CdrBatch",
    "InputError",
    "check_cdr_header",
    "connect_times",
    "durations",
    "load_cdrs",
    "load_deck",
    "parse_connect_time",
    "parse_duration",
]

CDR_COLUMNS: Final = ("call_id", "caller", "callee", "connect_time", "duration")
#: Longest CDR duration accepted, in seconds (about 31,700 years: anything longer is a
#: broken record, and the limit keeps every duration an int64).
MAX_DURATION: Final = 10**12


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


# ---------------------------------------------------------------------------------------
# CDR values, one at a time: the references of the vectorised converters


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


def _fast_times(raw: pl.Series) -> pl.Series:
    """UTC microseconds of connect times written with an offset (null where the vectorised form
    does not apply: :func:`parse_connect_time` decides those)."""
    import polars as pl

    from tarifa.core.converters import utc_micros

    frame = pl.DataFrame({"s": raw.cast(pl.String).fill_null("")}).lazy()
    return frame.select(us=utc_micros(pl.col("s"), offset_required=True)).collect()["us"]


def _fast_durations(raw: pl.Series) -> pl.Series:
    """Whole seconds (null where the vectorised form does not apply)."""
    import polars as pl

    from tarifa.core.converters import whole_seconds

    return pl.DataFrame({"s": raw.cast(pl.String).fill_null("")}).select(whole_seconds(pl.col("s"))).to_series()


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

    return pl.all_horizontal([pl.col(c).is_null() | (pl.col(c).str.strip_chars() == "") for c in columns])


def _read_fast(path: Path, width: int, positions: dict[str, int]) -> pl.DataFrame | None:
    """Polars read of the five columns (blank rows removed); None when polars refuses the file."""
    import polars as pl

    names = [f"column_{i}" for i in range(width)]
    try:
        df = pl.read_csv(
            path,
            has_header=True,
            infer_schema=False,
            encoding="utf8-lossy",
            new_columns=names,
        )
    except (pl.exceptions.PolarsError, OSError, ValueError):
        return None
    if df.width != width:
        return None
    df = df.filter(~_blank_rows(names))
    return df.select(pl.col(f"column_{positions[c]}").alias(c) for c in CDR_COLUMNS)


def _read_slow(
    path: Path,
    width: int,
    positions: dict[str, int],
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

    return _with_reference(_fast_times(raw), raw, parse_connect_time)


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

    from tarifa.core.converters import normalize_numbers

    missing_id = frame.select(pl.col("call_id").is_null() | (pl.col("call_id").str.strip_chars() == "")).to_series()
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
        call_id=frame["call_id"],
        callee=frame["callee"],
        connect_us=times,
        seconds=seconds,
        numbers=numbers.to_numpy().astype(np.int64, copy=False),
    )
    return batch, errors


def load_cdrs(path: Path, dialing_mode: str = DialingMode.E164) -> CdrBatch:
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
