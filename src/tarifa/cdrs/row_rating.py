"""Matching and rating one CDR at a time: the reference path of ingestion, and re-rating's.

:class:`Rater` matches a CDR to its account (:class:`~tarifa.cdrs.matching.Directory`), rates the
customer side (the account's tariff, or a DID's inbound terms) with included minutes first
(:mod:`tarifa.core.pools`) and the vendor side (the destination set of the connection used), and
lets the one charging rule (:mod:`tarifa.core.charging`) decide what the CDR keeps. It covers
every case; :mod:`tarifa.cdrs.frame_rating` covers the common ones a frame at a time with the
same rule, and ``tests/integration/test_ingest_bulk.py`` compares the two row by row.
"""

from __future__ import annotations

from decimal import Decimal
from typing import NamedTuple

from tarifa.cdrs.matching import Directory, Match, Tables, Unmatched, pop_allowed
from tarifa.cdrs.store import PoolUsageTable
from tarifa.core.cdr import CanonicalCdr, Disposition
from tarifa.core.charging import CallFacts, CdrRating, settle, verdict
from tarifa.core.classify import is_toll_free
from tarifa.core.identity import NO_ACCOUNT
from tarifa.core.numbering import InvalidNumber, normalize
from tarifa.core.origination import (
    INBOUND_DESTINATION,
    inbound_destination,
    origination_rate,
    out_payment,
    payphone_surcharge,
)
from tarifa.core.pools import PoolSlot, PoolUsage, month_of, price_from_pools, price_with_pool
from tarifa.core.rating import Rounding, rate_call

ZERO = Decimal(0)
DESTINATION_LENGTH = 100  # Cdr.destination's column


class Rated(NamedTuple):
    """A CDR's rating values and the account it is charged to (None: no account)."""

    rating: CdrRating
    match: Match | None
    out_payment: Decimal = ZERO  # credited to the account's balance (a revenue-share DID)


class Rater:
    """Matches and rates CDRs for one run; holds the included-minutes usage of the current
    database transaction (:meth:`begin` it per transaction, :meth:`flush_pools` before commit)."""

    def __init__(self) -> None:
        self.directory = Directory()
        self.tables = Tables()
        self.pools = PoolUsage(PoolUsageTable())

    def begin(self) -> None:
        self.pools = PoolUsage(PoolUsageTable())

    def flush_pools(self) -> None:
        self.pools.flush()

    def rate(self, cdr: CanonicalCdr) -> Rated:
        match = self.directory.match(cdr)
        if match is None or isinstance(match, Unmatched):
            reason = match.reason if match is not None else NO_ACCOUNT
            return Rated(settle(verdict(CallFacts(unmatched=reason))), None)
        account = match.account
        answered = cdr.disposition == Disposition.ANSWERED and cdr.duration > 0
        a_leg = cdr.leg == "a"
        if not pop_allowed(account, cdr.switch):  # kept with its account, never charged
            return Rated(settle(verdict(CallFacts(pop_allowed=False, answered=answered, a_leg=a_leg))), match)
        at = cdr.connect_time or cdr.start_time
        period = month_of(at)
        if match.origination is not None:
            return self._rate_inbound(cdr, match, answered=answered, a_leg=a_leg)
        try:
            number = normalize(cdr.callee, account.dialing_mode)
        except InvalidNumber as exc:
            decided = verdict(CallFacts(number_valid=False, answered=answered, a_leg=a_leg))
            return Rated(settle(decided, destination=exc.reason[:DESTINATION_LENGTH]), match)
        table, rounding = self.tables.tariff(match.tariff_id or account.tariff_id)
        result = rate_call(table, number, at, cdr.duration, account.decimals, rounding)
        decided = verdict(CallFacts(rating=result.status, answered=answered, a_leg=a_leg))
        prefix, destination = result.prefix or "", (result.destination or "")[:DESTINATION_LENGTH]
        if not decided.bills and not decided.charges and not decided.pays_vendor and not decided.keeps_connection:
            return Rated(settle(decided, number=number, prefix=prefix, destination=destination), match)
        price = result.cost or ZERO
        pool_key, pool_seconds = "", 0
        if decided.charges and match.pools and result.entry is not None:
            slot_of = {pool.key: PoolSlot(account.account_id, pool.key, period) for pool in match.pools}
            covered = price_from_pools(
                match.pools,
                number,
                result.entry.terms,
                cdr.duration,
                account.decimals,
                rounding,
                lambda pool: self.pools.remaining_in(slot_of[pool.key], pool),
            )
            if covered is not None:
                self.pools.change(slot_of[covered.pool.key], covered.used_seconds)
                price, pool_key, pool_seconds = covered.price, covered.pool.key, covered.used_seconds
        connection, cost = None, ZERO
        vendor = self.tables.vendor(cdr.connection)
        if vendor is not None:
            connection, vtable, vdecimals, vrounding = vendor
            if decided.pays_vendor:
                cost = rate_call(vtable, number, at, cdr.duration, vdecimals, vrounding).cost or ZERO
        return Rated(
            settle(
                decided,
                number=number,
                prefix=prefix,
                destination=destination,
                billed_seconds=result.billed_seconds,
                price=price,
                cost=cost,
                connection=connection,
                pool_key=pool_key,
                pool_seconds=pool_seconds,
            ),
            match,
        )

    def _rate_inbound(self, cdr: CanonicalCdr, match: Match, *, answered: bool, a_leg: bool) -> Rated:
        """An inbound call to a DID (or a virtual number, as its primary DID): the plan's
        origination rate (:func:`tarifa.core.origination.origination_rate`), included minutes
        first, the payphone surcharge, and the DID's out-payment (docs/origination.md)."""
        plan = match.origination
        assert plan is not None
        account = match.account
        decided = verdict(CallFacts(inbound=True, answered=answered, a_leg=a_leg))
        number = cdr.callee.lstrip("+")[:15]
        if not decided.charges:
            return Rated(settle(decided, number=number, destination=INBOUND_DESTINATION), match)
        try:
            caller = normalize(cdr.caller, account.dialing_mode) if cdr.caller else ""
        except InvalidNumber:  # "anonymous", a withheld number: no origin, the blended rate
            caller = ""
        chosen = origination_rate(
            plan, caller, match.did_number, toll_free=is_toll_free(match.did_number), lata=self.directory.lata
        )
        terms = plan.terms(chosen.rate)
        pool = match.pools[0] if match.pools else None
        period = month_of(cdr.connect_time or cdr.start_time)
        slot = PoolSlot(account.account_id, pool.key, period) if pool else None
        left = self.pools.remaining(slot, pool.seconds) if pool and slot else 0
        price, billed, used = price_with_pool(terms, cdr.duration, account.decimals, Rounding.HALF_UP, left)
        if slot and used:
            self.pools.change(slot, used)
        price += payphone_surcharge(plan, caller, self.directory.payphone_prefixes, account.decimals)
        destination = inbound_destination(chosen.basis)
        credit = out_payment(match.out_payment_rate, plan.interval_1, plan.interval_n, cdr.duration, account.decimals)
        return Rated(
            settle(
                decided,
                number=number,
                prefix=chosen.prefix,
                destination=destination,
                billed_seconds=billed,
                price=price,
                pool_key=pool.key if pool and used else "",
                pool_seconds=used,
            ),
            match,
            credit,
        )


__all__ = ["Rated", "Rater"]
