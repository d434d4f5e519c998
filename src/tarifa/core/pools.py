"""Included minutes consumed before money (seed 002 / 004 "pool of included minutes").

The rule, for a call that a pool covers:

* the call's billed seconds ``B`` are computed with the rate's intervals (grace, free seconds,
  first/next interval) exactly as for a charged call;
* with ``R`` seconds left in the pool: if ``R >= B`` the call costs nothing and uses ``B``;
  if ``0 < R < B`` it uses ``R`` and costs what a call of ``B - R`` seconds costs at the rate
  (connect fee and minimum charge included: the uncovered part is priced like a call of its own);
  if ``R == 0`` the call is priced normally.

Pools are used in call order, per account and calendar month (:class:`PoolSlot`); the first pool
that covers the number and has seconds left applies (:func:`price_from_pools`).

A pool with a rollover cap adds to a month's allowance what the previous month left of its own
allowance, at most the cap (:func:`carried_over`: carried seconds are
used first and expire after one month). The carry is fixed when the month's usage is first read
(its first call) and kept with the usage (:meth:`PoolUsageStore.carried`). The usage of one
database transaction is held by :class:`PoolUsage` over a :class:`PoolUsageStore` (the database
implementation is ``tarifa.cdrs.store.PoolUsageTable``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import NamedTuple, Protocol

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


@dataclass(frozen=True, slots=True)
class Pool:
    """An included-minutes allowance of ``seconds`` per calendar month: a service plan's
    (``plan:<id>``, for the numbers starting with one of ``prefixes``; every call when empty)
    or a DID plan's (``did:<id>``, the inbound calls to that DID)."""

    key: str
    seconds: int
    prefixes: tuple[str, ...] = ()
    rollover_cap: int = 0  # seconds carried into the next month at most (0: no rollover)

    def covers(self, number: str) -> bool:
        return not self.prefixes or number.startswith(self.prefixes)


class PoolSlot(NamedTuple):
    """One account's use of one pool in one month: the unit usage is counted and locked in."""

    account_id: int
    key: str
    period: date  # the first day of the month


def month_of(at: datetime) -> date:
    """The period a call counts in: the calendar month (UTC) of its connect time."""
    return date(at.year, at.month, 1)


@dataclass(frozen=True, slots=True)
class PoolPrice:
    """The price of a call that a pool covered (wholly or in part)."""

    pool: Pool
    price: Decimal
    billed_seconds: int
    used_seconds: int


def price_from_pools(
    pools: Sequence[Pool],
    number: str,
    terms: RateTerms,
    duration: int,
    decimals: int,
    rounding: str,
    remaining: Callable[[Pool], int],
) -> PoolPrice | None:
    """The first pool covering ``number`` with seconds left (``remaining(pool)``) prices the
    call by :func:`price_with_pool`; None when no pool applies (the call is priced normally)."""
    for pool in pools:
        if not pool.covers(number):
            continue
        left = remaining(pool)
        if left > 0:
            price, billed, used = price_with_pool(terms, duration, decimals, rounding, left)
            return PoolPrice(pool, price, billed, used)
    return None


def carried_over(base: int, cap: int, used_before: int, carried_before: int) -> int:
    """Included seconds a rollover pool carries into the next period: what the period left of its
    own allowance (carried seconds are used first and expire after one period), at most ``cap``."""
    if cap <= 0:
        return 0
    own_used = max(0, used_before - carried_before)
    return min(cap, max(0, base - own_used))


class PoolUsageStore(Protocol):
    """Where pool usage is kept (the database): read under a lock, written back before commit."""

    def load(self, slot: PoolSlot) -> int:
        """Seconds used so far, locked until the caller's transaction ends."""

    def save(self, slot: PoolSlot, seconds: int) -> None:
        """Record the seconds used."""

    def carried(self, slot: PoolSlot, pool: Pool) -> int:
        """Seconds rolled over into the slot's month (0 for a pool without rollover), fixed on
        the first call: called after :meth:`load` has locked the slot."""


class PoolUsage:
    """The pool seconds used within one database transaction: loaded on first use, changed in
    memory call by call (calls use included minutes in call order), written back by
    :meth:`flush` before the transaction commits."""

    def __init__(self, store: PoolUsageStore) -> None:
        self._store = store
        self._used: dict[PoolSlot, int] = {}
        self._carried: dict[PoolSlot, int] = {}
        self._touched: set[PoolSlot] = set()

    def used(self, slot: PoolSlot) -> int:
        if slot not in self._used:
            self._used[slot] = self._store.load(slot)
        return self._used[slot]

    def remaining(self, slot: PoolSlot, allowance: int) -> int:
        return max(0, allowance - self.used(slot))

    def remaining_in(self, slot: PoolSlot, pool: Pool) -> int:
        """Seconds left of ``pool`` in the slot: its allowance plus what rolled over, less the used."""
        used = self.used(slot)
        if pool.rollover_cap <= 0:
            return max(0, pool.seconds - used)
        if slot not in self._carried:
            self._carried[slot] = self._store.carried(slot, pool)
        return max(0, pool.seconds + self._carried[slot] - used)

    def change(self, slot: PoolSlot, seconds: int) -> None:
        """Use (positive) or give back (negative, a re-rating) pool seconds."""
        self._used[slot] = max(0, self.used(slot) + seconds)
        self._touched.add(slot)

    def flush(self) -> None:
        for slot in sorted(self._touched, key=lambda s: (s.account_id, s.key, s.period)):
            self._store.save(slot, self._used[slot])
        self._touched = set()
