"""Deposits (core.deposits): interest, the required deposit, adjustments, refused movements. Pure."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tarifa.core.deposits import (
    DepositTerms,
    adjustment,
    check_movement,
    check_terms,
    held_on,
    interest,
    required_deposit,
)

D = Decimal


def test_interest_is_day_by_day_exact_and_rounded_once_per_month() -> None:
    history = [(date(2026, 1, 1), D(1000))]
    # 31 days × 1000 × 3.65% / 365 = 3.10 exactly
    assert interest(history, 2026, 1, D("3.65"), 2) == D("3.10")
    # half the month at 1000, then 2000 from the 16th: (15 × 1000 + 16 × 2000) × 3.65% / 365 = 4.70
    grown = [(date(2026, 1, 1), D(1000)), (date(2026, 1, 16), D(2000))]
    assert interest(grown, 2026, 1, D("3.65"), 2) == D("4.70")
    assert interest(history, 2026, 1, D(0), 2) == D(0)
    assert interest([(date(2026, 2, 1), D(1000))], 2026, 1, D(5), 2) == D(0)  # not held yet
    leap = [(date(2028, 2, 1), D(366))]
    assert interest(leap, 2028, 2, D(100), 6) == D(29)  # 29 days × 366 × 100% / 366
    assert held_on(grown, date(2026, 1, 15)) == D(1000) and held_on(grown, date(2026, 1, 16)) == D(2000)


def test_the_required_deposit_follows_average_usage_with_a_minimum() -> None:
    terms = DepositTerms(months=D(2), lookback=3, minimum=D(50))
    assert required_deposit([D(100), D(200), D(300)], terms, 2) == D(400)
    assert required_deposit([D(999), D(100), D(200), D(300)], terms, 2) == D(400)  # only the last 3 months
    assert required_deposit([], terms, 2) == D(50)
    assert required_deposit([D(10)], terms, 2) == D(50)
    assert required_deposit([D(10), D(10), D("10.01")], DepositTerms(months=D(1), lookback=3), 2) == D("10.00")


def test_adjustments_request_or_release_the_difference_beyond_the_threshold() -> None:
    assert adjustment(D(100), D(400), D(10)) == D(300)
    assert adjustment(D(400), D(100), D(10)) == D(-300)
    assert adjustment(D(100), D(105), D(10)) == D(0)
    assert adjustment(D(100), D(100), D(0)) == D(0)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("post", D(-5), D(0), 2), "Amount -5 is refused: must be above 0"),
        (("post", D("1.005"), D(0), 2), "Amount 1.005 is refused: must have at most 2 decimal places"),
        (("return", D(50), D(20), 2), "Amount 50 is refused: must be at most the deposit held (20.00)"),
        (("post", D("NaN"), D(0), 2), "Amount NaN is refused: must be a decimal number"),
        (("steal", D(1), D(0), 2), "Deposit action 'steal' is refused: must be post or return"),
    ],
)
def test_bad_movements_are_refused_by_field_value_and_rule(args: tuple, message: str) -> None:  # type: ignore[type-arg]
    assert any(str(p).startswith(message) for p in check_movement(*args))


@pytest.mark.parametrize(
    ("terms", "message"),
    [
        (DepositTerms(interest_rate=D(-1)), "Interest rate (% per year) -1 is refused: must not be negative"),
        (DepositTerms(interest_rate=D(101)), "Interest rate (% per year) 101 is refused: must be at most 100"),
        (DepositTerms(lookback=0), "Months averaged 0 is refused: must be 1 to 36"),
        (DepositTerms(months=D("Infinity")), "Months of usage Infinity is refused: must be a decimal number"),
        (DepositTerms(auto_adjust=True, months=D(0)), "Months of usage 0 is refused: an automatic adjustment needs"),
    ],
)
def test_bad_terms_are_refused(terms: DepositTerms, message: str) -> None:
    assert any(str(p).startswith(message) for p in check_terms(terms))


@given(
    st.lists(st.tuples(st.integers(1, 28), st.decimals(0, 100000, places=2)), max_size=5),
    st.decimals("0.0001", 100, places=4),
)
def test_interest_grows_with_what_is_held_and_is_never_negative(
    moves: list[tuple[int, Decimal]], rate: Decimal
) -> None:
    history = sorted((date(2026, 3, d), amount) for d, amount in moves)
    got = interest(history, 2026, 3, rate, 6)
    assert got >= 0
    more = [(d, a + 100) for d, a in history] or [(date(2026, 3, 1), D(100))]
    assert interest(more, 2026, 3, rate, 6) >= got
