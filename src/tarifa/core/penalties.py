"""Late fees on invoices overdue past the customer's payment term (seed 004 "Penalty Calculation for
Overdue Amounts"); docs/penalties.md.

An invoice is *overdue* on day ``d`` when it is still issued (not paid, not void) and ``d`` is after its
due date plus the operator's grace days. While overdue it owes one penalty per *penalty period*: period 1
starts the day after ``due_date + grace``, period ``k`` one calendar month after period ``k - 1`` (the
same day of the month, or the month's last day when shorter). Each period's penalty is::

    penalty = round_half_up(overdue × percent / 100 + fixed, customer's billing decimals)

on the invoice's overdue amount (its total: earlier penalties are not charged penalties again), at most
``max_periods`` periods (0: no limit). Period ``k`` of invoice ``i`` is posted once, under the reference
:func:`reference` ``(i, k)``, so a job run twice, or late, posts each period exactly once.

Pure: no Django, no I/O.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Final

from tarifa.core.problems import Problem

__all__ = [
    "MAX_FIXED",
    "MAX_PERCENT",
    "OverdueInvoice",
    "Penalty",
    "PenaltyPolicy",
    "PolicyProblem",
    "add_months",
    "check_policy",
    "penalties_due",
    "period_starts",
    "reference",
]

MAX_PERCENT: Final = Decimal(100)
MAX_FIXED: Final = Decimal(1_000_000)
MAX_GRACE_DAYS: Final = 365


@dataclass(frozen=True, slots=True)
class PenaltyPolicy:
    """An operator's late-fee terms in one currency."""

    percent: Decimal
    fixed: Decimal
    grace_days: int = 0
    max_periods: int = 0  # 0: a penalty every month while overdue


@dataclass(frozen=True, slots=True)
class OverdueInvoice:
    """What the rule needs of an invoice (status ``issued`` already checked by the caller or here)."""

    invoice_id: int
    number: str
    customer_id: int
    due_date: date
    amount: Decimal  # what is overdue: the invoice's total less the payments allocated to it
    decimals: int  # the customer's billing decimals
    status: str = "issued"


@dataclass(frozen=True, slots=True)
class Penalty:
    invoice_id: int
    number: str
    customer_id: int
    period: int  # 1, 2, ...
    period_start: date
    overdue: Decimal
    amount: Decimal

    @property
    def reference(self) -> str:
        return reference(self.invoice_id, self.period)


#: a broken rule of a late-fee policy
PolicyProblem = Problem


def reference(invoice_id: int, period: int) -> str:
    """The idempotency key of a penalty Transaction: one per invoice and penalty period."""
    return f"penalty:invoice:{invoice_id}:{period}"


def add_months(day: date, months: int) -> date:
    """``day`` plus whole calendar months; a day past the target month's end becomes its last day."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def period_starts(due_date: date, grace_days: int, on: date, max_periods: int = 0) -> list[date]:
    """The start of every penalty period begun on or before ``on`` (module docstring)."""
    first = due_date + timedelta(days=grace_days + 1)
    starts: list[date] = []
    k = 0
    while True:
        start = add_months(first, k)
        if start > on or (max_periods and k >= max_periods):
            return starts
        starts.append(start)
        k += 1


def _round(value: Decimal, places: int) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def penalty_amount(policy: PenaltyPolicy, overdue: Decimal, decimals: int) -> Decimal:
    return _round(overdue * policy.percent / 100 + policy.fixed, decimals)


def penalties_due(invoices: Iterable[OverdueInvoice], policy: PenaltyPolicy, on: date) -> list[Penalty]:
    """Every penalty period begun by ``on`` of every overdue invoice (posted or not: the caller skips
    the references already used), by invoice then period."""
    out: list[Penalty] = []
    for inv in invoices:
        if inv.status != "issued" or inv.amount <= 0:
            continue
        amount = penalty_amount(policy, inv.amount, inv.decimals)
        if amount <= 0:
            continue
        for k, start in enumerate(period_starts(inv.due_date, policy.grace_days, on, policy.max_periods), 1):
            out.append(Penalty(inv.invoice_id, inv.number, inv.customer_id, k, start, inv.amount, amount))
    return out


def check_policy(policy: PenaltyPolicy) -> list[PolicyProblem]:
    """Everything wrong with a late-fee policy, each naming field, value and rule."""
    p = policy
    problems: list[PolicyProblem] = []
    for field, label, value, top in (
        ("percent", "Late fee (%)", p.percent, MAX_PERCENT),
        ("fixed", "Fixed late fee", p.fixed, MAX_FIXED),
    ):
        if not isinstance(value, Decimal) or not value.is_finite():
            problems.append(PolicyProblem(field, label, value, "must be a decimal number", "malformed"))
        elif value < 0:
            problems.append(PolicyProblem(field, label, value, "must not be negative", "negative"))
        elif value > top:
            problems.append(PolicyProblem(field, label, value, f"must be at most {top}", "range"))
    if not problems and p.percent == 0 and p.fixed == 0:
        problems.append(
            PolicyProblem("percent", "Late fee (%)", p.percent, "a policy needs a percentage or a fixed fee", "empty")
        )
    if not 0 <= p.grace_days <= MAX_GRACE_DAYS:
        problems.append(
            PolicyProblem("grace_days", "Grace period", p.grace_days, f"must be 0 to {MAX_GRACE_DAYS} days", "range")
        )
    if p.max_periods < 0:
        problems.append(PolicyProblem("max_periods", "Max penalties", p.max_periods, "must not be negative", "range"))
    return problems
