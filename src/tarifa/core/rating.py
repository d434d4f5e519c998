"""The reference rating engine: which rate applies to a call, and what the call costs.

This module is the definition of "correct" (DESIGN section 3). It is exact: money is
``Decimal`` on the way in and out, and the arithmetic in between is done on integers
(price x seconds is a rational number with denominator 60, and ``Decimal`` division
would round it long before the one rounding the design allows). Every other pricing path
(the NumPy batch path in :mod:`tarifa.core.array_rating`, SQL, caches) must agree with it
to the last digit, and the tests check that they do.

Cost of an answered call of ``d`` whole seconds::

    if d == 0 or d <= grace_period:  cost = 0
    b      = max(0, d - free_seconds)
    billed = 0 | interval_1 | interval_1 + ceil((b - interval_1) / interval_n) * interval_n
    amount = connect_fee + price_1 * min(billed, interval_1) / 60
                         + price_n * max(0, billed - interval_1) / 60
    amount = max(amount, min_charge)
    amount = amount * (1 + post_call_surcharge / 100)
    cost   = round(amount, decimals, rounding)        # once, at the very end
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_HALF_UP, ROUND_UP, Decimal, InvalidOperation
from enum import StrEnum
from typing import Final, NamedTuple

from tarifa.core.numbering import MAX_DIGITS, InvalidNumber, normalize
from tarifa.core.periods import Period, local_time, parse_period, zone

__all__ = [
    "MAX_DECIMALS",
    "RateEntry",
    "RateTable",
    "RateTerms",
    "RatingResult",
    "RatingStatus",
    "Rounding",
    "UnratedReason",
    "billed_seconds",
    "call_cost",
    "cost_units",
    "duration_from_seconds",
    "max_duration",
    "quantize",
    "rate_call",
]

MAX_DECIMALS: Final = 12
_POW10: Final[tuple[int, ...]] = tuple(10**k for k in range(MAX_DECIMALS + 1))
_ZERO: Final = Decimal(0)


class Rounding(StrEnum):
    """How the single final rounding of a call cost goes (for non-negative amounts)."""

    HALF_UP = "half_up"  # 0.125 -> 0.13, 0.124 -> 0.12
    UP = "up"  # any remainder rounds up: 0.121 -> 0.13 (away from zero)
    DOWN = "down"  # any remainder is dropped: 0.129 -> 0.12 (towards zero)


_UP: Final = Rounding.UP
_HALF_UP: Final = Rounding.HALF_UP

_DECIMAL_ROUNDING: Final = {
    Rounding.HALF_UP: ROUND_HALF_UP,
    Rounding.UP: ROUND_UP,
    Rounding.DOWN: ROUND_DOWN,
}


class RatingStatus(StrEnum):
    """Outcome of rating one call, and a stored CDR's rating status (``PENDING`` until rated:
    never an outcome of :func:`rate_call`)."""

    PENDING = "pending"
    RATED = "rated"
    UNRATED = "unrated"  # kept with a reason, never dropped, re-ratable later
    FORBIDDEN = "forbidden"  # the matching rate blocks the destination


class UnratedReason(StrEnum):
    """Why a call could not be rated."""

    NO_RATE = "no_rate"
    INVALID_NUMBER = "invalid_number"


_RATED: Final = RatingStatus.RATED


# ---------------------------------------------------------------------------------------
# Validation helpers


def _money(name: str, value: object) -> Decimal:
    """Coerce a money value to a finite, non-negative Decimal; floats are refused."""
    if isinstance(value, (bool, float)):
        raise TypeError(f"{name} must be a Decimal, int or str (never float), got {value!r}")
    if isinstance(value, Decimal):
        dec = value
    elif isinstance(value, (int, str)):
        try:
            dec = Decimal(value)
        except InvalidOperation:
            raise ValueError(f"{name}: {value!r} is not a number") from None
    else:
        raise TypeError(f"{name} must be a Decimal, int or str, got {type(value).__name__}")
    if not dec.is_finite() or dec < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return dec


def _whole(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def _check_decimals(decimals: int) -> None:
    if isinstance(decimals, bool) or not isinstance(decimals, int) or not 0 <= decimals <= MAX_DECIMALS:
        raise ValueError(f"decimals must be an int from 0 to {MAX_DECIMALS}, got {decimals!r}")


def _check_rounding(rounding: str) -> None:
    if rounding not in _DECIMAL_ROUNDING:
        raise ValueError(f"rounding must be one of half_up, up, down; got {rounding!r}")


def _ratio(value: Decimal) -> tuple[int, int]:
    """Exact (numerator, 10**k denominator) of a finite Decimal."""
    sign, digits, exp = value.as_tuple()
    assert isinstance(exp, int)
    num = int("".join(map(str, digits))) if digits else 0
    if sign:
        num = -num
    if exp >= 0:
        return num * 10**exp, 1
    return num, 10**-exp


# ---------------------------------------------------------------------------------------
# Terms and cost


@dataclass(frozen=True, slots=True)
class RateTerms:
    """The prices and billing increments of one rate (customer or vendor side).

    Money fields accept ``Decimal``, ``int`` or ``str`` and are stored as ``Decimal``;
    ``float`` is refused because a binary fraction is not the price the operator typed.
    """

    price_1: Decimal
    price_n: Decimal
    interval_1: int = 60
    interval_n: int = 60
    connect_fee: Decimal = _ZERO
    free_seconds: int = 0
    grace_period: int = 0
    post_call_surcharge: Decimal = _ZERO  # percent, e.g. Decimal("10") adds 10 %
    min_charge: Decimal = _ZERO
    forbidden: bool = False
    # Integer form of the money fields, computed once (see _units):
    # (P1, PN, CF*60, MC*60, SN, DEN) with amount*(1+s/100) = A*SN/DEN.
    _exact: tuple[int, int, int, int, int, int] = field(
        init=False, repr=False, compare=False, hash=False, default=(0, 0, 0, 0, 0, 1)
    )

    def __post_init__(self) -> None:
        setter = object.__setattr__
        for name in ("price_1", "price_n", "connect_fee", "post_call_surcharge", "min_charge"):
            setter(self, name, _money(name, getattr(self, name)))
        _whole("interval_1", self.interval_1, 1)
        _whole("interval_n", self.interval_n, 1)
        _whole("free_seconds", self.free_seconds, 0)
        _whole("grace_period", self.grace_period, 0)
        if not isinstance(self.forbidden, bool):
            raise TypeError(f"forbidden must be a bool, got {self.forbidden!r}")
        ratios = [_ratio(v) for v in (self.price_1, self.price_n, self.connect_fee, self.min_charge)]
        scale = max(d for _, d in ratios)
        p1, pn, cf, mc = (n * (scale // d) for n, d in ratios)
        s_num, s_den = _ratio(self.post_call_surcharge)
        sn, sd = 100 * s_den + s_num, 100 * s_den  # (100 + s) / 100
        g = math.gcd(sn, sd)
        setter(self, "_exact", (p1, pn, cf * 60, mc * 60, sn // g, 60 * scale * (sd // g)))


def billed_seconds(terms: RateTerms, duration: int) -> int:
    """Seconds the call is charged for after grace, free seconds and interval rounding."""
    if duration <= 0 or duration <= terms.grace_period:
        return 0
    b = duration - terms.free_seconds
    if b <= 0:
        return 0
    i1 = terms.interval_1
    if b <= i1:
        return i1
    i_n = terms.interval_n
    return i1 + -(-(b - i1) // i_n) * i_n


def cost_units(terms: RateTerms, duration: int, decimals: int, rounding: str) -> int:
    """The call cost as an integer count of ``10**-decimals`` currency units.

    This is the exact core of :func:`call_cost`: ``A * SN * 10**decimals / DEN`` followed by
    one integer rounding, where ``A`` is the amount times 60 in the rate's own decimal scale.
    """
    if duration <= 0 or duration <= terms.grace_period:
        return 0
    return _units(terms, billed_seconds(terms, duration), decimals, rounding)


def _units(terms: RateTerms, billed: int, decimals: int, rounding: str) -> int:
    """Cost units of a billable call (past grace) that is charged ``billed`` seconds."""
    p1, pn, cf60, mc60, sn, den = terms._exact
    first = billed if billed < terms.interval_1 else terms.interval_1
    amount = cf60 + p1 * first + pn * (billed - first)
    if amount < mc60:
        amount = mc60
    q, r = divmod(amount * sn * _POW10[decimals], den)
    if r and (rounding == _UP or (rounding == _HALF_UP and 2 * r >= den)):
        q += 1
    return q


def call_cost(terms: RateTerms, duration_seconds: int, decimals: int, rounding: str) -> Decimal:
    """Exact cost of an answered call of ``duration_seconds`` (DESIGN section 3).

    The result has exactly ``decimals`` places. ``terms.forbidden`` is not looked at here:
    blocking is a decision of :func:`rate_call` and of call authorisation, not a price.
    """
    _check_decimals(decimals)
    _check_rounding(rounding)
    if isinstance(duration_seconds, bool) or not isinstance(duration_seconds, int):
        raise TypeError(f"duration_seconds must be an int (see duration_from_seconds), got {duration_seconds!r}")
    if duration_seconds < 0:
        raise ValueError(f"duration_seconds must be >= 0, got {duration_seconds}")
    return Decimal(cost_units(terms, duration_seconds, decimals, rounding)).scaleb(-decimals)


def quantize(amount: Decimal, decimals: int, rounding: str) -> Decimal:
    """Round a Decimal amount to ``decimals`` places with a tariff rounding mode."""
    _check_decimals(decimals)
    _check_rounding(rounding)
    return amount.quantize(Decimal(1).scaleb(-decimals), rounding=_DECIMAL_ROUNDING[Rounding(rounding)])


def duration_from_seconds(value: int | Decimal | str | float) -> int:
    """Whole seconds of a CDR duration; a fraction rounds *up* (1.2 s is billed as 2 s).

    Accepts ``int``, ``Decimal`` and numeric ``str``; a ``float`` is read through its
    shortest ``repr`` so ``1.1`` means 1.1 and not 1.100000000000000088817841970012523.
    """
    if isinstance(value, bool):
        raise TypeError(f"duration must be a number, got {value!r}")
    if isinstance(value, int):
        seconds = value
    else:
        if isinstance(value, float):
            text: object = repr(value)
        elif isinstance(value, (str, Decimal)):
            text = value.strip() if isinstance(value, str) else value
        else:
            raise TypeError(f"duration must be int, Decimal or str, got {type(value).__name__}")
        try:
            dec = Decimal(text)  # type: ignore[arg-type]
        except InvalidOperation:
            raise ValueError(f"duration {value!r} is not a number") from None
        if not dec.is_finite() or dec < 0:
            raise ValueError(f"duration must be a finite number >= 0 seconds, got {value!r}")
        seconds = int(dec.to_integral_value(rounding=ROUND_CEILING))
    if seconds < 0:
        raise ValueError(f"duration must be >= 0 seconds, got {value!r}")
    return seconds


def max_duration(terms: RateTerms, available: Decimal, decimals: int, rounding: str, cap: int) -> int:
    """Longest call (seconds, <= ``cap``) whose cost is <= ``available`` funds.

    Returns 0 when the shortest chargeable call is already unaffordable (or the rate is
    forbidden, or ``cap`` is 0): the caller refuses the call as insufficient funds.
    Cost is non-decreasing in duration, so a binary search over ``[grace + 1, cap]``
    needs about log2(cap) evaluations of the integer cost function.
    """
    _check_decimals(decimals)
    _check_rounding(rounding)
    _whole("cap", cap, 0)
    if isinstance(available, (float, bool)):
        raise TypeError(f"available must be a Decimal, int or str (never float), got {available!r}")
    try:
        avail = Decimal(available)
    except InvalidOperation:
        raise ValueError(f"available: {available!r} is not a number") from None
    if not avail.is_finite():
        raise ValueError(f"available must be a finite amount, got {available!r}")
    if terms.forbidden or cap == 0:
        return 0
    # A cost of q units fits iff q <= floor(available * 10**decimals).
    num, den = _ratio(avail)
    budget = (num * _POW10[decimals]) // den
    lo = min(terms.grace_period + 1, cap)
    if cost_units(terms, lo, decimals, rounding) > budget:
        return 0
    if cost_units(terms, cap, decimals, rounding) <= budget:
        return cap
    good, bad = lo, cap  # invariant: cost(good) <= budget < cost(bad)
    while bad - good > 1:
        mid = (good + bad) // 2
        if cost_units(terms, mid, decimals, rounding) <= budget:
            good = mid
        else:
            bad = mid
    return good


# ---------------------------------------------------------------------------------------
# Rate selection

_BEGINNING_OF_TIME: Final = datetime.min.replace(tzinfo=UTC)


def _aware(name: str, value: datetime | None) -> None:
    if value is not None and (value.tzinfo is None or value.tzinfo.utcoffset(value) is None):
        raise ValueError(f"{name} must be timezone-aware, got naive {value.isoformat()}")


@dataclass(frozen=True, slots=True)
class RateEntry:
    """One prefix of a tariff (or Destination Set) with its terms and validity.

    ``effective_to`` is exclusive; ``None`` bounds are open. ``period`` restricts the
    rate to a time-of-day/day-of-week slot in the tariff's time zone (a period text is
    parsed on construction; the always-period is stored as ``None``).
    """

    prefix: str
    destination: str
    terms: RateTerms
    effective_from: datetime | None = None
    effective_to: datetime | None = None
    period: Period | None = None

    def __post_init__(self) -> None:
        if not (
            isinstance(self.prefix, str)
            and 0 < len(self.prefix) <= MAX_DIGITS
            and self.prefix.isascii()
            and self.prefix.isdigit()
        ):
            raise ValueError(f"prefix must be 1-{MAX_DIGITS} digits, got {self.prefix!r}")
        _aware("effective_from", self.effective_from)
        _aware("effective_to", self.effective_to)
        if (
            self.effective_from is not None
            and self.effective_to is not None
            and self.effective_to <= self.effective_from
        ):
            raise ValueError(
                f"effective_to {self.effective_to.isoformat()} must be after "
                f"effective_from {self.effective_from.isoformat()} (prefix {self.prefix})"
            )
        period: object = self.period
        if isinstance(period, str):
            period = parse_period(period)
        if isinstance(period, Period) and period.is_always:
            period = None
        if period is not None and not isinstance(period, Period):
            raise TypeError(f"period must be a Period, str or None, got {type(period).__name__}")
        object.__setattr__(self, "period", period)

    def is_effective(self, at: datetime) -> bool:
        """``effective_from <= at < effective_to`` with open bounds for ``None``."""
        return (self.effective_from is None or self.effective_from <= at) and (
            self.effective_to is None or at < self.effective_to
        )


class RateTable:
    """A tariff's rates indexed by prefix for longest-prefix lookup in O(15) dict probes.

    Among the versions of one prefix the latest ``effective_from`` that is effective at
    the call time (and whose period contains it) wins; at equal ``effective_from`` a rate
    with a period is preferred to one without (peak beats the all-day rate), then the
    order given. If no version of a prefix applies, the next shorter prefix is tried.
    """

    __slots__ = ("_entries", "_has_periods", "_index", "_lengths", "_tz_name")

    def __init__(self, entries: Iterable[RateEntry], tz_name: str = "UTC") -> None:
        zone(tz_name)  # fail early on an unknown time zone
        self._tz_name = tz_name
        self._entries: tuple[RateEntry, ...] = tuple(entries)
        groups: dict[str, list[tuple[int, RateEntry]]] = {}
        for order, entry in enumerate(self._entries):
            if not isinstance(entry, RateEntry):
                raise TypeError(f"expected RateEntry, got {type(entry).__name__}")
            groups.setdefault(entry.prefix, []).append((order, entry))

        def rank(item: tuple[int, RateEntry]) -> tuple[datetime, int, int]:
            order, e = item
            return (e.effective_from or _BEGINNING_OF_TIME, e.period is not None, -order)

        self._index: dict[str, tuple[RateEntry, ...]] = {
            prefix: tuple(e for _, e in sorted(items, key=rank, reverse=True)) for prefix, items in groups.items()
        }
        self._lengths: tuple[int, ...] = tuple(sorted({len(p) for p in self._index}, reverse=True))
        self._has_periods = any(e.period is not None for e in self._entries)

    @property
    def tz_name(self) -> str:
        """Time zone in which rate periods are evaluated."""
        return self._tz_name

    @property
    def entries(self) -> tuple[RateEntry, ...]:
        """All entries, in the order given."""
        return self._entries

    @property
    def has_periods(self) -> bool:
        """Whether any entry is restricted to a time period."""
        return self._has_periods

    def versions(self, prefix: str) -> tuple[RateEntry, ...]:
        """All versions of one prefix, in the order they are tried."""
        return self._index.get(prefix, ())

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[RateEntry]:
        return iter(self._entries)

    def find(self, number_digits: str, at: datetime) -> RateEntry | None:
        """The rate applying to ``number_digits`` at aware instant ``at``, or ``None``."""
        if at.tzinfo is None:
            raise ValueError(f"call time must be timezone-aware, got naive {at.isoformat()}")
        index = self._index
        n = len(number_digits)
        local: datetime | None = None
        for length in self._lengths:
            if length > n:
                continue
            versions = index.get(number_digits[:length])
            if versions is None:
                continue
            for entry in versions:
                if entry.effective_from is not None and at < entry.effective_from:
                    continue
                if entry.effective_to is not None and at >= entry.effective_to:
                    continue
                if entry.period is not None:
                    if local is None:
                        local = local_time(at, self._tz_name)
                    if not entry.period.contains(local):
                        continue
                return entry
        return None


class RatingResult(NamedTuple):
    """What rating one call produced; unrated and forbidden calls carry no cost.

    A NamedTuple rather than a frozen dataclass: equally immutable, and about five times
    cheaper to build, which shows when every CDR of a batch makes one.
    """

    status: RatingStatus
    number: str
    duration: int
    billed_seconds: int = 0
    cost: Decimal | None = None
    prefix: str | None = None
    destination: str | None = None
    reason: UnratedReason | None = None
    detail: str | None = None
    entry: RateEntry | None = None


def rate_call(
    table: RateTable,
    number: str,
    connect_time: datetime,
    duration: int | Decimal | str,
    decimals: int,
    rounding: str,
    *,
    dialing_mode: str | None = None,
) -> RatingResult:
    """Rate one call: normalise, find the rate, price it.

    ``number`` is E.164 digits unless ``dialing_mode`` is given, in which case it is first
    normalised with :func:`tarifa.core.numbering.normalize`. Bad numbers and missing rates
    give an ``unrated`` result with a reason instead of an exception, because a CDR must
    be kept and re-rated later, never dropped.
    """
    _check_decimals(decimals)
    _check_rounding(rounding)
    seconds = duration if type(duration) is int and duration >= 0 else duration_from_seconds(duration)
    if dialing_mode is not None:
        try:
            digits = normalize(number, dialing_mode)
        except InvalidNumber as exc:
            return RatingResult(
                RatingStatus.UNRATED, number, seconds, reason=UnratedReason.INVALID_NUMBER, detail=exc.reason
            )
    else:
        digits = number
        if not (0 < len(digits) <= MAX_DIGITS and digits.isdigit() and digits.isascii() and digits[0] != "0"):
            return RatingResult(
                RatingStatus.UNRATED,
                number,
                seconds,
                reason=UnratedReason.INVALID_NUMBER,
                detail="expected 1-15 digits not starting with 0",
            )
    entry = table.find(digits, connect_time)
    if entry is None:
        return RatingResult(
            RatingStatus.UNRATED,
            digits,
            seconds,
            reason=UnratedReason.NO_RATE,
            detail="no rate matches this number at this time",
        )
    if entry.terms.forbidden:
        return RatingResult(
            RatingStatus.FORBIDDEN, digits, seconds, prefix=entry.prefix, destination=entry.destination, entry=entry
        )
    terms = entry.terms
    billed = billed_seconds(terms, seconds)
    units = 0 if seconds <= terms.grace_period else _units(terms, billed, decimals, rounding)
    return RatingResult(
        _RATED,
        digits,
        seconds,
        billed,
        Decimal(units).scaleb(-decimals),
        entry.prefix,
        entry.destination,
        None,
        None,
        entry,
    )
