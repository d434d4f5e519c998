"""The recurring-charge rules (core.recurring): periods, prorating both ends, one-time fees,
minimum billing, rollover. Expected figures are worked out by hand in the comments."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from itertools import pairwise

import pytest

from tarifa.core.pools import Pool, PoolSlot, PoolUsage, carried_over
from tarifa.core.recurring import (
    ACTIVATION,
    RECURRING,
    SETUP,
    Terms,
    charges_due,
    minimum_shortfall,
    next_period_start,
    period_start,
    prorated,
    quantize,
)

D = Decimal


def test_monthly_periods_start_on_the_billing_day() -> None:
    t = Terms(billing_day=15)
    assert period_start(t, date(2026, 3, 15)) == date(2026, 3, 15)
    assert period_start(t, date(2026, 3, 14)) == date(2026, 2, 15)
    assert period_start(t, date(2026, 1, 3)) == date(2025, 12, 15)  # across the year
    assert next_period_start(t, date(2025, 12, 15)) == date(2026, 1, 15)


@pytest.mark.parametrize(
    ("day", "start", "following"),
    [
        # billing day 31: a shorter month starts its period on its last day
        (date(2026, 2, 10), date(2026, 1, 31), date(2026, 2, 28)),
        (date(2026, 2, 28), date(2026, 2, 28), date(2026, 3, 31)),
        (date(2026, 4, 29), date(2026, 3, 31), date(2026, 4, 30)),
        (date(2026, 4, 30), date(2026, 4, 30), date(2026, 5, 31)),
        # leap year: February's period starts on the 29th
        (date(2028, 2, 29), date(2028, 2, 29), date(2028, 3, 31)),
        (date(2028, 2, 28), date(2028, 1, 31), date(2028, 2, 29)),
    ],
)
def test_billing_day_31_uses_the_last_day_of_shorter_months(day: date, start: date, following: date) -> None:
    t = Terms(billing_day=31)
    assert period_start(t, day) == start
    assert next_period_start(t, start) == following


def test_billing_day_29_in_leap_and_common_years() -> None:
    t = Terms(billing_day=29)
    assert period_start(t, date(2027, 3, 1)) == date(2027, 2, 28)
    assert next_period_start(t, date(2027, 2, 28)) == date(2027, 3, 29)
    assert period_start(t, date(2028, 3, 1)) == date(2028, 2, 29)


def test_weekly_and_daily_periods() -> None:
    t = Terms(period="weekly", weekday=2)  # Wednesdays
    assert date(2026, 12, 9).weekday() == 2
    assert period_start(t, date(2026, 12, 9)) == date(2026, 12, 9)
    assert period_start(t, date(2026, 12, 8)) == date(2026, 12, 2)
    assert next_period_start(t, date(2026, 12, 2)) == date(2026, 12, 9)
    d = Terms(period="daily")
    assert period_start(d, date(2026, 12, 9)) == date(2026, 12, 9)
    assert next_period_start(d, date(2026, 12, 31)) == date(2027, 1, 1)


def test_quarterly_and_yearly_periods() -> None:
    q = Terms(period="quarterly", billing_day=1)
    assert period_start(q, date(2026, 5, 20)) == date(2026, 4, 1)
    assert next_period_start(q, date(2026, 10, 1)) == date(2027, 1, 1)
    y = Terms(period="yearly", billing_day=10)
    assert period_start(y, date(2026, 1, 9)) == date(2025, 1, 10)


def test_terms_refuse_what_they_cannot_mean() -> None:
    with pytest.raises(ValueError, match="Billing day 32 is refused"):
        Terms(billing_day=32)
    with pytest.raises(ValueError, match="Charge period 'fortnightly' is refused"):
        Terms(period="fortnightly")
    with pytest.raises(ValueError, match="Weekday 7 is refused"):
        Terms(period="weekly", weekday=7)


def test_activation_mid_month_prorates_the_first_period_and_one_time_fees_come_on_the_day() -> None:
    t = Terms(fee=D("30.00"), setup_fee=D("10"), activation_fee=D("2.50"), billing_day=1)
    got = charges_due(t, date(2026, 4, 21), None, date(2026, 5, 31))
    # April has 30 days, in service from the 21st: 10 days -> 30 * 10 / 30 = 10.00, due May 1
    assert [(c.kind, c.period_start, c.period_end, c.amount, c.due) for c in got] == [
        (SETUP, date(2026, 4, 21), date(2026, 4, 21), D("10.00"), date(2026, 4, 21)),
        (ACTIVATION, date(2026, 4, 21), date(2026, 4, 21), D("2.50"), date(2026, 4, 21)),
        (RECURRING, date(2026, 4, 1), date(2026, 4, 30), D("10.00"), date(2026, 5, 1)),
    ]  # May is not over on May 31: it is due on June 1
    assert got[2].description == "Recurring fee, service, 2026-04-01 to 2026-04-30 (10 of 30 days)"
    june = charges_due(t, date(2026, 4, 21), None, date(2026, 6, 1), after=date(2026, 4, 1))
    assert [(c.period_start, c.amount) for c in june] == [(date(2026, 5, 1), D("30.00"))]


def test_cancellation_prorates_the_last_period_and_makes_it_due_at_once() -> None:
    t = Terms(fee=D("10.00"), billing_day=1)
    # February 2028 (leap): in service Feb 1 .. Feb 9 (cancelled on the 10th): 10 * 9 / 29 = 3.1034.. -> 3.10
    got = charges_due(t, date(2028, 1, 1), date(2028, 2, 10), date(2028, 2, 10), after=date(2028, 1, 1))
    assert [(c.period_start, c.period_end, c.amount, c.days, c.period_days, c.due) for c in got] == [
        (date(2028, 2, 1), date(2028, 2, 29), D("3.10"), 9, 29, date(2028, 2, 10))
    ]
    assert charges_due(t, date(2028, 1, 1), date(2028, 2, 10), date(2028, 2, 9), after=date(2028, 1, 1)) == []
    # Nothing after the cancellation, however late the run
    later = charges_due(t, date(2028, 1, 1), date(2028, 2, 10), date(2028, 12, 31))
    assert [c.period_start for c in later] == [date(2028, 1, 1), date(2028, 2, 1)]


def test_activation_and_cancellation_in_the_same_period() -> None:
    t = Terms(fee=D("31.00"), billing_day=1, setup_fee=D("5"))
    got = charges_due(t, date(2026, 1, 10), date(2026, 1, 20), date(2026, 3, 1))
    # Jan 10 .. Jan 19: 10 days of 31 -> 10.00
    assert [(c.kind, c.amount) for c in got] == [(SETUP, D("5.00")), (RECURRING, D("10.00"))]
    # cancelled on the activation day: never in service, nothing is charged
    assert charges_due(t, date(2026, 1, 10), date(2026, 1, 10), date(2026, 3, 1)) == []


def test_rounding_is_half_even_to_the_minor_unit() -> None:
    assert quantize(D("0.125"), 2) == D("0.12")
    assert quantize(D("0.135"), 2) == D("0.14")
    assert quantize(D("1.5"), 0) == D("2")
    # 1.00 * 1 / 8 = 0.125 -> 0.12 (half-even), and to 3 places for a 3-decimal currency
    t = Terms(period="weekly", fee=D("1.00"))
    assert prorated(D("1.00"), 1, 8, t) == D("0.12")
    assert prorated(D("1.000"), 1, 8, Terms(decimals=3)) == D("0.125")
    assert prorated(D("7"), 3, 7, Terms(prorate=False)) == D("7.00")


def test_without_prorating_a_partial_period_costs_the_whole_fee() -> None:
    t = Terms(fee=D("20"), billing_day=1, prorate=False)
    got = charges_due(t, date(2026, 1, 31), date(2026, 2, 2), date(2026, 3, 1))
    assert [(c.period_start, c.amount) for c in got] == [(date(2026, 1, 1), D("20.00")), (date(2026, 2, 1), D("20.00"))]


def test_daily_catch_up_after_three_days_down() -> None:
    t = Terms(period="daily", fee=D("1.00"))
    got = charges_due(t, date(2026, 12, 1), None, date(2026, 12, 7), after=date(2026, 12, 3))
    # Dec 4, 5 and 6 are over on the 7th; Dec 7 is not
    assert [c.period_start for c in got] == [date(2026, 12, 4), date(2026, 12, 5), date(2026, 12, 6)]
    assert all(c.amount == D("1.00") for c in got)


def test_weekly_prorating_on_both_ends() -> None:
    t = Terms(period="weekly", fee=D("7.00"), weekday=0)
    # Activated Thursday Dec 3 2026 (4 days of the week of Mon Nov 30), cancelled Wed Dec 9 (Mon, Tue of next week)
    got = charges_due(t, date(2026, 12, 3), date(2026, 12, 9), date(2026, 12, 31))
    assert [(c.period_start, c.days, c.amount, c.due) for c in got] == [
        (date(2026, 11, 30), 4, D("4.00"), date(2026, 12, 7)),
        (date(2026, 12, 7), 2, D("2.00"), date(2026, 12, 9)),
    ]


def test_every_day_in_service_is_charged_exactly_once_over_years() -> None:
    """Summing the periods' service days over four years (a leap year included) counts every day
    in service once, for every billing day: no day is lost or charged twice at month ends."""
    for billing_day in (1, 15, 28, 29, 30, 31):
        t = Terms(fee=D("1"), billing_day=billing_day, prorate=True)
        activation, cancellation = date(2025, 1, 30), date(2029, 3, 1)
        got = charges_due(t, activation, cancellation, date(2030, 1, 1))
        assert sum(c.days for c in got) == (cancellation - activation).days
        for a, b in pairwise(got):
            assert b.period_start == a.period_end + timedelta(days=1)


def test_minimum_shortfall() -> None:
    t = Terms(minimum=D("50"), billing_day=1)
    assert minimum_shortfall(t, D("12.345"), 30, 30) == D("37.66")  # 50 - 12.345 = 37.655 -> 37.66 (half-even)
    assert minimum_shortfall(t, D("80"), 30, 30) == D("0.00")
    assert minimum_shortfall(t, D("0"), 15, 30) == D("25.00")  # prorated like the fee
    assert minimum_shortfall(Terms(), D("0"), 30, 30) == D("0.00")


def test_rollover_carries_the_unused_own_allowance_up_to_the_cap() -> None:
    assert carried_over(base=600, cap=300, used_before=100, carried_before=0) == 300
    assert carried_over(base=600, cap=1000, used_before=100, carried_before=0) == 500
    # carried seconds are used first: 200 used of which 150 were carried -> 50 own used -> 550 left
    assert carried_over(base=600, cap=1000, used_before=200, carried_before=150) == 550
    assert carried_over(base=600, cap=1000, used_before=900, carried_before=100) == 0
    assert carried_over(base=600, cap=0, used_before=0, carried_before=0) == 0


class _Store:
    """An in-memory PoolUsageStore: what the database keeps, as plain dicts."""

    def __init__(self, used: int, carried: int) -> None:
        self.used, self.carry, self.carried_calls = used, carried, 0

    def load(self, slot: PoolSlot) -> int:
        return self.used

    def save(self, slot: PoolSlot, seconds: int) -> None:
        self.used = seconds

    def carried(self, slot: PoolSlot, pool: Pool) -> int:
        self.carried_calls += 1
        return self.carry


def test_pool_usage_adds_the_carried_seconds_of_a_rollover_pool_only() -> None:
    slot = PoolSlot(1, "plan:1", date(2026, 3, 1))
    store = _Store(used=200, carried=120)
    usage = PoolUsage(store)
    assert usage.remaining_in(slot, Pool("plan:1", 180, rollover_cap=120)) == 100  # 180 + 120 - 200
    usage.change(slot, 100)
    assert usage.remaining_in(slot, Pool("plan:1", 180, rollover_cap=120)) == 0
    assert store.carried_calls == 1  # read once per slot and transaction
    plain = PoolUsage(_Store(used=200, carried=120))
    assert plain.remaining_in(slot, Pool("plan:1", 180)) == 0  # no rollover: the carry is not asked
