"""Included minutes consumed before money (seed 002 / 004 "pool of included minutes").

The rule, for a call that a pool covers:

* the call's billed seconds ``B`` are computed with the rate's intervals (grace, free seconds,
  first/next interval) exactly as for a charged call;
* with ``R`` seconds left in the pool: if ``R >= B`` the call costs nothing and uses ``B``;
  if ``0 < R < B`` it uses ``R`` and costs what a call of ``B - R`` seconds costs at the rate
  (connect fee and minimum charge included: the uncovered part is priced like a call of its own);
  if ``R == 0`` the call is priced normally.
"""

from __future__ import annotations

from decimal import Decimal

from tarifa.core.rating import RateTerms, billed_seconds, call_cost


def price_with_pool(
    terms: RateTerms, duration: int, decimals: int, rounding: str, remaining: int
) -> tuple[Decimal, int, int]:
    """(cost, billed seconds, pool seconds used) of an answered call of ``duration`` seconds."""
    billed = billed_seconds(terms, duration)
    if remaining <= 0 or billed == 0:
        return call_cost(terms, duration, decimals, rounding), billed, 0
    if remaining >= billed:
        return Decimal(0).scaleb(-decimals), billed, billed
    return call_cost(terms, billed - remaining, decimals, rounding), billed, remaining
