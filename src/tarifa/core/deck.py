"""Rate decks as operators exchange them: the column layout, row validation, and the rows.

Pure: takes already-read rows (from CSV, XLSX, an API body) and returns validated
:class:`DeckRow` objects plus every error found. A deck with any error must import nothing,
so parsing never stops at the first bad row.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Final
from zoneinfo import ZoneInfo

from tarifa.core.periods import PeriodSyntaxError, parse_period
from tarifa.core.rate_rules import (
    AMOUNTS,
    DESTINATION,
    PERIOD,
    PREFIX_DIGITS,
    WHOLES,
    control_character,
)
from tarifa.core.rating import RateEntry, RateTerms

COLUMNS: Final = (
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
)
REQUIRED: Final = ("prefix", "price_1")
#: The moment a version without ``effective_from`` starts: "since ever", a fixed past instant so
#: that (prefix, period, effective_from) is a unique key on every database.
SINCE_EVER: Final = datetime(1970, 1, 1, tzinfo=UTC)
#: Longest value a refusal repeats; a 128 KiB cell is named by its start.
SHOWN_MAX: Final = 80

_PREFIX = re.compile(rf"^[0-9]{{{PREFIX_DIGITS[0]},{PREFIX_DIGITS[1]}}}$")
_INT = re.compile(r"^[+-]?[0-9]+$")
_TRUE = {"1", "true", "yes", "y", "t", "x"}
_FALSE = {"", "0", "false", "no", "n", "f"}


@dataclass(frozen=True, slots=True)
class DeckError:
    """One refused value: where, what, and the rule it breaks."""

    line: int
    field: str
    value: str
    rule: str

    @property
    def shown(self) -> str:
        """The value as a message repeats it: cut after :data:`SHOWN_MAX` characters."""
        if len(self.value) <= SHOWN_MAX:
            return self.value
        return f"{self.value[:SHOWN_MAX]}... ({len(self.value)} characters)"

    @property
    def where(self) -> str:
        """ "line N", or "whole file" for a refusal of the file itself (line 0: unreadable, not
        UTF-8...), which no line number describes."""
        return f"line {self.line}" if self.line else "whole file"

    def __str__(self) -> str:
        if not self.line:
            return f"{self.field} {self.shown!r} is refused: {self.rule}"
        return f"line {self.line}: {self.field} {self.shown!r} is refused: {self.rule}"


@dataclass(frozen=True, slots=True)
class DeckRow:
    line: int
    prefix: str
    destination: str
    price_1: Decimal
    price_n: Decimal
    interval_1: int
    interval_n: int
    connect_fee: Decimal
    free_seconds: int
    grace_period: int
    post_call_surcharge: Decimal
    min_charge: Decimal
    effective_from: datetime | None
    effective_to: datetime | None
    period: str
    forbidden: bool

    @property
    def version_key(self) -> tuple[str, str, datetime | None]:
        """Two rows with the same key describe the same rate version."""
        return (self.prefix, self.period, self.effective_from)

    def terms(self) -> RateTerms:
        return RateTerms(
            price_1=self.price_1,
            price_n=self.price_n,
            interval_1=self.interval_1,
            interval_n=self.interval_n,
            connect_fee=self.connect_fee,
            free_seconds=self.free_seconds,
            grace_period=self.grace_period,
            post_call_surcharge=self.post_call_surcharge,
            min_charge=self.min_charge,
            forbidden=self.forbidden,
        )

    def entry(self) -> RateEntry:
        return RateEntry(
            prefix=self.prefix,
            destination=self.destination,
            terms=self.terms(),
            effective_from=self.effective_from,
            effective_to=self.effective_to,
            period=parse_period(self.period) if self.period else None,
        )


def check_header(header: Sequence[str]) -> list[DeckError]:
    """Known column names only, each once, with the required ones present."""
    errors: list[DeckError] = []
    names = [name.strip().lower() for name in header]
    for name in names:
        if name not in COLUMNS:
            errors.append(DeckError(1, "header", name, f"unknown column; allowed: {', '.join(COLUMNS)}"))
    for name in set(names):
        if names.count(name) > 1:
            errors.append(DeckError(1, "header", name, "column appears more than once"))
    for name in REQUIRED:
        if name not in names:
            errors.append(DeckError(1, "header", name, "required column is missing"))
    return errors


class _Row:
    """Reads one raw row field by field, collecting errors instead of raising.

    A field is refused at most once: the first broken rule is the one reported.
    """

    def __init__(self, line: int, values: dict[str, str], tz: ZoneInfo, errors: list[DeckError]) -> None:
        self.line = line
        self.values = values
        self.tz = tz
        self.errors = errors
        self.refused: set[str] = set()

    def text(self, name: str) -> str:
        value = self.values.get(name)
        return "" if value is None else str(value).strip()  # control characters: see parse_row

    def refuse(self, name: str, value: str, rule: str) -> None:
        if name not in self.refused:
            self.refused.add(name)
            self.errors.append(DeckError(self.line, name, value, rule))

    def ok(self, name: str) -> bool:
        return name not in self.refused

    def money(self, name: str, default: Decimal | None) -> Decimal:
        """An amount of :data:`~tarifa.core.rate_rules.AMOUNTS`, checked against its limits."""
        raw = self.text(name)
        if not self.ok(name):
            return Decimal(0)
        if raw == "":
            if default is None:
                self.refuse(name, raw, "is required")
                return Decimal(0)
            return default
        try:
            value = Decimal(raw)
        except InvalidOperation:
            self.refuse(name, raw, "must be a decimal number")
            return Decimal(0)
        rule = AMOUNTS[name].check(value)
        if rule:
            self.refuse(name, raw, rule)
            return Decimal(0)
        return value

    def whole(self, name: str) -> int:
        """A number of seconds of :data:`~tarifa.core.rate_rules.WHOLES`, checked against its limits."""
        spec = WHOLES[name]
        raw = self.text(name)
        if raw == "" or not self.ok(name):
            return spec.default
        if not _INT.match(raw):
            self.refuse(name, raw, "must be a whole number")
            return spec.default
        value = int(raw)
        rule = spec.check(value)
        if rule:
            self.refuse(name, raw, rule)
            return spec.default
        return value

    def moment(self, name: str) -> datetime | None:
        raw = self.text(name)
        if raw == "" or not self.ok(name):
            return None
        try:
            if len(raw) == 10:
                day = date.fromisoformat(raw)
                return datetime(day.year, day.month, day.day, tzinfo=self.tz).astimezone(UTC)
            value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            self.refuse(
                name, raw, "must be an ISO 8601 date or date-time, e.g. 2026-01-31 or 2026-01-31T08:00:00+00:00"
            )
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=self.tz)
        try:
            return value.astimezone(UTC)
        except OverflowError:
            self.refuse(name, raw, "must be a date between 0001 and 9999")
            return None

    def flag(self, name: str) -> bool:
        raw = self.text(name)
        if not self.ok(name):
            return False
        if raw.lower() in _TRUE:
            return True
        if raw.lower() not in _FALSE:
            self.refuse(name, raw, "must be one of 1/0, true/false, yes/no or empty")
        return False


def parse_row(line: int, values: dict[str, str], tz: ZoneInfo, errors: list[DeckError]) -> DeckRow:
    row = _Row(line, values, tz, errors)
    for name, raw in values.items():  # every cell; leading and trailing white space is dropped anyway
        rule = control_character(raw.strip())
        if rule:
            row.refuse(name, raw.strip(), rule)
    prefix = row.text("prefix")
    if row.ok("prefix") and not _PREFIX.match(prefix):
        row.refuse("prefix", prefix, f"must be {PREFIX_DIGITS[0]} to {PREFIX_DIGITS[1]} digits 0-9")
    price_1 = row.money("price_1", None)
    period = row.text("period")
    if period and row.ok("period"):
        rule = PERIOD.check(period)
        if rule:
            row.refuse("period", period, rule)
        else:
            try:
                period = parse_period(period).canonical()
            except PeriodSyntaxError as exc:
                row.refuse("period", period, str(exc))
    effective_from = row.moment("effective_from")
    effective_to = row.moment("effective_to")
    if effective_from and effective_to and effective_from >= effective_to:
        row.refuse("effective_to", row.text("effective_to"), "must be later than effective_from")
    destination = row.text("destination")
    if row.ok("destination"):
        rule = DESTINATION.check(destination)
        if rule:
            row.refuse("destination", destination, rule)
    return DeckRow(
        line=line,
        prefix=prefix,
        destination=destination,
        price_1=price_1,
        price_n=row.money("price_n", price_1),
        interval_1=row.whole("interval_1"),
        interval_n=row.whole("interval_n"),
        connect_fee=row.money("connect_fee", Decimal(0)),
        free_seconds=row.whole("free_seconds"),
        grace_period=row.whole("grace_period"),
        post_call_surcharge=row.money("post_call_surcharge", Decimal(0)),
        min_charge=row.money("min_charge", Decimal(0)),
        effective_from=effective_from,
        effective_to=effective_to,
        period=period,
        forbidden=row.flag("forbidden"),
    )


def parse_deck(
    header: Sequence[str], rows: Iterable[tuple[int, Sequence[str]]], tz_name: str = "UTC"
) -> tuple[list[DeckRow], list[DeckError]]:
    """Validate a whole deck. ``rows`` are (line number, cells) in file order.

    Dates without an offset are read in ``tz_name`` (the tariff's zone). Returns every row and
    every error; callers import nothing when the error list is not empty.
    """
    errors = check_header(header)
    if errors:
        return [], errors
    names = [name.strip().lower() for name in header]
    tz = ZoneInfo(tz_name)
    parsed: list[DeckRow] = []
    first_line: dict[tuple[str, str, datetime | None], int] = {}
    for line, cells in rows:
        if not any(str(c).strip() for c in cells if c is not None):
            continue  # blank lines are not rows
        if len(cells) > len(names):
            errors.append(DeckError(line, "row", f"{len(cells)} cells", f"the header has {len(names)} columns"))
            continue
        values = dict(zip(names, ("" if c is None else str(c) for c in cells), strict=False))
        row = parse_row(line, values, tz, errors)
        key = row.version_key
        if key in first_line:
            errors.append(
                DeckError(
                    line,
                    "prefix",
                    row.prefix,
                    f"same prefix, period and effective_from as line {first_line[key]}",
                )
            )
        else:
            first_line[key] = line
        parsed.append(row)
    return parsed, errors


def format_money(value: Decimal) -> str:
    """The shortest exact text of an amount: 0.020000 -> "0.02", 5E+1 -> "50"."""
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "") else text


def row_cells(row: DeckRow, since_ever: datetime | None = None) -> list[str]:
    """A row as the cells of :data:`COLUMNS`, the inverse of :func:`parse_row`."""
    start = "" if row.effective_from is None or row.effective_from == since_ever else row.effective_from.isoformat()
    return [
        row.prefix,
        row.destination,
        format_money(row.price_1),
        format_money(row.price_n),
        str(row.interval_1),
        str(row.interval_n),
        format_money(row.connect_fee),
        str(row.free_seconds),
        str(row.grace_period),
        format_money(row.post_call_surcharge),
        format_money(row.min_charge),
        start,
        "" if row.effective_to is None else row.effective_to.isoformat(),
        row.period,
        "1" if row.forbidden else "0",
    ]
