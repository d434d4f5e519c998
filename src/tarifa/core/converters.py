"""Text columns to the integers rating works in, a million values at a time (polars).

The one module of vectorised converters, used by ``tarifa rate`` (:mod:`tarifa.batchrate`) and
by CDR ingestion (:mod:`tarifa.cdrs.columns`, :mod:`tarifa.cdrs.frames`):

* :func:`normalize_numbers` — dialled numbers to E.164 digits, as
  :func:`tarifa.core.numbering.normalize` (the reference) decides them;
* :func:`utc_micros` — ISO 8601 date-times in their common spellings to UTC microseconds;
* :func:`whole_seconds` — a duration's text to whole seconds, a fraction rounding *up*;
* :func:`units_to_micros` and :func:`format_units_expr` — money as integer units of
  ``10**-decimals``: to micro-units (what the database stores) and to text.

Why vectorised copies of reference rules: a Python call per value costs more than rating the
call. Each copy covers the usual spellings only and answers *null* for anything else, which
the caller hands to the one-value reference; the tests compare copy and reference on many
generated inputs. Money never passes through ``float``: integer ``*``, ``//`` and ``%`` only.

Pure: polars expressions, no I/O. polars is imported by the callers that run a batch, not
with the CLI (importing this module imports polars).
"""

from __future__ import annotations

from typing import Final

import polars as pl

from tarifa.core.numbering import E164, MAX_DIGITS, MAX_RAW_LENGTH, NANP, SEPARATORS

__all__ = [
    "MICRO_DECIMALS",
    "format_units",
    "format_units_expr",
    "format_units_int",
    "normalize_numbers",
    "units_to_micros",
    "utc_micros",
    "whole_seconds",
]

#: decimals of the micro-units money is stored in (``ExactDecimalField``) and rated in (array_rating)
MICRO_DECIMALS: Final = 6

# Rust regex: \d would be any Unicode digit, so [0-9] is spelled out.
_TIME: Final = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?(Z|[+-][0-9]{2}:[0-9]{2})?$"
_TIME_WITH_OFFSET: Final = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?(Z|[+-][0-9]{2}:[0-9]{2})$"
)
_DURATION: Final = r"^[0-9]{1,12}(\.[0-9]*)?$"
# core.numbering.SEPARATORS as a regex class ("-" escaped: it would be a range)
_SEPARATOR_CLASS: Final = "[" + "".join("\\-" if c == "-" else c for c in SEPARATORS) + "]"


def utc_micros(text: pl.Expr, *, offset_required: bool, first_year: int = 1, last_year: int = 9999) -> pl.Expr:
    """UTC microseconds since 1970 of ``YYYY-MM-DD[T ]HH:MM:SS[.ffffff][Z|±HH:MM]``; null for
    anything else (other spellings, years outside ``first_year..last_year``, a leap second, an
    offset hour of 24 or more), which the caller's reference parser decides.

    A time without an offset is UTC; with ``offset_required`` it is left to the reference
    (which refuses it, or reads it in a zone with clock changes). Polars parses the seconds
    part quickly but ``%.f`` and ``%:z`` slowly, so the fraction and the offset are sliced out
    and added as integers.
    """
    zulu = text.str.ends_with("Z")
    if offset_required:  # one regex pass decides both the shape and the offset
        shape, has_offset = text.str.contains(_TIME_WITH_OFFSET), pl.lit(True)
    else:
        shape, has_offset = text.str.contains(_TIME), zulu | text.str.contains(r"[+-][0-9]{2}:[0-9]{2}$")
    year = text.str.slice(0, 4)
    years = (
        (year >= f"{first_year:04d}") & (year <= f"{last_year:04d}")
        if (first_year, last_year) != (1, 9999)
        else year != "0000"
    )  # year 0 does not exist for datetime
    applies = (
        shape
        & years
        & (text.str.slice(17, 2) < "60")  # no leap second: datetime refuses :60
        & (~has_offset | zulu | ((text.str.slice(-5, 2) < "24") & (text.str.slice(-2, 2) < "60")))
    )
    local = (
        text.str.slice(0, 19)
        .str.replace(" ", "T", literal=True)
        .str.to_datetime("%Y-%m-%dT%H:%M:%S", time_unit="us", strict=False, cache=False)
        .dt.epoch("us")
    )
    micro = (
        text.str.extract(r":[0-9]{2}\.([0-9]{1,6})", 1).str.pad_end(6, "0").cast(pl.Int64, strict=False).fill_null(0)
    )
    offset_minutes = (
        pl.when(has_offset & ~zulu)
        .then(
            (
                text.str.slice(-5, 2).cast(pl.Int64, strict=False) * 60
                + text.str.slice(-2, 2).cast(pl.Int64, strict=False)
            )
            * pl.when(text.str.slice(-6, 1) == "-").then(-1).otherwise(1)
        )
        .otherwise(0)
    )
    return pl.when(applies).then(local + micro - offset_minutes * 60_000_000)


