"""Many canonical CDRs at once, as columns: the shape bulk ingestion works on.

A *CDR frame* is a polars DataFrame with the columns of :data:`SCHEMA`: the fields of
:class:`~tarifa.core.cdr.CanonicalCdr` (times as UTC microseconds since 1970) plus ``line``,
where the record was in its file (0 when it did not come from a file).

Two ways in:

* :func:`from_cdrs` turns CanonicalCdr objects (any switch adapter, the API) into a frame;
* :func:`read_canonical_csv` reads Tarifa's canonical CSV straight into frames. Lines in the
  common shape (printable ASCII, no quotes, ISO 8601 times, plain durations...) are converted
  with vectorised expressions; every other line goes through the one-line reference parser
  (:func:`tarifa.cdrs.formats.tarifa.csv_record`), so what is accepted, and the reason given
  for what is refused, are exactly the reference's. The tests compare the two on many lines.

Pure: polars, the format module and the shared converters (:mod:`tarifa.core.converters`),
no Django, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from datetime import UTC, tzinfo
from typing import Any, Final

import polars as pl

from tarifa.cdrs.formats.tarifa import csv_cells, csv_header, csv_record, load_zone, physical_lines
from tarifa.core.cdr import (
    DIRECTIONS,
    DISPOSITIONS,
    FIELD_LIMITS,
    MAX_DURATION,
    CanonicalCdr,
    Direction,
    Disposition,
    LineError,
)
from tarifa.core.converters import utc_micros, whole_seconds
from tarifa.core.periods import micros, moment

TEXT_FIELDS: Final = (
    "switch",
    "call_id",
    "leg",
    "direction",
    "caller",
    "callee",
    "source_ip",
    "sip_user",
    "trunk",
    "did",
    "extension",
    "account_code",
    "connection",
    "disposition",
)
SCHEMA: Final = {
    "line": pl.Int64,
    **{name: pl.String for name in TEXT_FIELDS},
    "start_us": pl.Int64,
    "connect_us": pl.Int64,
    "end_us": pl.Int64,
    "duration": pl.Int64,
    "sip_code": pl.Int64,
}

_UNFIT: Final = re.compile(r"[\ud800-\udfff]")  # lone surrogates (invalid UTF-8 read with surrogateescape)
# Lines the vectorised reader takes: printable ASCII without a double quote (no CSV quoting).
_PLAIN: Final = r"^[ !#-~]*$"
_IPV4: Final = r"^((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])$"


def empty() -> pl.DataFrame:
    return pl.DataFrame(schema=SCHEMA)


def from_cdrs(cdrs: Sequence[CanonicalCdr], lines: Sequence[int] | None = None) -> pl.DataFrame:
    """A CDR frame of ``cdrs`` (``lines``: where each was in its file; 0 when not given)."""
    if not cdrs:
        return empty()
    data: dict[str, list[Any]] = {name: [getattr(c, name) for c in cdrs] for name in TEXT_FIELDS}
    data["line"] = list(lines) if lines is not None else [0] * len(cdrs)
    data["start_us"] = [micros(c.start_time) for c in cdrs]
    data["connect_us"] = [micros(c.connect_time) for c in cdrs]
    data["end_us"] = [micros(c.end_time) for c in cdrs]
    data["duration"] = [c.duration for c in cdrs]
    data["sip_code"] = [c.sip_code for c in cdrs]
    return pl.DataFrame(data, schema=SCHEMA)


def to_cdrs(frame: pl.DataFrame) -> list[CanonicalCdr]:
    """The CanonicalCdr objects of a frame's rows (for the row-by-row path)."""
    out = []
    for row in frame.iter_rows(named=True):
        out.append(
            CanonicalCdr(
                call_id=row["call_id"],
                callee=row["callee"],
                start_time=moment(row["start_us"]),
                duration=row["duration"],
                switch=row["switch"],
                leg=row["leg"],
                caller=row["caller"],
                connect_time=moment(row["connect_us"]),
                end_time=moment(row["end_us"]),
                disposition=row["disposition"],
                sip_code=row["sip_code"],
                direction=row["direction"],
                source_ip=row["source_ip"],
                sip_user=row["sip_user"],
                trunk=row["trunk"],
                did=row["did"],
                extension=row["extension"],
                account_code=row["account_code"],
                connection=row["connection"],
            )
        )
    return out


