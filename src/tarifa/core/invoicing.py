"""Billing cycles and the composition of an invoice from a period's plain data.

**Cycles.** A customer is invoiced per period of its cycle, in its own time zone:

* ``monthly`` on a day of the month (1-31; a shorter month starts its period on its last day,
  the rule of service plans, :func:`tarifa.core.recurring.period_start`);
* ``weekly`` on a weekday (0 Monday ... 6 Sunday);
* ``custom``: every N days from an anchor date.

A period is a run of whole local days ``[start, end]``; it *has ended* once the local midnight
after ``end`` has passed (:meth:`Period.bounds` gives the UTC instants). A customer without a
billing profile has the default cycle, monthly on the 1st.

**Composition** (:func:`compose`). From the period's charges, already summed by the storage
(calls by destination, usage by location, fees, penalties, deposit movements, adjustments), the
invoice's lines, discount, taxes and totals:

* ``subtotal`` = the lines of :data:`SUBTOTAL_SECTIONS` (calls, services, deposits, adjustments);
  usage lines are the same calls seen by location, shown but never added again;
* ``discount`` = a percentage of, or a fixed amount off, the calls and services (never more than
  they come to, never below 0), rounded half-up to the customer's billing decimals;
* ``penalty`` = the penalty items (a net refund of penalties is an adjustment instead: the
  invoice's penalty is never negative);
* ``tax`` = what the tax engine answers for the taxable lines (calls, services, adjustments and
  the discount line; penalties and deposits are not taxed);
* ``total = subtotal - discount + penalty + tax`` (:mod:`tarifa.core.invoices`), which is also the
  sum of every line but the usage lines, to the last decimal: nothing is rounded twice.

Signs: amounts here are as the invoice shows them, a charge positive (the ledger has it
negative). The discount line is negative; the run posts the discount (+) and the tax (-) to the
ledger so that the invoice total is minus the sum of the period's invoiced Transactions.

Pure: no Django, no I/O.
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Final

from tarifa.core.invoices import LineSection, Problem
from tarifa.core.recurring import MONTHLY, Terms, next_period_start, period_start
from tarifa.core.taxes import TaxableLine, TaxCustomer, TaxEngine, TaxLine

__all__ = [
    "DEFAULT_CYCLE",
    "SUBTOTAL_SECTIONS",
    "TAXABLE_SECTIONS",
    "CallGroup",
    "Composition",
    "CreditSplit",
    "Cycle",
    "CycleKind",
    "Discount",
    "DiscountKind",
    "Item",
    "Line",
    "Period",
    "PeriodData",
    "UsageGroup",
    "compose",
    "credit_split",
    "cycle_problems",
    "discount_amount",
    "discount_problems",
    "ended_periods_in",
    "last_ended_period",
    "next_period",
    "parse_period",
    "period_of",
]

ZERO: Final = Decimal(0)
CUSTOM_DAYS_MAX: Final = 366
SUBTOTAL_SECTIONS: Final = frozenset(
    {LineSection.CALLS, LineSection.SERVICES, LineSection.DEPOSIT, LineSection.ADJUSTMENT}
)
TAXABLE_SECTIONS: Final = frozenset(
    {LineSection.CALLS, LineSection.SERVICES, LineSection.ADJUSTMENT, LineSection.DISCOUNT}
)
DISCOUNTED_SECTIONS: Final = frozenset({LineSection.CALLS, LineSection.SERVICES})


class CycleKind(StrEnum):
    MONTHLY = "monthly"
    WEEKLY = "weekly"
    CUSTOM = "custom"


class DiscountKind(StrEnum):
    NONE = "none"
    PERCENT = "percent"
    FIXED = "fixed"


@dataclass(frozen=True, slots=True)
class Cycle:
    """A customer's billing cycle. ``day``: monthly; ``weekday``: weekly; ``every_days`` from
    ``anchor``: custom (the anchor is the first day of one of its periods)."""

    kind: CycleKind = CycleKind.MONTHLY
    day: int = 1
    weekday: int = 0
    every_days: int = 30
    anchor: date = date(2026, 1, 1)


DEFAULT_CYCLE: Final = Cycle()


def cycle_problems(cycle: Cycle) -> list[Problem]:
    problems = []
    if cycle.kind == CycleKind.MONTHLY and not 1 <= cycle.day <= 31:
        problems.append(Problem("day", "Billing day of month", cycle.day, "must be between 1 and 31", "range"))
    if cycle.kind == CycleKind.WEEKLY and not 0 <= cycle.weekday <= 6:
        problems.append(
            Problem("weekday", "Billing weekday", cycle.weekday, "must be between 0 (Monday) and 6 (Sunday)", "range")
        )
    if cycle.kind == CycleKind.CUSTOM and not 1 <= cycle.every_days <= CUSTOM_DAYS_MAX:
        problems.append(
            Problem(
                "every_days",
                "Cycle length",
                cycle.every_days,
                f"must be between 1 and {CUSTOM_DAYS_MAX} days",
                "range",
            )
        )
    return problems


@dataclass(frozen=True, slots=True, order=True)
class Period:
    """Whole local days ``start`` to ``end`` (both included)."""

    start: date
    end: date

    @property
    def following(self) -> date:
        return self.end + timedelta(days=1)

    def bounds(self, zone: tzinfo) -> tuple[datetime, datetime]:
        """``[local midnight of start, local midnight after end)`` as UTC instants."""
        return _midnight(self.start, zone), _midnight(self.following, zone)

    @property
    def label(self) -> str:
        """``2026-11`` for a calendar month, else ``2026-11-15..2026-12-14``."""
        if self.start.day == 1 and self.following.day == 1 and self.following - self.start <= timedelta(days=31):
            return f"{self.start:%Y-%m}"
        return f"{self.start.isoformat()}..{self.end.isoformat()}"


def _midnight(day: date, zone: tzinfo) -> datetime:
    return datetime.combine(day, time.min, tzinfo=zone).astimezone(UTC)


def period_of(cycle: Cycle, day: date) -> Period:
    """The period of ``cycle`` that contains ``day``."""
    if cycle.kind == CycleKind.CUSTOM:
        n = cycle.every_days
        start = cycle.anchor + timedelta(days=((day - cycle.anchor).days // n) * n)
        return Period(start, start + timedelta(days=n - 1))
    if cycle.kind == CycleKind.WEEKLY:
        start = day - timedelta(days=(day.weekday() - cycle.weekday) % 7)
        return Period(start, start + timedelta(days=6))
    terms = Terms(period=MONTHLY, billing_day=cycle.day)
    start = period_start(terms, day)
    return Period(start, next_period_start(terms, start) - timedelta(days=1))


def next_period(cycle: Cycle, period: Period) -> Period:
    return period_of(cycle, period.following)


def last_ended_period(cycle: Cycle, zone: tzinfo, now: datetime) -> Period:
    """The latest period that has ended by ``now`` (in ``zone``'s days)."""
    today = now.astimezone(zone).date()
    return period_of(cycle, period_of(cycle, today).start - timedelta(days=1))


def ended_periods_in(cycle: Cycle, first: date, last: date) -> list[Period]:
    """The periods of ``cycle`` whose last day lies in ``[first, last]``, in order."""
    found = []
    period = period_of(cycle, first)
    while period.start <= last:
        if first <= period.end <= last:
            found.append(period)
        period = next_period(cycle, period)
    return found


def parse_period(text: str) -> Period:
    """``YYYY-MM`` (that calendar month) or ``YYYY-MM-DD..YYYY-MM-DD``; ValueError naming the rule."""
    shown = text.strip()
    rule = "must be YYYY-MM or YYYY-MM-DD..YYYY-MM-DD (first day, two dots, last day)"
    try:
        if ".." in shown:
            first, last = (date.fromisoformat(part.strip()) for part in shown.split("..", 1))
        else:
            year, month = (int(part) for part in shown.split("-"))
            if len(shown) != 7:
                raise ValueError(shown)
            first = date(year, month, 1)
            last = date(year, month, calendar.monthrange(year, month)[1])
    except ValueError:
        raise ValueError(f"Period {text!r} is refused: {rule}") from None
    if last < first:
        raise ValueError(f"Period {text!r} is refused: its last day {last} is before its first day {first}")
    return Period(first, last)


# ---------------------------------------------------------------------------------------------
# Composition


@dataclass(frozen=True, slots=True)
class Discount:
    """``percent``: ``value`` % of calls and services; ``fixed``: ``value`` off each invoice."""

    kind: DiscountKind = DiscountKind.NONE
    value: Decimal = ZERO


def discount_problems(discount: Discount) -> list[Problem]:
    if discount.kind == DiscountKind.PERCENT and not ZERO <= discount.value <= 100:
        return [
            Problem("discount_value", "Discount", discount.value, "a percentage must be between 0 and 100", "range")
        ]
    if discount.kind == DiscountKind.FIXED and discount.value < 0:
        return [Problem("discount_value", "Discount", discount.value, "must not be negative", "range")]
    return []


def _round(value: Decimal, places: int) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def discount_amount(discount: Discount, base: Decimal, decimals: int) -> Decimal:
    """What ``discount`` takes off a ``base`` of calls and services: between 0 and the base."""
    if base <= 0 or discount.kind == DiscountKind.NONE:
        return ZERO
    off = _round(base * discount.value / 100, decimals) if discount.kind == DiscountKind.PERCENT else discount.value
    return max(ZERO, min(off, base))


@dataclass(frozen=True, slots=True)
class CallGroup:
    """Calls of the period to one destination: count, billed seconds, amount charged."""

    destination: str
    calls: int
    seconds: int
    amount: Decimal


@dataclass(frozen=True, slots=True)
class UsageGroup:
    """The same calls by location / cost center."""

    location: str
    calls: int
    seconds: int
    amount: Decimal


@dataclass(frozen=True, slots=True)
class Item:
    """One other charge of the period (a fee, a penalty, a deposit movement, an adjustment) as the
    invoice shows it: a charge positive."""

    section: LineSection
    description: str
    amount: Decimal


@dataclass(frozen=True, slots=True)
class PeriodData:
    calls: Sequence[CallGroup] = ()
    usage: Sequence[UsageGroup] = ()
    items: Sequence[Item] = ()

    @property
    def empty(self) -> bool:
        return not (self.calls or self.items)


@dataclass(frozen=True, slots=True)
class Line:
    section: LineSection
    description: str
    amount: Decimal
    calls: int | None = None
    seconds: int | None = None
    location: str = ""
    tax_rate: Decimal | None = None  # tax lines: the percentage (None: a fixed tax)
    tax_base: Decimal | None = None  # tax lines: what the tax was computed on

    @property
    def quantity(self) -> Decimal:
        return Decimal(1)

    @property
    def unit_price(self) -> Decimal:
        return self.amount


@dataclass(frozen=True, slots=True)
class Composition:
    lines: tuple[Line, ...]
    subtotal: Decimal
    discount: Decimal
    penalty: Decimal
    tax: Decimal
    total: Decimal
    taxes: tuple[TaxLine, ...] = field(default=())

    @property
    def tax_posted(self) -> Decimal:
        """Every tax line's amount (a negative tax moved to the adjustments included)."""
        return sum((t.amount for t in self.taxes), ZERO)


def _minutes(seconds: int) -> str:
    return f"{seconds // 60}:{seconds % 60:02d}"


def compose(
    data: PeriodData,
    discount: Discount,
    engine: TaxEngine,
    customer: TaxCustomer,
    on: date,
) -> Composition:
    """The invoice of one period (module docstring)."""
    lines: list[Line] = []
    for g in sorted(data.calls, key=lambda g: (g.destination, g.amount)):
        lines.append(
            Line(
                LineSection.CALLS,
                f"{g.destination or 'Other destinations'}: {g.calls} call(s), {_minutes(g.seconds)} min",
                g.amount,
                calls=g.calls,
                seconds=g.seconds,
            )
        )
    penalties = sum((i.amount for i in data.items if i.section == LineSection.PENALTY), ZERO)
    for item in data.items:
        section = item.section
        if section == LineSection.PENALTY and penalties < 0:
            section = LineSection.ADJUSTMENT  # a net refund of penalties: the invoice's penalty is never negative
        lines.append(Line(section, item.description, item.amount))
    for u in sorted(data.usage, key=lambda u: u.location):
        lines.append(
            Line(
                LineSection.USAGE,
                f"{u.location or 'No location'}: {u.calls} call(s), {_minutes(u.seconds)} min",
                u.amount,
                calls=u.calls,
                seconds=u.seconds,
                location=u.location,
            )
        )
    base = sum((line.amount for line in lines if line.section in DISCOUNTED_SECTIONS), ZERO)
    off = discount_amount(discount, base, customer.decimals)
    if off:
        shown = f"{discount.value.normalize():f} %" if discount.kind == DiscountKind.PERCENT else "fixed"
        lines.append(Line(LineSection.DISCOUNT, f"Discount ({shown})", -off))
    taxable = [
        TaxableLine(key=str(n), section=line.section, description=line.description, amount=line.amount)
        for n, line in enumerate(lines)
        if line.section in TAXABLE_SECTIONS
    ]
    taxes = tuple(engine.taxes(customer, taxable, on)) if taxable else ()
    tax = sum((t.amount for t in taxes), ZERO)
    tax_section = LineSection.TAX if tax >= 0 else LineSection.ADJUSTMENT
    for t in taxes:
        lines.append(Line(tax_section, t.name, t.amount, tax_rate=t.rate, tax_base=t.base))
    if tax < 0:
        tax = ZERO
    subtotal = sum((line.amount for line in lines if line.section in SUBTOTAL_SECTIONS), ZERO)
    penalty = max(penalties, ZERO)
    total = subtotal - off + penalty + tax
    order = list(LineSection)
    lines.sort(key=lambda line: order.index(line.section))  # stable: the order above within a section
    return Composition(tuple(lines), subtotal, off, penalty, tax, total, taxes)


# ---------------------------------------------------------------------------------------------
# Credit notes


@dataclass(frozen=True, slots=True)
class CreditSplit:
    """What a credit note of ``amount`` gives back: its net part and, for each tax of the invoice,
    the tax credited with the base it is computed on (amounts and bases positive here; the credit
    note stores them negative). ``net + tax == amount``."""

    amount: Decimal
    net: Decimal
    taxes: tuple[TaxLine, ...] = ()

    @property
    def tax(self) -> Decimal:
        return sum((t.amount for t in self.taxes), ZERO)


def _tax_key(line: TaxLine) -> tuple[str, Decimal | None]:
    return (line.name, line.rate.normalize() if line.rate is not None else None)


def credit_split(
    amount: Decimal,
    invoice_total: Decimal,
    invoice_taxes: Sequence[TaxLine],
    credited_before: Decimal,
    taxes_credited_before: Sequence[TaxLine],
    decimals: int,
) -> CreditSplit:
    """A credit of ``amount`` (tax included) on an invoice of ``invoice_total`` split into net and tax
    in the invoice's proportions, each tax line like the invoice's (rate and base):

    * the part credited is ``f = amount / invoice_total``; a percentage tax credits the base
      ``round(base × f)`` and the tax recomputed from it, ``round(credited base × rate / 100)``; a fixed
      tax ``round(amount × f)`` (half-up, to the customer's billing ``decimals``);
    * crediting what is left of the invoice (``amount == invoice_total - credited_before``, a full
      credit after any partial ones) credits exactly each tax's amount and base not yet credited, so
      the invoice and its credit notes end with no tax at all;
    * never more tax than is left on a tax line, nor more than the amount; the rest is net.

    ``invoice_taxes``: the invoice's tax lines (positive); ``taxes_credited_before``: the tax lines of
    its earlier credit notes (positive), matched by name and rate."""
    taxes = [t for t in invoice_taxes if t.amount > 0]
    if amount <= 0 or invoice_total <= 0 or not taxes:
        return CreditSplit(amount, amount)
    before: dict[tuple[str, Decimal | None], tuple[Decimal, Decimal]] = {}
    for t in taxes_credited_before:
        base, tax = before.get(_tax_key(t), (ZERO, ZERO))
        before[_tax_key(t)] = (base + t.base, tax + t.amount)
    rest = amount == invoice_total - credited_before
    fraction = amount / invoice_total
    out: list[TaxLine] = []
    room = amount
    for t in taxes:
        base_before, tax_before = before.pop(_tax_key(t), (ZERO, ZERO))  # one invoice line per key
        base_left, tax_left = max(t.base - base_before, ZERO), max(t.amount - tax_before, ZERO)
        if rest:
            base, tax = base_left, tax_left
        else:
            base = min(_round(t.base * fraction, decimals), base_left)
            exact = base * t.rate / 100 if t.rate is not None else t.amount * fraction
            tax = min(_round(exact, decimals), tax_left)
        tax = min(tax, room)
        room -= tax
        if tax or base:
            out.append(TaxLine(t.name, t.rate, base, tax, compound=t.compound, fixed=t.fixed, decimals=decimals))
    return CreditSplit(amount, amount - sum((t.amount for t in out), ZERO), tuple(out))
