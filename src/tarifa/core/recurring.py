"""Recurring and one-time charges of a service (seed 000 "Service Plans", seed 004 "recurring and
one-time fees, minimum billing"): which charges are due, for which period, and how much.

Pure rules over plain data; ``tarifa.services.recurring`` posts what they say through the ledger.

The rules (docs/recurring-charges.md):

* **Periods.** ``daily``: every day. ``weekly``: seven days starting on ``weekday`` (0 = Monday).
  ``monthly`` / ``quarterly`` / ``yearly``: 1, 3 or 12 months starting on ``billing_day`` (1-31)
  of January/April/July/October (quarterly), January (yearly), every month (monthly). A month
  shorter than the billing day starts its period on its last day (billing day 31: Jan 31 - Feb 27,
  Feb 28 - Mar 30, Mar 31 - Apr 29, ...; in a leap year Feb 29 - Mar 30).
* **Service days.** A service is in service from its activation date (included) to its
  cancellation date (excluded: the cancellation date is the first day not charged).
* **In arrears.** A period's recurring charge is due once the period is over: on the day after its
  last day, or on the cancellation date when the service ends inside the period.
* **Prorating.** With prorating (the default) a period's charge is ``fee * service days in the
  period / days in the period``, rounded half-even to the currency's minor unit, in Decimal;
  without it, a period with at least one service day costs the whole fee.
* **One-time fees** (setup, activation) are due on the activation date, in full.
* **Minimum billing.** A period's minimum (prorated like the fee) less the period's usage charges,
  when positive, is due with the period (:func:`minimum_shortfall`).
"""

from __future__ import annotations

import calendar
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from enum import StrEnum
from functools import lru_cache

FEE_MAX = Decimal("1000000.00")
"""The largest fee or charge a plan, a DID plan or a virtual number may ask per period or once
(recurring, setup, activation, minimum, additional): far above any real price, and small enough that
years of a service's charges stay within the ledger's balance range (about +-9.2e12, a 64-bit count of
millionths) -- a fee beyond it would be accepted and then refused by the ledger on every run."""

DAILY, WEEKLY, MONTHLY, QUARTERLY, YEARLY = "daily", "weekly", "monthly", "quarterly", "yearly"
MONTHS = {MONTHLY: 1, QUARTERLY: 3, YEARLY: 12}
PERIODS = (DAILY, WEEKLY, MONTHLY, QUARTERLY, YEARLY)


class ChargeKind(StrEnum):
    """What a service charge is for (the ServiceCharge model's ``kind``)."""

    SETUP = "setup"
    ACTIVATION = "activation"
    RECURRING = "recurring"
    MINIMUM = "minimum"


SETUP, ACTIVATION, RECURRING, MINIMUM = (
    ChargeKind.SETUP,
    ChargeKind.ACTIVATION,
    ChargeKind.RECURRING,
    ChargeKind.MINIMUM,
)
_DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Terms:
    """What a plan charges for one service. Amounts in the customer's currency."""

    period: str = MONTHLY
    fee: Decimal = Decimal(0)
    setup_fee: Decimal = Decimal(0)
    activation_fee: Decimal = Decimal(0)
    billing_day: int = 1  # monthly-type periods: 1-31, a shorter month uses its last day
    weekday: int = 0  # weekly periods: 0 = Monday ... 6 = Sunday
    prorate: bool = True
    minimum: Decimal = Decimal(0)  # minimum usage charges per period (0: none)
    decimals: int = 2  # the currency's minor unit

    def __post_init__(self) -> None:
        if self.period not in PERIODS:
            raise ValueError(f"Charge period {self.period!r} is refused: must be one of {', '.join(PERIODS)}")
        if not 1 <= self.billing_day <= 31:
            raise ValueError(f"Billing day {self.billing_day!r} is refused: must be between 1 and 31")
        if not 0 <= self.weekday <= 6:
            raise ValueError(f"Weekday {self.weekday!r} is refused: must be between 0 (Monday) and 6 (Sunday)")


@dataclass(frozen=True, slots=True)
class Charge:
    """One charge due: ``amount`` is what the customer pays (positive)."""

    kind: ChargeKind
    period_start: date
    period_end: date  # the period's last day (inclusive); the activation date for one-time fees
    amount: Decimal
    description: str
    days: int = 0  # service days in the period (recurring, minimum)
    period_days: int = 0
    due: date | None = None  # the day it becomes due

    def key(self) -> tuple[str, date]:
        """What makes it unique for its service: one charge of a kind per period."""
        return self.kind, self.period_start


def quantize(amount: Decimal, decimals: int) -> Decimal:
    """Rounded half-even to ``decimals`` places (the currency's minor unit)."""
    return amount.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_EVEN)


@lru_cache(maxsize=4096)
def _anchor(month_index: int, billing_day: int) -> date:
    year, month0 = divmod(month_index, 12)
    return date(year, month0 + 1, min(billing_day, calendar.monthrange(year, month0 + 1)[1]))


