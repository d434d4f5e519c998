"""The canonical CDR: the one shape of a call record the rest of Tarifa sees.

Switch adapters (``tarifa.cdrs.formats``) turn Asterisk, FreeSWITCH, Kamailio and Tarifa's own
records into :class:`CanonicalCdr`; a line that cannot become one is a :class:`LineError`
(line number and reason) and nothing of it is stored.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Final


class Disposition(StrEnum):
    """How a call ended (the Cdr model's ``disposition``)."""

    ANSWERED = "answered"
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    FAILED = "failed"
    CANCELLED = "cancelled"


class Direction(StrEnum):
    """Which way a call went (the Cdr model's ``direction``)."""

    OUTBOUND = "outbound"
    INBOUND = "inbound"


DISPOSITIONS: Final = tuple(Disposition)
DIRECTIONS: Final = tuple(Direction)
#: Longest billable duration of a call, in seconds: a week. Anything longer is a broken record
#: (a switch's counter gone wrong, an integer beyond 64 bits) and is refused with its reason.
MAX_DURATION: Final = 7 * 86400
#: The times a call can have. Far wider than any real call, and far enough from the ends of
#: ``datetime`` (years 1 and 9999) that time arithmetic on a record never overflows.
EARLIEST: Final = datetime(1800, 1, 1, tzinfo=UTC)
LATEST: Final = datetime(9000, 1, 1, tzinfo=UTC)

#: Longest value of each text field, in characters (the database columns' lengths).
FIELD_LIMITS: Final = {
    "switch": 64,
    "call_id": 255,
    "leg": 16,
    "caller": 64,
    "callee": 64,
    "connection": 100,
    "sip_user": 64,
    "trunk": 64,
    "did": 20,
    "extension": 20,
    "account_code": 64,
}

# C0 and C1 control characters (NUL included), DEL, and UTF-16 surrogates: a lone surrogate is
# what an invalid UTF-8 byte becomes when read with "surrogateescape", or half of an escaped
# JSON pair ("\ud800"). No database column can store one; a control character breaks exports.
_UNFIT: Final = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
#: The text fields a switch fills freely (checked by :func:`text_problems`).
FREE_TEXT: Final = (
    "call_id",
    "callee",
    "switch",
    "leg",
    "caller",
    "source_ip",
    "sip_user",
    "trunk",
    "did",
    "extension",
    "account_code",
    "connection",
)


def shown(value: object, limit: int = 60) -> str:
    """A refused value as written in a reason: its repr (control characters escaped), cut."""
    try:
        text = repr(value)
    except RecursionError:  # a deeply nested JSON value
        return f"a deeply nested {type(value).__name__}"
    return text if len(text) <= limit else text[:limit] + "..."


def text_problems(values: Mapping[str, object]) -> str | None:
    """Why a record's text is refused, or None: the first field (of :data:`FREE_TEXT`) with a
    :func:`text_problem`, else the first longer than its :data:`FIELD_LIMITS`."""
    texts = [v for name in FREE_TEXT if isinstance(v := values.get(name), str) and v]
    if _UNFIT.search("".join(texts)):
        return next(p for name in FREE_TEXT if isinstance(v := values.get(name), str) and (p := text_problem(name, v)))
    for name, limit in FIELD_LIMITS.items():
        value = values.get(name)
        if isinstance(value, str) and len(value) > limit:
            return too_long(name, value, limit)
    return None


def too_long(name: str, value: str, limit: int) -> str:
    return f"{name} is longer than {limit} characters: {shown(value)}"


def text_problem(name: str, value: str) -> str | None:
    """Why a CDR text field from outside is refused, or None: it holds a control character
    (XLSX cannot store one, and a CSV or a terminal shows garbage) or a lone surrogate (not
    text: no database column can store it). The check every CDR door applies (the formats'
    ``build``); naming field, value and rule."""
    bad = _UNFIT.search(value)
    if bad is None:
        return None
    char = bad.group()
    code = ord(char)
    if code == 0:
        what = "a NUL character"
    elif 0xDC80 <= code <= 0xDCFF:
        what = f"U+{code:04X}, invalid UTF-8 (byte 0x{code - 0xDC00:02X}) or a lone surrogate"
    elif 0xD800 <= code <= 0xDFFF:
        what = f"U+{code:04X}, a lone surrogate (half of a UTF-16 pair, not text)"
    else:
        what = f"the control character U+{code:04X}"
    return f"{name} contains {what}: {shown(value)} is refused (text must be valid Unicode without control characters)"


@dataclass(frozen=True, slots=True)
class CanonicalCdr:
    """One call leg as a switch reported it, before matching and rating.

    Identity: (switch, call_id, leg) is the idempotency key. ``duration`` is the billable
    (answered) seconds, already rounded up to a whole second. Times are aware UTC.
    The account identity fields are whatever the switch knows; matching picks the account.
    """

    call_id: str
    callee: str
    start_time: datetime
    duration: int
    switch: str = ""
    leg: str = "a"
    caller: str = ""
    connect_time: datetime | None = None
    end_time: datetime | None = None
    disposition: str = Disposition.ANSWERED
    sip_code: int | None = None
    direction: str = Direction.OUTBOUND
    source_ip: str = ""
    sip_user: str = ""
    trunk: str = ""
    did: str = ""
    extension: str = ""
    account_code: str = ""
    connection: str = ""

    def __post_init__(self) -> None:
        if not self.call_id:
            raise ValueError("call_id is missing")
        if "\x00" in "".join([getattr(self, name) for name in FREE_TEXT]):
            bad = next(name for name in FREE_TEXT if "\x00" in getattr(self, name))
            raise ValueError(f"{bad} contains a NUL character")  # no database text column can hold one
        if self.duration < 0:
            raise ValueError(f"duration {self.duration} is negative")
        if self.duration > MAX_DURATION:
            raise ValueError(f"duration {shown(self.duration)} is more than a week ({MAX_DURATION} seconds)")
        if self.start_time.tzinfo is None:
            raise ValueError("start_time must be timezone-aware")
        for name in ("start_time", "connect_time", "end_time"):
            moment = getattr(self, name)
            if moment is not None and not EARLIEST <= moment < LATEST:
                raise ValueError(
                    f"{name} {moment.isoformat()} is out of range (years {EARLIEST.year} to {LATEST.year - 1})"
                )
        if self.disposition not in DISPOSITIONS:
            raise ValueError(f"disposition {self.disposition!r} must be one of {', '.join(DISPOSITIONS)}")
        if self.direction not in DIRECTIONS:
            raise ValueError(f"direction {self.direction!r} must be one of {', '.join(DIRECTIONS)}")


@dataclass(frozen=True, slots=True)
class LineError:
    """A record that was refused: where it was and why. Nothing of it is stored."""

    line: int
    reason: str
    text: str = ""

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"
