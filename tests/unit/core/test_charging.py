"""The charging rule of a CDR (core/charging.py) and included minutes (core/pools.py): no database."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from tarifa.core.charging import (
    ACCOUNT_BALANCE,
    CUSTOMER_BALANCE,
    BalanceCharges,
    BalanceOwner,
    CallFacts,
    Verdict,
    balance_owner,
    settle,
    verdict,
)
from tarifa.core.pools import Pool, PoolSlot, PoolUsage, month_of, price_from_pools
from tarifa.core.rating import RateTerms, RatingStatus

RATED, UNRATED, FORBIDDEN = RatingStatus.RATED, RatingStatus.UNRATED, RatingStatus.FORBIDDEN


def test_no_account_keeps_nothing_whatever_else_is_true() -> None:
    for reason in ("no_account", "ambiguous_account"):
        for answered, a_leg, inbound in itertools.product((True, False), repeat=3):
            decided = verdict(CallFacts(unmatched=reason, answered=answered, a_leg=a_leg, inbound=inbound))
            assert decided == Verdict(UNRATED, reason)


def test_a_pop_the_account_may_not_use_is_never_charged() -> None:
    decided = verdict(CallFacts(pop_allowed=False))
    assert decided == Verdict(UNRATED, "pop_not_allowed")
    assert not (decided.charges or decided.bills or decided.pays_vendor or decided.keeps_number)


@pytest.mark.parametrize(
    ("answered", "a_leg", "charged"),
    [(True, True, True), (True, False, False), (False, True, False), (False, False, False)],
)
def test_outbound_rated_call(answered: bool, a_leg: bool, charged: bool) -> None:
    decided = verdict(CallFacts(answered=answered, a_leg=a_leg))
    assert decided.status == RATED and decided.reason == ""
    assert decided.charges is charged  # a B leg is never charged a second time
    assert decided.bills is answered and decided.pays_vendor is answered  # the vendor bills every answered leg
    assert decided.keeps_connection and decided.keeps_number


def test_inbound_did_call_has_no_vendor_side_and_bills_only_the_charged_leg() -> None:
    assert verdict(CallFacts(inbound=True)) == Verdict(RATED, keeps_number=True, bills=True, charges=True)
    assert verdict(CallFacts(inbound=True, a_leg=False)) == Verdict(RATED, keeps_number=True)
    assert verdict(CallFacts(inbound=True, answered=False)) == Verdict(RATED, keeps_number=True)


def test_unusable_number_no_rate_and_forbidden() -> None:
    assert verdict(CallFacts(number_valid=False)) == Verdict(UNRATED, "invalid_number")
    assert verdict(CallFacts(rating=UNRATED)) == Verdict(UNRATED, "no_rate", keeps_number=True)
    assert verdict(CallFacts(rating=FORBIDDEN)) == Verdict(FORBIDDEN, "forbidden", keeps_number=True)


def test_decided_in_order_account_then_pop_then_number_then_rate() -> None:
    assert verdict(CallFacts(unmatched="no_account", pop_allowed=False)).reason == "no_account"
    assert verdict(CallFacts(pop_allowed=False, number_valid=False)).reason == "pop_not_allowed"
    assert verdict(CallFacts(number_valid=False, rating=FORBIDDEN)).reason == "invalid_number"


def test_settle_keeps_what_the_verdict_says() -> None:
    amounts = dict(
        number="442071234567",
        prefix="44",
        destination="UK",
        billed_seconds=120,
        price=Decimal("0.0500"),
        cost=Decimal("0.0300"),
        connection=7,
        pool_key="plan:1",
        pool_seconds=60,
    )
    rated = settle(verdict(CallFacts()), **amounts)
    assert (rated.price, rated.cost, rated.margin) == (Decimal("0.0500"), Decimal("0.0300"), Decimal("0.0200"))
    assert (rated.billed_seconds, rated.connection, rated.pool_key, rated.pool_seconds) == (120, 7, "plan:1", 60)
    b_leg = settle(verdict(CallFacts(a_leg=False)), **amounts)
    assert (b_leg.price, b_leg.cost, b_leg.margin) == (0, Decimal("0.0300"), Decimal("-0.0300"))
    assert (b_leg.billed_seconds, b_leg.pool_key, b_leg.pool_seconds) == (120, "", 0)
    unanswered = settle(verdict(CallFacts(answered=False)), **amounts)
    assert (unanswered.price, unanswered.cost, unanswered.billed_seconds, unanswered.connection) == (0, 0, 0, 7)
    forbidden = settle(verdict(CallFacts(rating=FORBIDDEN)), **amounts)
    assert (forbidden.rating_status, forbidden.prefix, forbidden.connection, forbidden.price) == (
        FORBIDDEN,
        "44",
        None,
        0,
    )
    refused = settle(verdict(CallFacts(pop_allowed=False)), **amounts)
    assert (refused.number, refused.prefix, refused.unrated_reason) == ("", "", "pop_not_allowed")
    bad = settle(verdict(CallFacts(number_valid=False)), destination="letters in the number")
    assert (bad.destination, bad.number) == ("letters in the number", "")


def test_balance_owner_and_one_charge_per_balance() -> None:
    own = balance_owner(own_balance=True, account_id=5, customer_id=2)
    shared = balance_owner(own_balance=False, account_id=6, customer_id=2)
    assert own == BalanceOwner(ACCOUNT_BALANCE, 5) == (ACCOUNT_BALANCE, 5)  # a tuple: ledger ids key on it
    assert shared == BalanceOwner(CUSTOMER_BALANCE, 2)
    charges = BalanceCharges()
    start = int(datetime(2026, 3, 1, 8, 0, tzinfo=UTC).timestamp()) * 1_000_000
    charges.add(shared, 2, 12_500, 1, start + 60_000_000, start + 60_000_000)
    charges.add(shared, 2, 7_500, 36, start, start + 299_000_000)
    charges.add(own, 2, 0, 3, start, start)  # free calls move no money
    [posted] = charges.to_post()
    assert posted.owner == shared and posted.calls == 37 and posted.amount == Decimal("-0.020000")
    assert posted.description == "37 calls started 2026-03-01 08:00:00 to 2026-03-01 08:04:59 UTC"


TERMS = RateTerms(price_1=Decimal("0.06"), price_n=Decimal("0.06"), interval_1=60, interval_n=60)


class MemoryStore:
    """PoolUsageStore in a dict: the pool rules need no database."""

    def __init__(self, used: dict[PoolSlot, int] | None = None) -> None:
        self.rows = dict(used or {})
        self.loads = 0

    def load(self, slot: PoolSlot) -> int:
        self.loads += 1
        return self.rows.get(slot, 0)

    def save(self, slot: PoolSlot, seconds: int) -> None:
        self.rows[slot] = seconds


def test_first_covering_pool_with_seconds_left_prices_the_call() -> None:
    uk, every = Pool("plan:1", 120, ("44",)), Pool("plan:2", 600)
    left = {"plan:1": 0, "plan:2": 600}
    covered = price_from_pools((uk, every), "442071234567", TERMS, 90, 4, "half_up", lambda p: left[p.key])
    assert covered is not None and covered.pool == every and covered.used_seconds == 120
    left["plan:1"] = 60
    covered = price_from_pools((uk, every), "442071234567", TERMS, 150, 4, "half_up", lambda p: left[p.key])
    assert covered is not None and covered.pool == uk
    assert (covered.price, covered.billed_seconds, covered.used_seconds) == (Decimal("0.1200"), 180, 60)
    assert price_from_pools((uk,), "33123456789", TERMS, 90, 4, "half_up", lambda p: 600) is None


def test_pool_usage_loads_once_changes_in_memory_and_flushes() -> None:
    slot = PoolSlot(1, "plan:1", month_of(datetime(2026, 3, 31, 23, 59, tzinfo=UTC)))
    assert slot.period == date(2026, 3, 1)
    store = MemoryStore({slot: 100})
    usage = PoolUsage(store)
    assert usage.remaining(slot, 600) == 500
    usage.change(slot, 450)
    assert usage.remaining(slot, 600) == 50 and store.rows[slot] == 100  # not written yet
    usage.change(slot, -1000)  # a re-rating gives back more than was used: never below 0
    usage.change(slot, 30)
    usage.flush()
    assert store.rows[slot] == 30 and store.loads == 1