# --------------------------------------------------------------------------------------------
# The canonical CSV, vectorised
# --------------------------------------------------------------------------------------------


def _time(text: pl.Expr, naive_ok: bool) -> pl.Expr:
    """UTC microseconds of a time in the common spellings of years 1900-2999 (null: the reference
    decides). A time without an offset is UTC only when the file's zone is UTC: other zones have
    clock changes, which the reference parser handles."""
    return utc_micros(text, offset_required=not naive_ok, first_year=1900, last_year=2999)


def _choice(cell: pl.Expr, allowed: tuple[str, ...], default: str) -> tuple[pl.Expr, pl.Expr]:
    value = pl.when(cell == "").then(pl.lit(default)).otherwise(cell.str.to_lowercase())
    return value, value.is_in(list(allowed))


def _fast_rows(df: pl.DataFrame, names: list[str], switch: str, naive_ok: bool) -> pl.DataFrame:
    """Convert the plain lines (columns ``line`` and ``raw``); column ``ok`` marks the rows the
    vectorised forms decided, the others go to the reference parser."""
    width = len(names)
    split = df.select(
        "line",
        pl.col("raw").str.split_exact(",", width - 1).struct.rename_fields([f"c_{n}" for n in names]).alias("cells"),
    ).unnest("cells")
    cells = {n: pl.col(f"c_{n}").str.strip_chars(" ") for n in names}

    def get(name: str) -> pl.Expr:
        return cells.get(name, pl.lit("", pl.String))

    disposition, disposition_ok = _choice(get("disposition"), DISPOSITIONS, Disposition.ANSWERED)
    direction, direction_ok = _choice(get("direction"), DIRECTIONS, Direction.OUTBOUND)
    sip = get("sip_code")
    sip_value = sip.cast(pl.Int64, strict=False)
    out = split.with_columns(
        switch=pl.when(get("switch") == "").then(pl.lit(switch)).otherwise(get("switch")),
        call_id=get("call_id"),
        leg=pl.when(get("leg") == "").then(pl.lit("a")).otherwise(get("leg")),
        direction=direction,
        caller=get("caller"),
        callee=get("callee"),
        source_ip=get("source_ip"),
        sip_user=get("sip_user"),
        trunk=get("trunk"),
        did=get("did"),
        extension=get("extension"),
        account_code=get("account_code"),
        connection=get("connection"),
        disposition=disposition,
        start_us=_time(get("start_time"), naive_ok),
        connect_us=_time(get("connect_time"), naive_ok),
        end_us=_time(get("end_time"), naive_ok),
        duration=whole_seconds(get("duration")),
        sip_code=pl.when(sip != "").then(sip_value),
        _ok=(
            (get("call_id") != "")
            & (get("callee") != "")
            & disposition_ok
            & direction_ok
            & ((sip == "") | (sip.str.contains(r"^[0-9]{1,3}$") & (sip_value >= 100) & (sip_value <= 699)))
            & ((get("source_ip") == "") | get("source_ip").str.contains(_IPV4))
            # the reference refuses over-long fields (core.cdr.FIELD_LIMITS): it decides those
            & pl.all_horizontal(
                [get(name).str.len_chars() <= limit for name, limit in FIELD_LIMITS.items() if name in names]
            )
        ),
        _no_connect=get("connect_time") == "",
        _no_end=get("end_time") == "",
    )
    out = out.with_columns(
        ok=(
            pl.col("_ok")
            & pl.col("start_us").is_not_null()
            & pl.col("duration").is_not_null()
            & (pl.col("duration") <= MAX_DURATION)
            # a connect or end time given must have been read (each parsed once, above)
            & (pl.col("_no_connect") | pl.col("connect_us").is_not_null())
            & (pl.col("_no_end") | pl.col("end_us").is_not_null())
            & (pl.col("connect_us").is_null() | (pl.col("connect_us") >= pl.col("start_us")))
            & (pl.col("end_us").is_null() | (pl.col("end_us") >= pl.coalesce("connect_us", "start_us")))
        )
    )
    return out.select("ok", *SCHEMA)


