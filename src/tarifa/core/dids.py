"""The DID inventory's rules: statuses and their transitions, quarantine, numbers, search patterns,
and the validation of an inventory file's rows.

Pure: no Django, no I/O. The services (``tarifa.dids.service``, ``tarifa.dids.imports``) read and
write the database and ask these functions what is allowed, so the admin, the CLI, the API and the
portal all follow one rule.

Why quarantine is evaluated on read: a released number becomes sellable again on a date, not on an
event. :func:`effective_status` says "available" for a quarantined number whose quarantine has
ended, and the inventory queries ask the same question (status quarantined and
``quarantine_until <= today``), so no timer or worker has to flip rows at midnight and two
processes can never disagree about it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Final

import phonenumbers


class DidState(StrEnum):
    """A DID's stored status (``tarifa.dids.choices.DidStatus`` holds the same values)."""

    AVAILABLE = "available"  # in stock, may be sold
    RESERVED = "reserved"  # held for a sale in progress (an order, an online sign-up)
    ASSIGNED = "assigned"  # on a customer's account
    PORTING = "porting"  # being ported in or out; not sellable until the port completes
    QUARANTINED = "quarantined"  # released; sellable again after quarantine_until
    DISABLED = "disabled"  # taken out of service by the operator


#: Which status may follow which. Releasing is -> quarantined, from any status a number on an
#: account can have (assigned, porting, disabled: a number that keeps its account while porting or
#: disabled can still be released); the end of a quarantine
#: is not a transition (read as available, :func:`effective_status`), but an operator may also end
#: it early (quarantined -> available).
TRANSITIONS: Final[Mapping[DidState, frozenset[DidState]]] = {
    DidState.AVAILABLE: frozenset({DidState.RESERVED, DidState.ASSIGNED, DidState.PORTING, DidState.DISABLED}),
    DidState.RESERVED: frozenset({DidState.AVAILABLE, DidState.ASSIGNED, DidState.DISABLED}),
    DidState.ASSIGNED: frozenset({DidState.QUARANTINED, DidState.PORTING, DidState.DISABLED}),
    DidState.PORTING: frozenset({DidState.AVAILABLE, DidState.ASSIGNED, DidState.QUARANTINED, DidState.DISABLED}),
    DidState.QUARANTINED: frozenset({DidState.AVAILABLE, DidState.RESERVED, DidState.ASSIGNED, DidState.DISABLED}),
    DidState.DISABLED: frozenset({DidState.AVAILABLE, DidState.ASSIGNED, DidState.QUARANTINED}),
}

#: Statuses from which a number may be assigned to an account (after :func:`effective_status`).
ASSIGNABLE: Final = frozenset({DidState.AVAILABLE, DidState.RESERVED})

#: Longest quarantine TARIFA_DID_QUARANTINE_DAYS may ask for (ten years).
QUARANTINE_DAYS_MAX: Final = 3650


#: The range of a DID's activation and release dates. The floor: no number was sold before it,
#: and an activation date of year 1 would make the next charges run bill two thousand years of
#: periods. The ceiling stays far from ``date.max``, so adding a quarantine or a billing period
#: never overflows (``9999-12-31`` crashed a release). Whether a date may be in the future is a
#: rule of its own, checked where it applies.
DID_DATE_MIN: Final = date(2000, 1, 1)
DID_DATE_MAX: Final = date(2999, 12, 31)


def did_date_problem(day: date) -> str | None:
    """Why ``day`` cannot be a DID's activation or release date, or ``None`` when it can."""
    if not DID_DATE_MIN <= day <= DID_DATE_MAX:
        return f"must be from {DID_DATE_MIN.isoformat()} to {DID_DATE_MAX.isoformat()}"
    return None


def effective_status(status: str, quarantine_until: date | None, today: date) -> DidState:
    """The status as the inventory shows it on ``today``: a quarantine that ended on or before
    today reads as available (no timer flips the row)."""
    state = DidState(status)
    if state is DidState.QUARANTINED and (quarantine_until is None or quarantine_until <= today):
        return DidState.AVAILABLE
    return state


