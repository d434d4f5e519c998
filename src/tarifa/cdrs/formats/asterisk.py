"""Asterisk ``cdr_csv`` (``/var/log/asterisk/cdr-csv/Master.csv``) -> CanonicalCdr.

One line per CDR, no header, in the fixed order of ``cdr_csv``::

    accountcode, src, dst, dcontext, clid, channel, dstchannel, lastapp, lastdata,
    start, answer, end, duration, billsec, disposition, amaflags[, uniqueid][, userfield]

16 columns by default; 17 with ``loguniqueid=yes``; 18 with ``loguniqueid=yes`` and
``loguserfield=yes`` (``[csv]`` section of ``cdr.conf``). A 17th column is read as the
uniqueid. Times are ``YYYY-MM-DD HH:MM:SS`` in the server's local time (``tz``) unless
``usegmtime=yes`` (then pass ``tz="UTC"``); ``answer`` is empty for an unanswered call.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from datetime import tzinfo
from typing import Final

from tarifa.cdrs.formats.tarifa import (
    Item,
    RecordError,
    build,
    ceil_seconds,
    csv_records,
    load_zone,
    optional_time,
    parse_time,
)
from tarifa.core.cdr import CanonicalCdr, Disposition, LineError

COLUMNS: Final = (
    "accountcode",
    "src",
    "dst",
    "dcontext",
    "clid",
    "channel",
    "dstchannel",
    "lastapp",
    "lastdata",
    "start",
    "answer",
    "end",
    "duration",
    "billsec",
    "disposition",
    "amaflags",
)
OPTIONAL_COLUMNS: Final = ("uniqueid", "userfield")

DISPOSITIONS: Final = {
    "ANSWERED": Disposition.ANSWERED,
    "NO ANSWER": Disposition.NO_ANSWER,
    "BUSY": Disposition.BUSY,
    "FAILED": Disposition.FAILED,
    "CONGESTION": Disposition.FAILED,
}

# "SIP/alice-0000000a", "PJSIP/alice-00000001": technology, peer/endpoint, unique hex suffix.
_SIP_CHANNEL = re.compile(r"^(?:SIP|PJSIP)/(?P<peer>.+)-[0-9a-fA-F]+$", re.IGNORECASE)
# The number in a caller id such as '"Alice" <1001>'.
_CLID_NUMBER = re.compile(r"<([^<>]*)>\s*$")


def parse(text: str, *, switch: str, tz: str = "UTC") -> Iterator[CanonicalCdr | LineError]:
    """Master.csv text -> one CanonicalCdr or LineError per non-blank line, in input order."""
    return _parse(text, switch, load_zone(tz))


def _parse(text: str, switch: str, zone: tzinfo) -> Iterator[Item]:
    return csv_records(text, lambda row: _record(row, switch, zone))


def sip_user_of(channel: str) -> str:
    """The SIP peer / PJSIP endpoint of a channel name (``PJSIP/alice-00000001`` -> ``alice``)."""
    match = _SIP_CHANNEL.match(channel.strip())
    return match.group("peer") if match else ""


def call_id_of(row: list[str]) -> str:
    """``sha1:`` and the SHA-1 of the record's cells: stable across re-imports of the same file."""
    digest = hashlib.sha1("\x1f".join(row).encode("utf-8")).hexdigest()
    return f"sha1:{digest}"


def _record(row: list[str], switch: str, zone: tzinfo) -> CanonicalCdr:
    if len(row) not in (16, 17, 18):
        raise RecordError(f"expected 16, 17 or 18 columns (Asterisk Master.csv), got {len(row)}")
    cells = dict(zip(COLUMNS + OPTIONAL_COLUMNS, (cell.strip() for cell in row), strict=False))
    disposition = DISPOSITIONS.get(cells["disposition"].upper())
    if disposition is None:
        raise RecordError(f"unknown disposition {cells['disposition']!r} (expected one of {', '.join(DISPOSITIONS)})")
    callee = cells["dst"]
    if not callee:
        raise RecordError("dst (the number called) is empty")
    start = parse_time(cells["start"], zone, "start")
    answer = optional_time(cells["answer"], zone, "answer", not_before=start)
    end = optional_time(cells["end"], zone, "end", not_before=answer or start)
    caller = cells["src"]
    if not caller:
        match = _CLID_NUMBER.search(cells["clid"])
        caller = match.group(1).strip() if match else ""
    return build(
        call_id=cells.get("uniqueid") or call_id_of(row),
        callee=callee,
        start_time=start,
        duration=ceil_seconds(cells["billsec"], "billsec"),
        switch=switch,
        caller=caller,
        connect_time=answer,
        end_time=end,
        disposition=disposition,
        sip_user=sip_user_of(cells["channel"]),
        account_code=cells["accountcode"],
    )