def whole_seconds(text: pl.Expr) -> pl.Expr:
    """A duration in whole seconds, null where the vectorised form does not apply: the integer
    part (at most 12 digits), plus 1 if any fractional digit is not 0; decided on the digits,
    so 0.1 is exactly 0.1 (the reference parsers decide the other values)."""
    return pl.when(text.str.contains(_DURATION)).then(
        text.str.extract(r"^([0-9]+)", 1).cast(pl.Int64, strict=False)
        + text.str.contains(r"\.[0-9]*[1-9]").cast(pl.Int64)
    )


def normalize_numbers(raw: pl.Series, mode: str) -> pl.Series:
    """E.164 digits of each dialled number (null when invalid), as ``normalize(raw, mode)``.

    Computed in stages (``with_columns``) so that polars evaluates each intermediate column
    once instead of once per reference.
    """
    if mode not in (E164, NANP):
        raise ValueError(f"unknown dialing mode {mode!r}; expected 'nanp' or 'e164'")
    col = pl.col
    df = pl.DataFrame({"raw": raw.cast(pl.String).fill_null("")})
    df = df.with_columns(s0=col("raw").str.replace_all(_SEPARATOR_CLASS, ""))
    df = df.with_columns(plus=col("s0").str.starts_with("+"))
    df = df.with_columns(s=pl.when(col("plus")).then(col("s0").str.slice(1)).otherwise(col("s0")))
    df = df.with_columns(
        chars_ok=(col("raw").str.len_chars() <= MAX_RAW_LENGTH) & col("s").str.contains(r"^[0-9]+$"),
        idd_011=~col("plus") & col("s").str.starts_with("011"),
        idd_00=~col("plus") & col("s").str.starts_with("00"),
        n=col("s").str.len_chars(),
    )
    df = df.with_columns(
        body=pl.when(col("idd_011"))
        .then(col("s").str.slice(3))
        .when(col("idd_00"))
        .then(col("s").str.slice(2))
        .otherwise(col("s"))
    )
    df = df.with_columns(body_len=col("body").str.len_chars())
    international_ok = (
        col("chars_ok") & (col("body_len") > 0) & (col("body_len") <= MAX_DIGITS) & ~col("body").str.starts_with("0")
    )
    none = pl.lit(None, pl.String)
    result: pl.Expr
    if mode == E164:
        result = pl.when(international_ok).then(col("body")).otherwise(none)
    else:
        international = col("plus") | col("idd_011") | col("idd_00")
        s, n = col("s"), col("n")
        result = (
            pl.when(international)
            .then(pl.when(international_ok).then(col("body")))
            .when(~col("chars_ok"))
            .then(pl.lit(None, pl.String))
            .when(n == 10)
            .then(pl.lit("1") + s)
            .when((n == 11) & s.str.starts_with("1"))
            .then(s)
            .when((n == 3) & s.str.contains(r"^[2-9]11$"))
            .then(pl.lit("1") + s)
            .otherwise(none)
        )
    return df.select(result.alias(raw.name)).to_series()


def units_to_micros(units: pl.Expr, decimals: pl.Expr | int) -> pl.Expr:
    """Integer units of ``10**-decimals`` (``decimals`` <= 6) as micro-units: exact."""
    return units * 10 ** (MICRO_DECIMALS - decimals)


def format_units_expr(units: pl.Expr, decimals: int) -> pl.Expr:
    """Non-negative integer units of ``10**-decimals`` as text with exactly ``decimals``
    places (12345, 4 -> "1.2345"); null stays null. Integer ``//`` and ``%`` only."""
    if decimals == 0:
        return units.cast(pl.String)
    scale = 10**decimals
    text: pl.Expr = (units // scale).cast(pl.String) + "." + (units % scale).cast(pl.String).str.zfill(decimals)
    return text


def format_units(units: pl.Series, decimals: int) -> pl.Series:
    """:func:`format_units_expr` on a Series of integer units."""
    return pl.select(format_units_expr(pl.lit(units.cast(pl.Int64)), decimals)).to_series().alias(units.name)


def format_units_int(units: int, decimals: int) -> str:
    """:func:`format_units_expr` for one value (a run's total)."""
    if decimals == 0:
        return str(units)
    whole, part = divmod(units, 10**decimals)
    return f"{whole}.{part:0{decimals}d}"