def transition_problem(old: str, new: str) -> str | None:
    """Why ``old -> new`` is not allowed, or ``None`` when it is (same status is always fine)."""
    before, after = DidState(old), DidState(new)
    if before is after or after in TRANSITIONS[before]:
        return None
    allowed = ", ".join(sorted(s.value for s in TRANSITIONS[before]))
    return f"a DID that is {before.value} can only become {allowed}"


def quarantine_end(released_on: date, days: int) -> date:
    """The first day a released number is available again: ``released_on + days`` (0: at once)."""
    if not 0 <= days <= QUARANTINE_DAYS_MAX:
        raise ValueError(f"quarantine days {days} is refused: must be 0 to {QUARANTINE_DAYS_MAX}")
    try:
        return released_on + timedelta(days=days)
    except OverflowError:
        raise ValueError(f"release date {released_on.isoformat()} is refused: {did_date_problem(date.max)}") from None


def unavailable_reason(status: str, quarantine_until: date | None, today: date, holder: str = "") -> str | None:
    """Why a number cannot be sold now, in words a person can act on, or ``None`` when it can.

    ``holder`` names the account a number is on (assigned or disabled with an account)."""
    state = effective_status(status, quarantine_until, today)
    if state in ASSIGNABLE:
        return None
    if state is DidState.QUARANTINED:
        assert quarantine_until is not None  # effective_status reads an open quarantine as available
        return f"it is quarantined after release until {quarantine_until.isoformat()} (available from that day)"
    if state is DidState.ASSIGNED:
        return f"it is assigned to {holder}" if holder else "it is assigned to another account"
    if state is DidState.PORTING:
        return "it is being ported; it can be sold when the port completes"
    return "it is disabled by the operator"


#: The unratable reason of an inbound call dated before its DID's activation date.
NOT_ACTIVE_YET: Final = "did_not_active_yet"


def active_from(activation_date: date | None) -> datetime | None:
    """The first instant a DID's calls are its account's: the start (UTC) of its activation
    day; ``None``: no activation date, always."""
    return None if activation_date is None else datetime.combine(activation_date, time(0), tzinfo=UTC)


def active_on(activation_date: date | None, at: datetime) -> bool:
    """Whether a call at ``at`` to a DID activated on ``activation_date`` is its account's: a
    number is charged to an account from its activation date (UTC) on. A call dated earlier
    belongs to no one's service (the number may have been another customer's then), so it is
    left unrated with :data:`NOT_ACTIVE_YET`, never charged to the current owner."""
    start = active_from(activation_date)
    return start is None or at >= start


# --- numbers ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NumberParts:
    """A valid number split the way the inventory searches it."""

    number: str  # E.164 digits without '+'
    country: str  # ISO 3166 alpha-2, "" when libphonenumber names none (e.g. a non-geographic code)
    area_code: str  # "" where the numbering plan has none
    local_number: str  # the digits after the country code and the area code


class NumberRefused(ValueError):
    """A text that is not a valid telephone number; the message is the rule it breaks."""


_TYPED_NUMBER: Final = re.compile(r"^\+?[0-9 ()./-]{4,30}$")


def parse_number(text: str) -> NumberParts:
    """A DID as typed (``+1 212 555 1234``, ``12125551234``) -> its parts; numbers are always
    written in international form (with or without ``+``), since an inventory holds numbers of
    many countries. Validity and the area code come from libphonenumber: the area code is the
    geographic area code, else the national destination code (a mobile or toll-free code), else
    none."""
    raw = text.strip()
    if not _TYPED_NUMBER.match(raw):
        raise NumberRefused("must be an international number: digits with an optional leading +, e.g. +12125551234")
    digits = re.sub(r"[^0-9]", "", raw)
    if not 4 <= len(digits) <= 15:
        raise NumberRefused("must be 4 to 15 digits (E.164)")
    try:
        parsed = phonenumbers.parse("+" + digits)
    except phonenumbers.NumberParseException:
        raise NumberRefused("must start with a country code") from None
    if not phonenumbers.is_valid_number(parsed):
        code = parsed.country_code or 0
        region = phonenumbers.region_code_for_number(parsed) or phonenumbers.region_code_for_country_code(code)
        read_as = f"+{code}" + (f" ({region})" if region not in ("", "ZZ", "001") else "")
        raise NumberRefused(
            f"is not a valid number in its country's numbering plan (libphonenumber); read as country code "
            f"{read_as}: numbers are international (E.164), the country code first, e.g. +12125551234"
        )
    region = phonenumbers.region_code_for_number(parsed) or ""
    national = phonenumbers.national_significant_number(parsed)
    length = phonenumbers.length_of_geographical_area_code(parsed) or phonenumbers.length_of_national_destination_code(
        parsed
    )
    return NumberParts(
        number=digits,
        country="" if region in ("", "ZZ", "001") else region,
        area_code=national[:length],
        local_number=national[length:],
    )


