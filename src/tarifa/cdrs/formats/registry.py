"""The CDR formats by name, and a best-effort guess of a file's format.

``FORMATS`` maps a format name (what ``--format`` takes) to its parse function, each
``parse(text, *, switch, tz="UTC") -> Iterator[CanonicalCdr | LineError]``.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from typing import Final, Protocol

from tarifa.cdrs.formats import asterisk, freeswitch_csv, freeswitch_json, kamailio, tarifa
from tarifa.core.cdr import CanonicalCdr, LineError


class ParseFunction(Protocol):
    def __call__(self, text: str, *, switch: str, tz: str = "UTC") -> Iterator[CanonicalCdr | LineError]: ...


FORMATS: Final[dict[str, ParseFunction]] = {
    "asterisk": asterisk.parse,
    "freeswitch-csv": freeswitch_csv.parse,
    "freeswitch-json": freeswitch_json.parse,
    "kamailio": kamailio.parse,
    "tarifa": tarifa.parse,
    "tarifa-json": tarifa.parse_json,
}


def parse(format_name: str, text: str, *, switch: str, tz: str = "UTC") -> Iterator[CanonicalCdr | LineError]:
    """Parse ``text`` in the format named ``format_name``; ValueError for an unknown name or zone."""
    try:
        function = FORMATS[format_name]
    except KeyError:
        raise ValueError(f"unknown CDR format {format_name!r}: the formats are {', '.join(FORMATS)}") from None
    return function(text, switch=switch, tz=tz)


# --------------------------------------------------------------------------------------------
# Guessing
# --------------------------------------------------------------------------------------------

_STAMP: Final = re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}")
_UUID: Final = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_CAUSE: Final = re.compile(r"[A-Z][A-Z_]+")


def _first_lines(text: str, count: int = 5) -> list[str]:
    lines = []
    for line in text.lstrip("\ufeff").splitlines():
        if line.strip():
            lines.append(line)
            if len(lines) == count:
                break
    return lines


def _json_guess(text: str) -> str | None:
    head = text.lstrip("\ufeff \t\r\n")
    if not head.startswith(("{", "[")):
        return None
    first_line = head.splitlines()[0]
    try:
        document = json.loads(first_line)
    except (ValueError, RecursionError):
        # A pretty-printed or long document: look for the markers instead of parsing it.
        return "freeswitch-json" if '"variables"' in text[:200_000] else None
    if isinstance(document, list):
        document = document[0] if document else None
    if not isinstance(document, dict):
        return None
    if "variables" in document:
        return "freeswitch-json"
    if {"call_id", "callee", "start_time"} <= document.keys():
        return "tarifa-json"
    return None


def _row(line: str) -> list[str]:
    try:
        return next(csv.reader([line], skipinitialspace=True))
    except (csv.Error, StopIteration):
        return []


def detect(filename: str, text: str) -> str | None:
    """The format name ``text`` (from a file named ``filename``) most likely has, or None.

    Best effort, from the content: JSON keys, ``ACC:`` lines, a header row, the column count
    and the shape of the first line. The file name is accepted for callers that have one but
    decides nothing: Asterisk and FreeSWITCH both call their file Master.csv, and a ``.json``
    file may hold FreeSWITCH or Tarifa records.
    """
    guess = _json_guess(text)
    if guess:
        return guess
    lines = _first_lines(text)
    if not lines:
        return None
    sample = "\n".join(_first_lines(text, 50))
    if "ACC:" in sample and "method=" in sample:
        return "kamailio"
    header = {cell.strip().lower() for cell in _row(lines[0])}
    if "method" in header and header & {"callid", "call_id"}:
        return "kamailio"
    if {"call_id", "callee", "start_time", "duration"} <= header:
        return "tarifa"
    row = _row(lines[0])
    if (
        len(row) in (16, 17, 18)
        and _STAMP.fullmatch(row[9].strip())
        and row[14].strip().upper() in asterisk.DISPOSITIONS
    ):
        return "asterisk"
    if len(row) in (13, 15) and _STAMP.fullmatch(row[4].strip()) and _CAUSE.fullmatch(row[9].strip()):
        return "freeswitch-csv"
    if len(row) in (13, 15) and _UUID.fullmatch(row[10].strip()):
        return "freeswitch-csv"
    return None
