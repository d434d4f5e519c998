"""Deposits held from customers (seed 004 "Deposit Handling and Interest Calculation", "Automatic
Deposit Adjustment"); docs/deposits.md.

A customer's deposit is money it handed over as security: it is *held*, not spent. Posting a deposit
charges the balance (``-a``, a Transaction of kind deposit, shown on the next invoice) and raises what is
held by ``a``; returning it credits the balance (``+a``) and lowers what is held.

Interest: for each calendar month, the day-by-day sum of what was held at the end of each day::

    interest(month) = round_half_up( Σ_day held(day) × rate / 100 / days_in_year , billing decimals )

(``days_in_year`` 365 or 366, the day's year), credited to the balance once per month.

Automatic adjustment: the deposit required is ``months × average monthly usage`` over the last
``lookback`` whole months the customer was billed in (the months of usage given), never below
``minimum``, rounded half-up to the billing decimals. When the required deposit exceeds what is held by
at least ``threshold``, the difference is requested (posted as a deposit); when it falls short of what is
held by at least ``threshold``, the surplus is released (returned). A smaller difference changes nothing
(no churn of cents every month).

Pure: no Django, no I/O.
"""

from __future__ import annotations

import calendar
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Final

from tarifa.core.money import shown_amount
from tarifa.core.problems import Problem

__all__ = [
    "MAX_AMOUNT",
    "MAX_RATE",
    "DepositProblem",
    "DepositTerms",
    "adjustment",
    "check_movement",
    "check_terms",
    "interest",
    "required_deposit",
]

MAX_RATE: Final = Decimal(100)  # percent per year
MAX_AMOUNT: Final = Decimal(1_000_000_000)
MAX_MONTHS: Final = 36


@dataclass(frozen=True, slots=True)
class DepositTerms:
    interest_rate: Decimal = Decimal(0)  # percent per year
    auto_adjust: bool = False
    months: Decimal = Decimal(2)  # required = months × average monthly usage
    lookback: int = 3  # months of usage averaged
    minimum: Decimal = Decimal(0)
    threshold: Decimal = Decimal(0)  # smallest change the adjustment makes


#: a broken rule of a deposit's terms or movement
DepositProblem = Problem


def _round(value: Decimal, places: int) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def _places(value: Decimal) -> int:
    """Decimal places that carry a digit (``400.000000`` has none)."""
    exponent = value.normalize().as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def held_on(history: Sequence[tuple[date, Decimal]], day: date) -> Decimal:
    """What was held at the end of ``day``: the ``held after`` of the last movement on or before it.
    ``history``: (day, held after the movement), in time order."""
    held = Decimal(0)
    for when, after in history:
        if when > day:
            break
        held = after
    return held


def interest(history: Sequence[tuple[date, Decimal]], year: int, month: int, rate: Decimal, decimals: int) -> Decimal:
    """The interest of one month (module docstring): the day-by-day sum of what was held is exact (a
    Decimal sum), and the one division by ``100 × days_in_year`` is done as a fraction, so the only
    rounding is the final half-up to the billing decimals."""
    if rate == 0:
        return Decimal(0)
    days = calendar.monthrange(year, month)[1]
    held_days = Decimal(0)
    day = date(year, month, 1)
    index = 0
    held = Decimal(0)
    for _ in range(days):
        while index < len(history) and history[index][0] <= day:
            held = history[index][1]
            index += 1
        held_days += held
        day += timedelta(days=1)
    exact = Fraction(held_days * rate) / (100 * (366 if calendar.isleap(year) else 365))
    unit = Fraction(1, 10**decimals)
    units = exact / unit
    whole = math.floor(units + Fraction(1, 2)) if units >= 0 else -math.floor(-units + Fraction(1, 2))
    return Decimal(whole).scaleb(-decimals)


def required_deposit(monthly_usage: Sequence[Decimal], terms: DepositTerms, decimals: int) -> Decimal:
    """``max(minimum, months × average of the last lookback months of usage)``, rounded half-up."""
    usage = list(monthly_usage)[-terms.lookback :] if terms.lookback else []
    average = sum(usage, Decimal(0)) / len(usage) if usage else Decimal(0)
    return _round(max(terms.minimum, terms.months * max(average, Decimal(0))), decimals)


def adjustment(held: Decimal, required: Decimal, threshold: Decimal) -> Decimal:
    """What to post: ``required - held`` when at least ``threshold`` away (positive: request more,
    negative: release the surplus), else 0."""
    change = required - held
    if change == 0 or abs(change) < threshold:
        return Decimal(0)
    return change


def check_terms(terms: DepositTerms) -> list[DepositProblem]:
    """Everything wrong with a customer's deposit terms, each naming field, value and rule."""
    t = terms
    problems: list[DepositProblem] = []
    for field, label, value, top in (
        ("interest_rate", "Interest rate (% per year)", t.interest_rate, MAX_RATE),
        ("months", "Months of usage", t.months, Decimal(MAX_MONTHS)),
        ("minimum", "Minimum deposit", t.minimum, MAX_AMOUNT),
        ("threshold", "Adjustment threshold", t.threshold, MAX_AMOUNT),
    ):
        if not isinstance(value, Decimal) or not value.is_finite():
            problems.append(DepositProblem(field, label, value, "must be a decimal number", "malformed"))
        elif value < 0:
            problems.append(DepositProblem(field, label, value, "must not be negative", "negative"))
        elif value > top:
            problems.append(DepositProblem(field, label, value, f"must be at most {top}", "range"))
    if not 1 <= t.lookback <= MAX_MONTHS:
        problems.append(
            DepositProblem("lookback", "Months averaged", t.lookback, f"must be 1 to {MAX_MONTHS}", "range")
        )
    if t.auto_adjust and not problems and t.months == 0 and t.minimum == 0:
        problems.append(
            DepositProblem(
                "months",
                "Months of usage",
                t.months,
                "an automatic adjustment needs months of usage or a minimum deposit above 0",
                "empty",
            )
        )
    return problems


def check_movement(kind: str, amount: Decimal, held: Decimal, decimals: int) -> list[DepositProblem]:
    """A deposit posted (``post``) or returned (``return``) by hand: a positive amount with at most the
    customer's billing decimals; a return at most what is held."""
    problems: list[DepositProblem] = []
    if kind not in ("post", "return"):
        return [DepositProblem("kind", "Deposit action", kind, "must be post or return", "kind")]
    if not isinstance(amount, Decimal) or not amount.is_finite():
        return [DepositProblem("amount", "Amount", amount, "must be a decimal number", "malformed")]
    if amount <= 0:
        problems.append(DepositProblem("amount", "Amount", amount, "must be above 0", "positive"))
    elif amount > MAX_AMOUNT:
        problems.append(DepositProblem("amount", "Amount", amount, f"must be at most {MAX_AMOUNT}", "range"))
    if _places(amount) > decimals:
        problems.append(
            DepositProblem(
                "amount", "Amount", amount, f"must have at most {decimals} decimal places (billing decimals)", "places"
            )
        )
    if kind == "return" and amount > held:
        problems.append(
            DepositProblem(
                "amount",
                "Amount",
                amount,
                f"must be at most the deposit held ({shown_amount(held, decimals)})",
                "over_held",
            )
        )
    return problems
