"""Tarifa's own CDR format, and the small helpers every switch adapter shares.

Two spellings of the canonical CDR (see ``docs/cdr-formats.md``):

* ``parse`` - CSV with a header row whose columns are :class:`CanonicalCdr` field names;
* ``parse_json`` - JSON Lines, one object a line, with the same keys.

Required: ``call_id``, ``callee``, ``start_time``, ``duration``; every other field is optional.
Times are ISO 8601; a time without an offset is read in ``tz``. ``duration`` may be fractional
and is rounded up to a whole second (exactly, with :class:`~decimal.Decimal`). A ``switch``
value overrides the ``switch`` argument for its record.

The helpers below (time zones, times, epochs, whole seconds, physical lines, CSV lines,
:func:`build`) are the shared vocabulary of the adapters in this package. They are pure: no
Django, no I/O.
"""

from __future__ import annotations

import csv
import io
import ipaddress
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import fields
from datetime import UTC, datetime, timedelta, tzinfo
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, InvalidOperation
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tarifa.core.cdr import (
    DIRECTIONS,
    DISPOSITIONS,
    MAX_DURATION,
    CanonicalCdr,
    Direction,
    Disposition,
    LineError,
    shown,
    text_problems,
)

Item = CanonicalCdr | LineError

FIELDS: Final = tuple(f.name for f in fields(CanonicalCdr))
REQUIRED: Final = ("call_id", "callee", "start_time", "duration")
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_SNIPPET: Final = 2000


class RecordError(ValueError):
    """Why one record cannot become a :class:`CanonicalCdr`: the reason of its :class:`LineError`."""


# --------------------------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------------------------


def load_zone(tz: str) -> tzinfo:
    """The zone named ``tz`` (IANA name); a ValueError that says so for an unknown name."""
    if tz in ("UTC", "utc", "Z", "Etc/UTC"):
        return UTC
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ValueError(f"unknown time zone {tz!r}: give an IANA name such as 'UTC' or 'Europe/Paris'") from None


def physical_lines(text: str) -> list[str]:
    """The physical lines of ``text`` with their endings (``\\n``, ``\\r\\n`` or ``\\r``), BOM removed."""
    if text.startswith("\ufeff"):
        text = text[1:]
    return io.StringIO(text, newline="").readlines()


def snippet(raw: str) -> str:
    """The record text kept in a LineError (long JSON documents are cut)."""
    return raw if len(raw) <= _SNIPPET else raw[:_SNIPPET] + "..."


def csv_records(text: str, record: Callable[[list[str]], CanonicalCdr]) -> Iterator[Item]:
    """One CanonicalCdr (built by ``record``) or LineError per CSV record of a header-less file."""
    for number, row, raw in csv_rows(text):
        try:
            if isinstance(row, RecordError):
                raise row
            yield record(row)
        except RecordError as exc:
            yield LineError(number, str(exc), raw)


def csv_rows(text: str) -> Iterator[tuple[int, list[str] | RecordError, str]]:
    """(line number, cells or the CSV error, raw line) for every non-blank physical line.

    One record is one physical line: a broken quote spoils its own line only, never the next
    records (the switch formats never put a line break inside a field).
    """
    for number, line in enumerate(physical_lines(text), start=1):
        raw = line.rstrip("\r\n")
        if not raw.strip():
            continue
        yield number, csv_cells(raw), raw


def csv_cells(raw: str) -> list[str] | RecordError:
    """The cells of one CSV line (without its line ending), or the CSV error."""
    try:
        return next(csv.reader([raw], strict=True, skipinitialspace=True))
    except csv.Error as exc:
        return RecordError(f"malformed CSV line: {exc}")