def parts_of_stored(number: str) -> NumberParts:
    """Parts of a stored number, without refusing an old one libphonenumber no longer accepts
    (it then keeps only what can be told: its country when known)."""
    try:
        return parse_number(number)
    except NumberRefused:
        try:
            region = phonenumbers.region_code_for_number(phonenumbers.parse("+" + number)) or ""
        except phonenumbers.NumberParseException:
            region = ""
        return NumberParts(number, "" if region in ("ZZ", "001") else region, "", "")


_PATTERN: Final = re.compile(r"^[0-9*?]{1,15}$")


def pattern_regex(pattern: str) -> str:
    """A search pattern on the local number (after country and area code) as an anchored regular
    expression both SQLite and PostgreSQL run: ``*`` any digits, ``?`` one digit, digits as
    themselves. ``555*`` finds 555-xxxx; ``*1234`` numbers ending in 1234."""
    if not _PATTERN.match(pattern):
        raise ValueError(
            f"pattern {pattern!r} is refused: must be 1 to 15 of the digits 0-9, * (any digits) and ? (one digit)"
        )
    return "^" + pattern.replace("*", "[0-9]*").replace("?", "[0-9]") + "$"


# --- inventory files ----------------------------------------------------------------------------

#: The columns of an inventory file (CSV or XLSX), first row; only ``number`` is required.
IMPORT_COLUMNS: Final = ("number", "vendor", "monthly_cost", "plan", "status")
#: What a file may set as a number's status: assignment goes through ``tarifa did assign``.
IMPORT_STATUSES: Final = (DidState.AVAILABLE, DidState.RESERVED, DidState.PORTING, DidState.DISABLED)
#: Numbers one inventory file may hold: a carrier's block order is thousands; a million rows held a
#: worker for minutes and 1.4 GB.
IMPORT_ROWS_MAX: Final = 100_000
#: Errors listed of a refused file; the rest are counted ("and 4,900 more"), so a file of bad rows
#: never makes a page of megabytes.
IMPORT_ERRORS_LISTED: Final = 100
#: The largest monthly cost a file may give (the money columns' limit).
MONTHLY_COST_MAX: Final = Decimal("999999.99")
_MONEY: Final = re.compile(r"^[0-9]{1,9}(?:\.[0-9]{1,6})?$")


@dataclass(frozen=True, slots=True)
class RowError:
    """One refused value of an inventory file: file, row (line 1 is the header), field, value, rule."""

    file: str
    line: int
    field: str
    value: str
    rule: str

    def __str__(self) -> str:
        shown = self.value if len(self.value) <= 80 else self.value[:80] + "..."
        where = f"{self.file} line {self.line}" if self.line else self.file
        return f"{where}: {self.field} {shown!r} is refused: {self.rule}"


@dataclass(frozen=True, slots=True)
class InventoryRow:
    """A valid row: a number to add to the inventory."""

    line: int
    parts: NumberParts
    vendor: str  # a known vendor's name, or ""
    monthly_cost: Decimal
    plan: str  # a known DID plan's name, or ""
    status: DidState


