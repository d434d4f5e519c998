"""The canonical CDR: the one shape of a call record the rest of Tarifa sees.

Switch adapters (``tarifa.cdrs.formats``) turn Asterisk, FreeSWITCH, Kamailio and Tarifa's own
records into :class:`CanonicalCdr`; a line that cannot become one is a :class:`LineError`
(line number and reason) and nothing of it is stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

DISPOSITIONS: Final = ("answered", "busy", "no_answer", "failed", "cancelled")
DIRECTIONS: Final = ("outbound", "inbound")


_TEXT: Final = ("call_id", "callee", "switch", "leg", "caller", "source_ip", "sip_user", "trunk", "did",
                "extension", "account_code", "connection")


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
    disposition: str = "answered"
    sip_code: int | None = None
    direction: str = "outbound"
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
        if "\x00" in "".join([getattr(self, name) for name in _TEXT]):
            bad = next(name for name in _TEXT if "\x00" in getattr(self, name))
            raise ValueError(f"{bad} contains a NUL character")  # no database text column can hold one
        if self.duration < 0:
            raise ValueError(f"duration {self.duration} is negative")
        if self.start_time.tzinfo is None:
            raise ValueError("start_time must be timezone-aware")
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