def decimal_of(value: object, field: str) -> Decimal:
    """``value`` (text, int or Decimal) as an exact, finite Decimal."""
    if isinstance(value, bool) or value is None:
        raise RecordError(f"{field} is missing" if value is None else f"{field} {value!r} is not a number")
    text = str(value).strip()
    if not text:
        raise RecordError(f"{field} is missing")
    try:
        dec = Decimal(text)
    except InvalidOperation:
        raise RecordError(f"{field} {text!r} is not a number") from None
    if not dec.is_finite():
        raise RecordError(f"{field} {text!r} is not a finite number")
    return dec


def ceil_seconds(value: object, field: str) -> int:
    """Whole seconds, a fraction rounded up (exactly: ``12.001`` is 13); negative is refused."""
    dec = decimal_of(value, field)
    if dec < 0:
        raise RecordError(f"{field} {shown(str(value).strip())} is negative")
    if dec > MAX_DURATION:  # before int(): 1e999999999 must not become an integer
        raise RecordError(f"{field} {shown(str(value).strip())} is more than a week ({MAX_DURATION} seconds)")
    return int(dec.to_integral_value(rounding=ROUND_CEILING))


def from_epoch(value: object, field: str, *, scale: int = 1) -> datetime | None:
    """Aware UTC time from a count since 1970 in seconds (``scale=1``), ms (1000) or us (10**6).

    Empty or 0 means "never" (FreeSWITCH writes 0 for a call that was not answered) and is None.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    dec = decimal_of(value, field)
    if dec == 0:
        return None
    if dec < 0:
        raise RecordError(f"{field} {str(value).strip()!r} is negative")
    micros = int((dec * 1_000_000 / scale).to_integral_value(rounding=ROUND_FLOOR))
    try:
        return _EPOCH + timedelta(microseconds=micros)
    except OverflowError:
        raise RecordError(f"{field} {str(value).strip()!r} is out of range") from None


_DATE_ONLY = re.compile(r"\d{4}-?\d{2}-?\d{2}")


def parse_time(value: str, zone: tzinfo, field: str, *, not_before: datetime | None = None) -> datetime:
    """An ISO 8601 / ``YYYY-MM-DD HH:MM:SS`` time as aware UTC; a naive time is read in ``zone``.

    A wall time that does not exist in ``zone`` (skipped by a clock change) is refused. A wall
    time that occurs twice is the first occurrence, or the second when the first would fall
    before ``not_before`` (an answer or end time read after its start time).
    """
    text = value.strip()
    if not text:
        raise RecordError(f"{field} is missing")
    if _DATE_ONLY.fullmatch(text):
        raise RecordError(f"{field} {text!r} has no time of day")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise RecordError(f"{field} {text!r} is not a date and time (expected YYYY-MM-DD HH:MM:SS)") from None
    try:
        if parsed.tzinfo is None:
            parsed = _localize(parsed, zone, field, text, not_before)
        return parsed.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:00:00-05:00 is after the last day a datetime holds
        raise RecordError(f"{field} {shown(text)} is out of range") from None


def _localize(naive: datetime, zone: tzinfo, field: str, text: str, not_before: datetime | None) -> datetime:
    first = naive.replace(tzinfo=zone, fold=0)
    second = naive.replace(tzinfo=zone, fold=1)
    if first.utcoffset() == second.utcoffset():
        return first
    if first.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != naive:
        raise RecordError(f"{field} {text!r} does not exist in time zone {zone} (the clocks went forward)")
    if not_before is not None and first < not_before <= second:
        return second
    return first


def optional_time(value: str, zone: tzinfo, field: str, *, not_before: datetime | None = None) -> datetime | None:
    """:func:`parse_time`, or None for an empty value."""
    return parse_time(value, zone, field, not_before=not_before) if value.strip() else None


def parse_ip(value: str, field: str) -> str:
    """A normalised IPv4/IPv6 address, or "" for an empty value."""
    text = value.strip()
    if not text:
        return ""
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise RecordError(f"{field} {text!r} is not an IP address") from None


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def build(**values: Any) -> CanonicalCdr:
    """A CanonicalCdr, after checking its text and that the times are in order; any refusal is
    a RecordError. Every adapter builds its records here: the door every CDR comes through."""
    problem = text_problems(values)
    if problem:
        raise RecordError(problem)
    start: datetime = values["start_time"]
    connect: datetime | None = values.get("connect_time")
    end: datetime | None = values.get("end_time")
    if connect is not None and connect < start:
        raise RecordError(f"answer time {_iso(connect)} is before start time {_iso(start)}")
    if end is not None and end < (connect or start):
        which = "answer" if connect is not None else "start"
        raise RecordError(f"end time {_iso(end)} is before {which} time {_iso(connect or start)}")
    try:
        return CanonicalCdr(**values)
    except ValueError as exc:
        raise RecordError(str(exc)) from None


# --------------------------------------------------------------------------------------------
# The Tarifa format
# --------------------------------------------------------------------------------------------


def parse(text: str, *, switch: str, tz: str = "UTC") -> Iterator[Item]:
    """Tarifa canonical CSV (header of CanonicalCdr field names) -> CanonicalCdr / LineError."""
    return _parse_csv(text, switch, load_zone(tz))


def parse_json(text: str, *, switch: str, tz: str = "UTC") -> Iterator[Item]:
    """Tarifa canonical JSON Lines (one object a line, CanonicalCdr keys) -> CanonicalCdr / LineError."""
    return _parse_jsonl(text, switch, load_zone(tz))


def header_problem(names: list[str], known: tuple[str, ...], required: tuple[str, ...]) -> str | None:
    """Why a header row is refused (unknown, empty, repeated or missing columns), or None."""
    problems = []
    empty = [str(i) for i, name in enumerate(names, start=1) if not name]
    if empty:
        problems.append(f"empty column name in position {', '.join(empty)}")
    unknown = [name for name in names if name and name not in known]
    if unknown:
        problems.append(f"unknown column {', '.join(map(repr, unknown))} (known: {', '.join(known)})")
    repeated = sorted({name for name in names if name and names.count(name) > 1})
    if repeated:
        problems.append(f"repeated column {', '.join(map(repr, repeated))}")
    missing = [name for name in required if name not in names]
    if missing:
        problems.append(f"missing required column {', '.join(map(repr, missing))}")
    return "bad header: " + "; ".join(problems) if problems else None


def csv_header(number: int, row: list[str] | RecordError, raw: str) -> list[str] | LineError:
    """The column names of a canonical CSV header line, or why it is refused."""
    if isinstance(row, RecordError):
        return LineError(number, f"bad header: {row}", raw)
    names = [cell.strip().lower() for cell in row]
    problem = header_problem(names, FIELDS, REQUIRED)
    if problem:
        return LineError(number, problem, raw)
    return names


def csv_record(
    number: int, row: list[str] | RecordError, raw: str, names: list[str], switch: str, zone: tzinfo
) -> Item:
    """One canonical CSV line (cells as :func:`csv_rows` gives them) -> CanonicalCdr / LineError."""
    try:
        if isinstance(row, RecordError):
            raise row
        if len(row) != len(names):
            raise RecordError(f"expected {len(names)} columns as in the header, got {len(row)}")
        return from_mapping(dict(zip(names, row, strict=True)), switch, zone)
    except RecordError as exc:
        return LineError(number, str(exc), raw)


def _parse_csv(text: str, switch: str, zone: tzinfo) -> Iterator[Item]:
    rows = csv_rows(text)
    for number, row, raw in rows:
        names = csv_header(number, row, raw)
        if isinstance(names, LineError):
            yield names
            return
        break
    else:
        return
    for number, row, raw in rows:
        yield csv_record(number, row, raw, names, switch, zone)


def _parse_jsonl(text: str, switch: str, zone: tzinfo) -> Iterator[Item]:
    for number, line in enumerate(physical_lines(text), start=1):
        raw = line.rstrip("\r\n")
        if not raw.strip():
            continue
        yield _json_record(number, raw, switch, zone)


def _json_record(number: int, raw: str, switch: str, zone: tzinfo, *, force_switch: bool = False) -> Item:
    """One JSON text -> CanonicalCdr / LineError numbered ``number`` (the record's line or index).
    With ``force_switch`` the record's own ``switch`` is replaced by ``switch``."""
    try:
        try:
            record = json.loads(raw, parse_float=Decimal, parse_int=_json_int)
        except json.JSONDecodeError as exc:
            raise RecordError(f"not valid JSON: {exc.msg} at column {exc.colno}") from None
        except RecursionError:
            raise RecordError("not valid JSON: nested too deeply") from None
        if not isinstance(record, dict):
            raise RecordError(f"expected a JSON object, got {type(record).__name__}")
        return _object_record(number, record, switch, zone, snippet(raw), force_switch=force_switch)
    except RecordError as exc:
        return LineError(number, str(exc), snippet(raw))


def _json_int(text: str) -> int | Decimal:
    """A JSON integer; beyond what ``int()`` converts from text (4,300 digits), a Decimal, so
    that the record is refused for its value and not the whole document for a ValueError."""
    return int(text) if len(text) <= 4000 else Decimal(text)


def _object_record(
    number: int, record: dict[str, Any], switch: str, zone: tzinfo, raw: str = "", *, force_switch: bool = False
) -> Item:
    try:
        unknown = [key for key in record if key not in FIELDS]
        if unknown:
            raise RecordError(f"unknown key {', '.join(shown(k) for k in unknown[:5])} (known: {', '.join(FIELDS)})")
        if force_switch:
            record = {**record, "switch": switch}
        return from_mapping(record, switch, zone)
    except RecordError as exc:
        return LineError(number, str(exc), raw)


class BatchError(ValueError):
    """A pushed body that is not a JSON array of records as a whole (nothing of it is read);
    ``malformed``: not JSON at all (else JSON of another shape)."""

    def __init__(self, reason: str, *, malformed: bool = True) -> None:
        super().__init__(reason)
        self.malformed = malformed


def parse_batch(body: bytes, *, switch: str, tz: str = "UTC") -> list[Item]:
    """A batch a switch pushed (``POST /api/v1/cdrs``): a JSON array of canonical CDR objects, or
    ``{"cdrs": [...]}`` -> one CanonicalCdr or LineError per element, numbered by its 1-based index.

    Every record is the switch's: its own ``switch`` key is replaced by ``switch``. One bad
    element never spoils the others: invalid UTF-8 inside a string becomes lone surrogates
    (``surrogateescape``) that the record's check refuses with the field's name; an element that
    is not valid JSON, is nested too deeply for the parser or holds an integer of thousands of
    digits is refused with its index. :class:`BatchError` when the body as a whole is not such an
    array (the text names where and why).
    """
    zone = load_zone(tz)
    text = body.decode("utf-8", "surrogateescape").lstrip("\ufeff")
    if not text.strip():
        raise BatchError(
            'the body is empty: it must be a JSON array of CDR objects, or {"cdrs": [...]}', malformed=False
        )
    try:
        document = json.loads(text, parse_float=Decimal, parse_int=_json_int)
    except (ValueError, RecursionError) as exc:
        return [
            _json_record(n, raw, switch, zone, force_switch=True) for n, raw in enumerate(_elements(text, exc), start=1)
        ]
    items = document.get("cdrs") if isinstance(document, dict) else document
    if not isinstance(items, list):
        raise BatchError('the body must be a JSON array of CDR objects, or {"cdrs": [...]}', malformed=False)
    out: list[Item] = []
    for n, record in enumerate(items, start=1):
        if isinstance(record, dict):
            out.append(_object_record(n, record, switch, zone, force_switch=True))
        else:
            out.append(LineError(n, f"expected a JSON object, got {type(record).__name__}"))
    return out


# A string (unrolled for speed), an unterminated quote, or a structural character.
_TOKENS: Final = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|"|[\[\]{},]')


def _elements(text: str, error: BaseException) -> list[str]:
    """The element texts of the record array of a body ``json.loads`` refused (``error``), so
    that each can be parsed and refused on its own; BatchError (with ``error``'s words) when
    the structure around them is broken. Depth is counted, never recursed into."""
    if isinstance(error, json.JSONDecodeError):
        why = f"line {error.lineno} column {error.colno}: {error.msg}"
    elif isinstance(error, RecursionError):
        why = "nested too deeply"
    else:
        why = str(error)[:200]
    head = text.lstrip()
    wrapped = head.startswith("{")
    if not head.startswith("[") and not (wrapped and re.match(r'\{\s*"cdrs"\s*:\s*\[', head)):
        raise BatchError(why)
    opening = text.index("[")
    depth, start, parts = 0, opening + 1, []
    for token in _TOKENS.finditer(text, opening):
        kind = token.group()
        if kind == '"':
            raise BatchError(why)  # an unterminated string: the rest of the body is in it
        if kind in "[{":
            depth += 1
        elif kind in "]}":
            depth -= 1
            if depth == 0:  # the record array closes
                parts.append(text[start : token.start()])
                rest = text[token.end() :].strip()
                if rest != ("}" if wrapped else ""):
                    raise BatchError(why)
                if len(parts) == 1 and not parts[0].strip():
                    return []  # an empty array
                return [part.strip() for part in parts]
        elif kind == "," and depth == 1:
            parts.append(text[start : token.start()])
            start = token.end()
    raise BatchError(why)


def _text(values: Mapping[str, Any], name: str) -> str:
    value = values.get(name)
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise RecordError(f"{name} must be text, got {shown(value)}")


def _choice(values: Mapping[str, Any], name: str, allowed: tuple[str, ...], default: str) -> str:
    value = _text(values, name).lower() or default
    if value not in allowed:
        raise RecordError(f"{name} {value!r} must be one of {', '.join(allowed)}")
    return value


def from_mapping(values: Mapping[str, Any], switch: str, zone: tzinfo) -> CanonicalCdr:
    """One canonical record (CSV cells or JSON values by field name) -> CanonicalCdr."""
    call_id = _text(values, "call_id")
    if not call_id:
        raise RecordError("call_id is missing")
    callee = _text(values, "callee")
    if not callee:
        raise RecordError("callee is missing")
    start = optional_time(_text(values, "start_time"), zone, "start_time")
    if start is None:
        raise RecordError("start_time is missing")
    connect = optional_time(_text(values, "connect_time"), zone, "connect_time", not_before=start)
    end = optional_time(_text(values, "end_time"), zone, "end_time", not_before=connect or start)
    duration = values.get("duration")
    if isinstance(duration, str):
        duration = duration.strip()
    if duration is None or duration == "":
        raise RecordError("duration is missing")
    sip_text = _text(values, "sip_code")
    sip_code = None
    if sip_text:
        if not sip_text.isdigit() or not 100 <= int(sip_text) <= 699:
            raise RecordError(f"sip_code {sip_text!r} must be a SIP status code (100-699)")
        sip_code = int(sip_text)
    return build(
        call_id=call_id,
        callee=callee,
        start_time=start,
        duration=ceil_seconds(duration, "duration"),
        switch=_text(values, "switch") or switch,
        leg=_text(values, "leg") or "a",
        caller=_text(values, "caller"),
        connect_time=connect,
        end_time=end,
        disposition=_choice(values, "disposition", DISPOSITIONS, Disposition.ANSWERED),
        sip_code=sip_code,
        direction=_choice(values, "direction", DIRECTIONS, Direction.OUTBOUND),
        source_ip=parse_ip(_text(values, "source_ip"), "source_ip"),
        sip_user=_text(values, "sip_user"),
        trunk=_text(values, "trunk"),
        did=_text(values, "did"),
        extension=_text(values, "extension"),
        account_code=_text(values, "account_code"),
        connection=_text(values, "connection"),
    )