def parse_inventory(
    filename: str,
    header: Sequence[str],
    rows: Iterable[tuple[int, Sequence[str]]],
    *,
    vendors: Iterable[str],
    plans: Iterable[str],
    stored: Iterable[str],
) -> tuple[list[InventoryRow], list[RowError]]:
    """Validate every row (never stopping at the first error): the valid rows and every error.

    ``vendors`` and ``plans`` are the known names; ``stored`` the numbers already in the inventory
    (at least those of the file). A number twice in the file is refused on its second line,
    naming the first."""
    errors: list[RowError] = []
    names = [h.strip().lower() for h in header]
    for position, name in enumerate(names, start=1):
        if name not in IMPORT_COLUMNS:
            errors.append(
                RowError(
                    filename,
                    1,
                    f"column {position}",
                    name,
                    f"unknown column; the columns are {', '.join(IMPORT_COLUMNS)}",
                )
            )
        elif names.index(name) != position - 1:
            errors.append(RowError(filename, 1, f"column {position}", name, "appears twice"))
    if "number" not in names:
        errors.append(RowError(filename, 1, "number", "", "the column number is required"))
    if errors:
        return [], errors
    known_vendors, known_plans, in_stock = set(vendors), set(plans), set(stored)
    seen: dict[str, int] = {}
    good: list[InventoryRow] = []
    for line, cells in rows:
        if not any(str(c).strip() for c in cells):
            continue  # blank lines (spreadsheets keep some) are not rows
        if len(cells) > len(names):
            errors.append(
                RowError(
                    filename,
                    line,
                    f"column {len(names) + 1}",
                    str(cells[len(names)]),
                    f"the row has {len(cells)} cells; the header names {len(names)} columns",
                )
            )
            continue
        value = {name: (str(cells[i]).strip() if i < len(cells) else "") for i, name in enumerate(names)}
        before = len(errors)

        def refuse(field: str, rule: str, *, _line: int = line, _value: dict[str, str] = value) -> None:
            errors.append(RowError(filename, _line, field, _value.get(field, ""), rule))

        parts: NumberParts | None = None
        if not value["number"]:
            refuse("number", "is required")
        else:
            try:
                parts = parse_number(value["number"])
            except NumberRefused as exc:
                refuse("number", str(exc))
        if parts is not None:
            if parts.number in seen:
                refuse("number", f"is a duplicate: the same number is on line {seen[parts.number]}")
            elif parts.number in in_stock:
                refuse("number", "is already in the inventory")
            seen.setdefault(parts.number, line)
        vendor = value.get("vendor", "")
        if vendor and vendor not in known_vendors:
            refuse("vendor", "no vendor has this name")
        plan = value.get("plan", "")
        if plan and plan not in known_plans:
            refuse("plan", "no DID plan has this name")
        cost = Decimal(0)
        raw_cost = value.get("monthly_cost", "")
        if raw_cost:
            if not _MONEY.match(raw_cost):
                refuse(
                    "monthly_cost", "must be an amount such as 0.35 (plain digits, at most 6 decimals, not negative)"
                )
            else:
                try:
                    cost = Decimal(raw_cost)
                except InvalidOperation:  # pragma: no cover - the pattern admits only decimals
                    refuse("monthly_cost", "must be an amount such as 0.35")
                if cost > MONTHLY_COST_MAX:
                    refuse("monthly_cost", f"must be at most {MONTHLY_COST_MAX}")
        raw_status = value.get("status", "").lower() or DidState.AVAILABLE.value
        status = DidState.AVAILABLE
        if raw_status not in {s.value for s in IMPORT_STATUSES}:
            refuse(
                "status",
                "must be one of "
                + ", ".join(s.value for s in IMPORT_STATUSES)
                + " (assign numbers with tarifa did assign)",
            )
        else:
            status = DidState(raw_status)
        if len(errors) == before and parts is not None:
            good.append(InventoryRow(line, parts, vendor, cost, plan, status))
    return good, errors


__all__ = [
    "ASSIGNABLE",
    "DID_DATE_MAX",
    "DID_DATE_MIN",
    "IMPORT_COLUMNS",
    "IMPORT_ERRORS_LISTED",
    "IMPORT_ROWS_MAX",
    "IMPORT_STATUSES",
    "NOT_ACTIVE_YET",
    "QUARANTINE_DAYS_MAX",
    "TRANSITIONS",
    "DidState",
    "InventoryRow",
    "NumberParts",
    "NumberRefused",
    "RowError",
    "active_from",
    "active_on",
    "did_date_problem",
    "effective_status",
    "parse_inventory",
    "parse_number",
    "parts_of_stored",
    "pattern_regex",
    "quarantine_end",
    "transition_problem",
    "unavailable_reason",
]
