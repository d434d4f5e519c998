"""Time-of-day / day-of-week periods stored on a rate (peak, off-peak, weekend).

A period is a short text an operator can read and type in a CSV rate sheet::

    mon-fri 08:00-18:00          working hours
    sat-sun                      the whole weekend
    daily 19:00-07:00            every evening into the next morning
    mon,wed,fri                  three whole days
    mon-fri 08:00-12:00,14:00-18:00; sat 09:00-12:00

Grammar (case-insensitive, blanks between tokens are free)::

    period  := "" | "always" | clause (";" clause)*
    clause  := days [ranges] | ranges
    days    := "daily" | "weekdays" | "weekends" | day ["-" day] ("," day ["-" day])*
    day     := mon tue wed thu fri sat sun   (full names accepted too)
    ranges  := range ("," range)*
    range   := HH:MM "-" HH:MM                (00:00 <= start < 24:00, end up to 24:00)

A clause without days means every day; a clause without ranges means the whole day.
A day range may wrap (``fri-mon``). A time range whose end is before its start crosses
midnight and belongs to the day it *starts* on: ``fri 22:00-06:00`` covers Friday 22:00
to Saturday 06:00. Starts are inclusive and ends exclusive.

Why a bitmap: every boundary is a whole minute, so a week has 10,080 distinct states.
Pre-computing them makes ``contains`` one index into a ``bytes`` object, cheap enough to
call for every CDR of a batch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import overload
from zoneinfo import ZoneInfo

__all__ = [
    "ALWAYS",
    "EPOCH",
    "Period",
    "PeriodSyntaxError",
    "local_time",
    "micros",
    "moment",
    "parse_period",
    "zone",
]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


@overload
def micros(moment: datetime) -> int: ...
@overload
def micros(moment: None) -> None: ...
@overload
def micros(moment: datetime | None) -> int | None: ...
def micros(moment: datetime | None) -> int | None:
    """UTC microseconds since 1970 of an aware datetime, exactly (None stays None)."""
    return None if moment is None else (moment - EPOCH) // _MICROSECOND


@overload
def moment(us: int) -> datetime: ...
@overload
def moment(us: None) -> None: ...
@overload
def moment(us: int | None) -> datetime | None: ...
def moment(us: int | None) -> datetime | None:
    """UTC datetime of a microsecond count (None stays None)."""
    return None if us is None else EPOCH + timedelta(microseconds=us)


MINUTES_PER_DAY = 1440
MINUTES_PER_WEEK = 7 * MINUTES_PER_DAY

_DAY_NAMES: dict[str, int] = {
    "mon": 0,
    "monday": 0,
    "tue": 1,
    "tues": 1,
    "tuesday": 1,
    "wed": 2,
    "wednesday": 2,
    "thu": 3,
    "thur": 3,
    "thurs": 3,
    "thursday": 3,
    "fri": 4,
    "friday": 4,
    "sat": 5,
    "saturday": 5,
    "sun": 6,
    "sunday": 6,
}
_DAY_GROUPS: dict[str, frozenset[int]] = {
    "daily": frozenset(range(7)),
    "weekdays": frozenset(range(5)),
    "weekends": frozenset({5, 6}),
    "weekend": frozenset({5, 6}),
}
_CANON_DAY = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

_TOKEN = re.compile(r"\s*(?:(?P<time>\d{1,2}:\d{2})|(?P<word>[A-Za-z]+)|(?P<punct>[-,;])|(?P<bad>\S))")


class PeriodSyntaxError(ValueError):
    """A period text that does not parse; names the text and the 1-based column."""

    def __init__(self, text: str, position: int, reason: str) -> None:
        self.text = text
        self.position = position  # 0-based index into text
        self.reason = reason
        super().__init__(f"invalid period {text!r}: {reason} at column {position + 1}")


@dataclass(frozen=True, slots=True)
class _Clause:
    days: frozenset[int]
    ranges: tuple[tuple[int, int], ...]  # minutes [start, end); end < start crosses midnight


@dataclass(frozen=True, slots=True)
class Period:
    """A set of weekly time slots; ``contains`` reads the wall-clock fields of a local time."""

    text: str = field(compare=False)
    clauses: tuple[_Clause, ...] = ()
    _mask: bytes = field(default=b"", repr=False, compare=False)

    @property
    def is_always(self) -> bool:
        """True for the empty period, which matches every moment."""
        return not self.clauses

    def contains(self, local: datetime) -> bool:
        """Whether the wall-clock time of ``local`` falls in this period.

        ``local`` must already be in the tariff's time zone (see :func:`local_time`);
        only weekday, hour and minute are read, so naive and aware values behave alike.
        """
        if not self.clauses:
            return True
        return self._mask[local.weekday() * MINUTES_PER_DAY + local.hour * 60 + local.minute] == 1

    def contains_at(self, at: datetime, tz_name: str) -> bool:
        """Whether the aware instant ``at`` falls in this period in time zone ``tz_name``."""
        if not self.clauses:
            return True
        return self.contains(local_time(at, tz_name))

    def canonical(self) -> str:
        """The period re-written in one normal form (for storage and display)."""
        if not self.clauses:
            return ""
        return "; ".join(_clause_text(c) for c in self.clauses)

    def __str__(self) -> str:
        return self.canonical() or "always"


ALWAYS = Period(text="")


def _fmt_minute(m: int) -> str:
    return f"{m // 60:02d}:{m % 60:02d}"


def _clause_text(clause: _Clause) -> str:
    days = sorted(clause.days)
    if len(days) == 7:
        day_txt = "daily"
    else:
        spans: list[list[int]] = []
        for d in days:
            if spans and spans[-1][1] == d - 1:
                spans[-1][1] = d
            else:
                spans.append([d, d])
        if len(spans) > 1 and spans[0][0] == 0 and spans[-1][1] == 6:  # wrap: fri-mon
            spans[0][0] = spans.pop()[0]
            spans.insert(0, spans.pop(0))
        day_txt = ",".join(_CANON_DAY[a] if a == b else f"{_CANON_DAY[a]}-{_CANON_DAY[b]}" for a, b in spans)
    if not clause.ranges:
        return day_txt
    ranges = ",".join(f"{_fmt_minute(a)}-{_fmt_minute(b)}" for a, b in clause.ranges)
    return f"{day_txt} {ranges}"


def _build_mask(clauses: tuple[_Clause, ...]) -> bytes:
    mask = bytearray(MINUTES_PER_WEEK)
    for clause in clauses:
        for day in clause.days:
            base = day * MINUTES_PER_DAY
            ranges = clause.ranges or ((0, MINUTES_PER_DAY),)
            for start, end in ranges:
                if start < end:
                    spans = [(base + start, base + end)]
                else:  # crosses midnight into the next day (Sunday wraps to Monday)
                    nxt = ((day + 1) % 7) * MINUTES_PER_DAY
                    spans = [(base + start, base + MINUTES_PER_DAY), (nxt, nxt + end)]
                for a, b in spans:
                    mask[a:b] = b"\x01" * (b - a)
    return bytes(mask)


class _Parser:
    """A tiny recursive-descent parser; tokens carry their position for error messages."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens: list[tuple[str, str, int]] = []
        for m in _TOKEN.finditer(text):
            kind = m.lastgroup or "bad"
            self.tokens.append((kind, m.group(kind), m.start(kind)))
        self.i = 0

    def error(self, reason: str, pos: int | None = None) -> PeriodSyntaxError:
        if pos is None:
            pos = self.tokens[self.i][2] if self.i < len(self.tokens) else len(self.text.rstrip())
        return PeriodSyntaxError(self.text, pos, reason)

    def peek(self) -> tuple[str, str, int] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> tuple[str, str, int]:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def parse(self) -> tuple[_Clause, ...]:
        for kind, value, pos in self.tokens:
            if kind == "bad":
                raise self.error(f"unexpected character {value!r}", pos)
        clauses = [self.clause()]
        while self.peek() is not None:
            kind, value, pos = self.take()
            if (kind, value) != ("punct", ";"):
                raise self.error(f"expected ';' between clauses, found {value!r}", pos)
            clauses.append(self.clause())
        return tuple(clauses)

    def clause(self) -> _Clause:
        tok = self.peek()
        if tok is None:
            raise self.error("expected days or a time range")
        days: frozenset[int] = _DAY_GROUPS["daily"]
        if tok[0] == "word":
            days = self.days()
        elif tok[0] != "time":
            raise self.error(f"expected days or a time range, found {tok[1]!r}")
        ranges: list[tuple[int, int]] = []
        tok = self.peek()
        if tok is not None and tok[0] == "time":
            ranges.append(self.time_range())
            while self._at(",") and self._next_is_time():
                self.take()
                ranges.append(self.time_range())
        tok = self.peek()
        if tok is not None and tok[1] != ";":
            raise self.error(f"unexpected {tok[1]!r}")
        return _Clause(days=days, ranges=tuple(ranges))

    def _at(self, punct: str) -> bool:
        tok = self.peek()
        return tok is not None and tok[0] == "punct" and tok[1] == punct

    def _next_is_time(self) -> bool:
        return self.i + 1 < len(self.tokens) and self.tokens[self.i + 1][0] == "time"

    def days(self) -> frozenset[int]:
        _, word, pos = self.take()
        group = _DAY_GROUPS.get(word.lower())
        if group is not None:
            return group
        result: set[int] = set()
        while True:
            first = self.day(word, pos)
            if self._at("-") and not self._next_is_time():
                self.take()
                tok = self.peek()
                if tok is None or tok[0] != "word":
                    raise self.error("expected a day name after '-'")
                _, word2, pos2 = self.take()
                last = self.day(word2, pos2)
                d = first
                result.add(d)
                while d != last:
                    d = (d + 1) % 7
                    result.add(d)
            else:
                result.add(first)
            if self._at(",") and not self._next_is_time():
                self.take()
                tok = self.peek()
                if tok is None or tok[0] != "word":
                    raise self.error("expected a day name after ','")
                _, word, pos = self.take()
                continue
            return frozenset(result)

    def day(self, word: str, pos: int) -> int:
        day = _DAY_NAMES.get(word.lower())
        if day is None:
            if word.lower() in _DAY_GROUPS:
                raise self.error(f"{word!r} cannot be combined with other days", pos)
            raise self.error(f"unknown day {word!r} (use mon..sun, daily, weekdays, weekends)", pos)
        return day

    def time_range(self) -> tuple[int, int]:
        _, start_txt, start_pos = self.take()
        start = self.minute(start_txt, start_pos, allow_24=False)
        if not self._at("-"):
            raise self.error("expected '-' after the start time")
        self.take()
        tok = self.peek()
        if tok is None or tok[0] != "time":
            raise self.error("expected an end time HH:MM")
        _, end_txt, end_pos = self.take()
        end = self.minute(end_txt, end_pos, allow_24=True)
        if end == start:
            raise self.error("empty time range (start equals end; omit the range for a whole day)", start_pos)
        return start, end

    def minute(self, txt: str, pos: int, *, allow_24: bool) -> int:
        hh, mm = (int(x) for x in txt.split(":"))
        if mm > 59:
            raise self.error(f"minutes must be 00-59 in {txt!r}", pos)
        if hh == 24 and mm == 0 and allow_24:
            return MINUTES_PER_DAY
        if hh > 23:
            raise self.error(f"hour must be 00-23 in {txt!r}" + (" (24:00 only as an end)" if hh == 24 else ""), pos)
        return hh * 60 + mm