def period_start(terms: Terms, day: date) -> date:
    """The first day of the period that ``day`` belongs to."""
    if terms.period == DAILY:
        return day
    if terms.period == WEEKLY:
        return day - timedelta(days=(day.weekday() - terms.weekday) % 7)
    n = MONTHS[terms.period]
    index = day.year * 12 + day.month - 1
    index -= index % n
    if day < _anchor(index, terms.billing_day):
        index -= n
    return _anchor(index, terms.billing_day)


def next_period_start(terms: Terms, start: date) -> date:
    """The first day of the period after the one starting on ``start`` (a period's first day)."""
    if terms.period == DAILY:
        return start + _DAY
    if terms.period == WEEKLY:
        return start + timedelta(days=7)
    # A period's first day lies in the month it belongs to (a shorter month's last day at the latest).
    return _anchor(start.year * 12 + start.month - 1 + MONTHS[terms.period], terms.billing_day)


def periods(terms: Terms, first: date, until: date) -> Iterator[tuple[date, date]]:
    """(start, next start) of every period that has a day in [first, until)."""
    start = period_start(terms, first)
    while start < until:
        following = next_period_start(terms, start)
        yield start, following
        start = following


def prorated(full: Decimal, days: int, period_days: int, terms: Terms) -> Decimal:
    """The part of ``full`` for ``days`` of ``period_days`` (the whole with prorating off)."""
    if days <= 0:
        return quantize(Decimal(0), terms.decimals)
    if not terms.prorate or days >= period_days:
        return quantize(full, terms.decimals)
    return quantize(full * days / period_days, terms.decimals)


def charges_due(
    terms: Terms,
    activation: date,
    cancellation: date | None,
    today: date,
    *,
    after: date | None = None,
    what: str = "service",
) -> list[Charge]:
    """Every charge of a service due by ``today`` (included), oldest first, for periods starting
    after ``after`` (the last period already charged: the caller's cursor; one-time fees only when
    None). Zero amounts are left out. Minimum charges are not here: they need the usage
    (:func:`minimum_shortfall`), over the same periods as :func:`recurring_periods`."""
    charges: list[Charge] = []
    if after is None and activation <= today and (cancellation is None or activation < cancellation):
        for kind, fee in ((SETUP, terms.setup_fee), (ACTIVATION, terms.activation_fee)):
            if fee > 0:
                charges.append(
                    Charge(
                        kind,
                        activation,
                        activation,
                        quantize(fee, terms.decimals),
                        f"{kind.capitalize()} fee, {what}, {activation.isoformat()}",
                        due=activation,
                    )
                )
    if terms.fee > 0:
        for start, end, days, period_days, due in recurring_periods(
            terms, activation, cancellation, today, after=after
        ):
            amount = prorated(terms.fee, days, period_days, terms)
            if amount > 0:
                charges.append(
                    Charge(
                        RECURRING,
                        start,
                        end,
                        amount,
                        _describe("Recurring fee", what, start, end, days, period_days),
                        days,
                        period_days,
                        due,
                    )
                )
    return charges


def recurring_periods(
    terms: Terms,
    activation: date,
    cancellation: date | None,
    today: date,
    *,
    after: date | None = None,
) -> Iterator[tuple[date, date, int, int, date]]:
    """(start, last day, service days, days in period, due date) of every period with service
    days that is due by ``today``, starting after ``after``."""
    stop = today + _DAY if cancellation is None else min(today + _DAY, cancellation)
    first = activation if after is None else max(activation, next_period_start(terms, after))
    for start, following in periods(terms, first, stop):
        if after is not None and start <= after:
            continue
        service_end = following if cancellation is None else min(following, cancellation)
        due = service_end  # the day after the last service day
        if due > today:
            break
        days = (service_end - max(start, activation)).days
        if days > 0:
            yield start, following - _DAY, days, (following - start).days, due


def minimum_shortfall(terms: Terms, usage: Decimal, days: int, period_days: int) -> Decimal:
    """What a period's usage charges fall short of the plan's minimum (prorated to the service
    days like the fee), never negative, rounded half-even to the minor unit."""
    if terms.minimum <= 0:
        return quantize(Decimal(0), terms.decimals)
    floor = prorated(terms.minimum, days, period_days, terms)
    return max(quantize(Decimal(0), terms.decimals), quantize(floor - usage, terms.decimals))


def _describe(label: str, what: str, start: date, end: date, days: int, period_days: int) -> str:
    part = "" if days >= period_days else f" ({days} of {period_days} days)"
    return f"{label}, {what}, {start.isoformat()} to {end.isoformat()}{part}"


__all__ = [
    "ACTIVATION",
    "DAILY",
    "MINIMUM",
    "MONTHLY",
    "PERIODS",
    "QUARTERLY",
    "RECURRING",
    "SETUP",
    "WEEKLY",
    "YEARLY",
    "Charge",
    "Terms",
    "charges_due",
    "minimum_shortfall",
    "next_period_start",
    "period_start",
    "periods",
    "prorated",
    "quantize",
    "recurring_periods",
]
