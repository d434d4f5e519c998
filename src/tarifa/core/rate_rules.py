"""The limits of a rate's terms, in one table read by every door a rate comes in by.

Why one table: a rate arrives by a deck (``tarifa deck import``, the back office's deck page,
``tarifa rate``), by the back-office form, and by the API to come. Each door must refuse the same
values with the same words, so the deck parser (:mod:`tarifa.core.deck`), the model fields of
``RateFields`` (``tarifa.rating.models``, which the admin form is built from) all read the limits
here instead of restating them. ``tests/unit/core/test_rate_rules.py`` and
``tests/integration/test_rate_limits.py`` feed the same values through each door.

Money and percentages are stored as a signed 64-bit count of ``10**-places`` units
(``tarifa.fields.ExactDecimalField``), so the largest storable amount is
``(2**63 - 1) * 10**-places``: that column limit is the upper bound of every amount here, so a
deck can never hold a price the database cannot store.

Pure: no Django, no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

__all__ = [
    "AMOUNTS",
    "DESTINATION",
    "MONEY_PLACES",
    "PERCENT_PLACES",
    "PERIOD",
    "PREFIX_DIGITS",
    "UNITS_MAX",
    "WHOLES",
    "Amount",
    "Text",
    "Whole",
    "column_max",
    "control_character",
    "range_rule",
]

MONEY_PLACES: Final = 6
PERCENT_PLACES: Final = 4
#: Money columns hold a signed 64-bit integer count of 10**-places units.
UNITS_MAX: Final = 2**63 - 1
#: A prefix is 1 to 15 digits (E.164 numbers have at most 15).
PREFIX_DIGITS: Final = (1, 15)
_DAY: Final = 86400
#: Unicode category Cc (C0 controls, DEL, C1 controls) and Cs (surrogates), as one regex: fast
#: enough to run over every cell of a 60,000-row deck.
_CONTROL: Final = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def column_max(places: int) -> Decimal:
    """The largest amount a money column with ``places`` decimals can hold: 9223372036854.775807 for 6."""
    return Decimal(UNITS_MAX).scaleb(-places)


def range_rule(low: int | Decimal | None, high: int | Decimal | None, unit: str = "") -> str:
    """The words of an inclusive range, the same as ``tarifa.validators.Between`` says them."""
    suffix = f" {unit}" if unit else ""
    if high is None:
        return f"must be at least {low}{suffix}"
    if low is None:
        return f"must be at most {high}{suffix}"
    return f"must be between {low} and {high}{suffix}"


def control_character(value: str) -> str | None:
    """The rule a text with a control character breaks, naming the first one; ``None`` if clean.

    Control characters (C0, DEL, C1) and lone surrogates have no meaning in a destination name
    or a period, make XLSX exports fail (XML cannot hold them) and PostgreSQL refuses NUL.
    """
    found = _CONTROL.search(value)
    if found is None:
        return None
    return f"must not contain control characters (U+{ord(found.group()):04X} at position {found.start() + 1})"


@dataclass(frozen=True, slots=True)
class Amount:
    """A money amount or percentage: ``low <= value <= high`` with at most ``places`` decimals."""

    name: str
    label: str
    low: Decimal
    high: Decimal
    places: int
    unit: str = ""

    @property
    def rule(self) -> str:
        return range_rule(self.low, self.high, self.unit)

    def check(self, value: Decimal) -> str | None:
        """The rule ``value`` breaks, or ``None``."""
        if not value.is_finite():
            return "must be a finite decimal number"
        if not self.low <= value <= self.high:
            return self.rule
        exponent = value.as_tuple().exponent
        if isinstance(exponent, int) and -exponent > self.places:
            return f"at most {self.places} decimal places"
        return None


@dataclass(frozen=True, slots=True)
class Whole:
    """A whole number (seconds) with ``low <= value <= high``."""

    name: str
    label: str
    low: int
    high: int
    unit: str = ""
    default: int = 0

    @property
    def rule(self) -> str:
        return range_rule(self.low, self.high, self.unit)

    def check(self, value: int) -> str | None:
        return None if self.low <= value <= self.high else self.rule


@dataclass(frozen=True, slots=True)
class Text:
    """Free text: at most ``max_length`` characters, no control characters."""

    name: str
    label: str
    max_length: int

    def check(self, value: str) -> str | None:
        if len(value) > self.max_length:
            return f"at most {self.max_length} characters (it has {len(value)})"
        return control_character(value)


def _money(name: str, label: str) -> Amount:
    return Amount(name, label, Decimal(0), column_max(MONEY_PLACES), MONEY_PLACES)


AMOUNTS: Final[dict[str, Amount]] = {
    a.name: a
    for a in (
        _money("price_1", "Price first interval (per minute)"),
        _money("price_n", "Price next intervals (per minute)"),
        _money("connect_fee", "Connect fee"),
        Amount("post_call_surcharge", "Post-call surcharge (%)", Decimal(0), Decimal(10000), PERCENT_PLACES, "%"),
        _money("min_charge", "Minimum charge"),
    )
}

WHOLES: Final[dict[str, Whole]] = {
    w.name: w
    for w in (
        Whole("interval_1", "First interval", 1, _DAY, "seconds", 60),
        Whole("interval_n", "Next interval", 1, _DAY, "seconds", 60),
        Whole("free_seconds", "Free seconds", 0, _DAY, "", 0),
        Whole("grace_period", "Grace period", 0, _DAY, "seconds", 0),
    )
}

DESTINATION: Final = Text("destination", "destination", 100)
PERIOD: Final = Text("period", "time period", 100)