@lru_cache(maxsize=4096)
def parse_period(text: str | None) -> Period:
    """Parse a period text; empty, ``None`` or ``always`` give the always-period.

    Cached because a rate deck repeats the same few period texts many thousand times.
    Raises :class:`PeriodSyntaxError` naming the text and the column of the problem.
    """
    if text is None:
        return ALWAYS
    stripped = text.strip()
    if not stripped or stripped.lower() == "always":
        return Period(text=text)
    clauses = _Parser(text).parse()
    return Period(text=text, clauses=clauses, _mask=_build_mask(clauses))


@lru_cache(maxsize=256)
def zone(tz_name: str) -> ZoneInfo:
    """The ``ZoneInfo`` for a name, cached; an unknown name raises ``ValueError``."""
    try:
        return ZoneInfo(tz_name)
    except Exception as exc:  # ZoneInfoNotFoundError, ValueError for malformed keys
        raise ValueError(f"unknown time zone {tz_name!r}") from exc


def local_time(at: datetime, tz_name: str) -> datetime:
    """Convert an aware instant to wall-clock time in ``tz_name``; naive input is refused.

    Refusing naive values keeps a server's local time zone from silently entering rating.
    """
    if at.tzinfo is None or at.tzinfo.utcoffset(at) is None:
        raise ValueError(f"time must be timezone-aware, got naive {at.isoformat()}")
    return at.astimezone(zone(tz_name))


def day_start(at: datetime, tz_name: str) -> datetime:
    """The instant (UTC) the local day containing ``at`` began in ``tz_name``.

    Where midnight does not exist (clocks moved forward at 00:00) the day begins when the
    clocks jump.
    """
    return _local_midnight(local_time(at, tz_name).date(), tz_name)


def month_start(at: datetime, tz_name: str) -> datetime:
    """The instant (UTC) the local calendar month containing ``at`` began in ``tz_name``."""
    return _local_midnight(local_time(at, tz_name).date().replace(day=1), tz_name)


def _local_midnight(day: date, tz_name: str) -> datetime:
    # fold=0 reads a wall time skipped by a clock change with the offset before the change:
    # that is the instant of the change, when the day actually began.
    return datetime.combine(day, time(0), tzinfo=zone(tz_name)).astimezone(UTC)