def read_canonical_csv(
    text: str, *, switch: str, tz: str = "UTC", chunk_lines: int = 20_000
) -> Iterator[tuple[pl.DataFrame, list[LineError]]]:
    """Tarifa canonical CSV -> (CDR frame, refused lines) per chunk of ``chunk_lines`` lines.

    The same records and the same refusals as :func:`tarifa.cdrs.formats.tarifa.parse`, in
    file order; a bad header is the only refusal of the file. ValueError for an unknown zone.
    """
    zone = load_zone(tz)  # an unknown zone is refused now, before any line is read
    return _chunks(text, switch, zone, chunk_lines)


def _chunks(text: str, switch: str, zone: tzinfo, chunk_lines: int) -> Iterator[tuple[pl.DataFrame, list[LineError]]]:
    naive_ok = zone is UTC
    lines = physical_lines(text)
    names: list[str] | None = None
    first = 0
    for index, line in enumerate(lines):
        raw = line.rstrip("\r\n")
        if not raw.strip():
            continue
        header = csv_header(index + 1, csv_cells(raw), raw)
        if isinstance(header, LineError):
            yield empty(), [header]
            return
        names, first = header, index + 1
        break
    if names is None:
        return
    unfit = _UNFIT.search(text) is not None  # invalid UTF-8 read as lone surrogates: polars cannot hold them
    for start in range(first, len(lines), chunk_lines):
        part = lines[start : start + chunk_lines]
        early: list[tuple[int, str]] = []  # lines the reference parser reads before any frame
        if unfit:
            for k, line in enumerate(part):
                if _UNFIT.search(line):
                    early.append((start + 1 + k, line.rstrip("\r\n")))
                    part[k] = "\n"  # a blank line: skipped below
        df = pl.DataFrame(
            {
                "line": pl.int_range(start + 1, start + 1 + len(part), eager=True, dtype=pl.Int64),
                "raw": pl.Series(part, dtype=pl.String).str.strip_chars_end("\r\n"),
            }
        )
        df = df.with_columns(
            plain=pl.col("raw").str.contains(_PLAIN)
            & (pl.col("raw").str.count_matches(",", literal=True) == len(names) - 1)
        )
        plain = df.filter(pl.col("plain"))  # (never blank: a plain line has all its commas)
        fast = _fast_rows(plain.select("line", "raw"), names, switch, naive_ok) if len(plain) else None
        slow_lines = df.filter(~pl.col("plain")).select("line", "raw")
        if fast is not None:
            undecided = fast.filter(~pl.col("ok")).select("line")
            slow_lines = pl.concat([slow_lines, plain.join(undecided, on="line").select("line", "raw")])
        errors: list[LineError] = []
        cdrs: list[CanonicalCdr] = []
        cdr_lines: list[int] = []
        for number, raw in sorted([*slow_lines.iter_rows(), *early]):
            if not raw.strip():
                continue
            item = csv_record(number, csv_cells(raw), raw, names, switch, zone)
            if isinstance(item, LineError):
                errors.append(item)
            else:
                cdrs.append(item)
                cdr_lines.append(number)
        parts = [fast.filter(pl.col("ok")).drop("ok")] if fast is not None else []
        if cdrs:
            parts.append(from_cdrs(cdrs, cdr_lines))
        frame = pl.concat(parts).sort("line") if len(parts) > 1 else (parts[0] if parts else empty())
        yield frame, errors
