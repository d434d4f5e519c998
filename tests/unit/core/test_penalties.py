"""Late fees (core.penalties): which overdue invoices owe what on a day. Pure: no database."""

from __future__ import annotations

import itertools
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tarifa.core.penalties import (
    OverdueInvoice,
    PenaltyPolicy,
    add_months,
    check_policy,
    penalties_due,
    period_starts,
    reference,
)

D = Decimal
POLICY = PenaltyPolicy(percent=D("1.5"), fixed=D("2"), grace_days=5)


def inv(total: str = "100", due: date = date(2026, 1, 31), status: str = "issued") -> OverdueInvoice:
    return OverdueInvoice(7, "INV-7", 3, due, D(total), 2, status)


def test_no_penalty_until_the_grace_period_has_passed_then_one_per_month() -> None:
    assert penalties_due([inv()], POLICY, date(2026, 2, 5)) == []  # due 31 Jan + 5 days grace
    [first] = penalties_due([inv()], POLICY, date(2026, 2, 6))
    assert (first.period, first.period_start, first.amount, first.reference) == (
        1,
        date(2026, 2, 6),
        D("3.50"),
        "penalty:invoice:7:1",
    )
    due = penalties_due([inv()], POLICY, date(2026, 4, 6))
    assert [p.period_start for p in due] == [date(2026, 2, 6), date(2026, 3, 6), date(2026, 4, 6)]
    assert {p.amount for p in due} == {D("3.50")}  # on the invoice's amount: penalties are not charged penalties


def test_paid_void_and_zero_invoices_owe_nothing_and_max_periods_caps() -> None:
    late = date(2026, 12, 31)
    assert penalties_due([inv(status="paid"), inv(status="void"), inv(total="0")], POLICY, late) == []
    capped = PenaltyPolicy(D(1), D(0), 0, max_periods=2)
    assert len(penalties_due([inv()], capped, late)) == 2


def test_month_ends_are_kept_and_references_are_per_invoice_and_period() -> None:
    assert add_months(date(2026, 1, 31), 1) == date(2026, 2, 28)
    assert add_months(date(2026, 1, 31), 2) == date(2026, 3, 31)
    assert add_months(date(2026, 11, 15), 3) == date(2027, 2, 15)
    assert period_starts(date(2026, 1, 30), 0, date(2026, 3, 31)) == [
        date(2026, 1, 31),
        date(2026, 2, 28),
        date(2026, 3, 31),
    ]
    assert reference(7, 2) != reference(7, 3) != reference(8, 3)


def test_rounding_is_half_up_to_the_customers_billing_decimals() -> None:
    [p] = penalties_due(
        [OverdueInvoice(1, "I", 1, date(2026, 1, 1), D("10.10"), 2)], PenaltyPolicy(D("2.5"), D(0)), date(2026, 1, 2)
    )
    assert p.amount == D("0.25")  # 0.2525 -> 0.25
    [q] = penalties_due(
        [OverdueInvoice(1, "I", 1, date(2026, 1, 1), D("10.30"), 2)], PenaltyPolicy(D("2.5"), D(0)), date(2026, 1, 2)
    )
    assert q.amount == D("0.26")  # 0.2575 -> 0.26


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        (PenaltyPolicy(D(-1), D(0)), "Late fee (%) -1 is refused: must not be negative"),
        (PenaltyPolicy(D(101), D(0)), "Late fee (%) 101 is refused: must be at most 100"),
        (PenaltyPolicy(D(1), D(-2)), "Fixed late fee -2 is refused: must not be negative"),
        (PenaltyPolicy(D("NaN"), D(0)), "Late fee (%) NaN is refused: must be a decimal number"),
        (PenaltyPolicy(D(0), D(0)), "Late fee (%) 0 is refused: a policy needs a percentage or a fixed fee"),
        (PenaltyPolicy(D(1), D(0), grace_days=-1), "Grace period -1 is refused: must be 0 to 365 days"),
        (PenaltyPolicy(D(1), D(0), max_periods=-1), "Max penalties -1 is refused: must not be negative"),
    ],
)
def test_bad_policies_are_refused_by_field_value_and_rule(policy: PenaltyPolicy, message: str) -> None:
    assert message in [str(p) for p in check_policy(policy)]


@given(st.dates(date(2020, 1, 1), date(2030, 1, 1)), st.integers(0, 60), st.integers(0, 800))
def test_periods_are_monthly_increasing_and_never_before_due_plus_grace(due: date, grace: int, days: int) -> None:
    from datetime import timedelta

    on = due + timedelta(days=days)
    starts = period_starts(due, grace, on)
    assert all(due + timedelta(days=grace) < s <= on for s in starts)
    assert starts == sorted(set(starts))
    assert all(27 <= (b - a).days <= 31 for a, b in itertools.pairwise(starts))
    later = period_starts(due, grace, on + timedelta(days=40))
    assert later[: len(starts)] == starts  # a later run sees the same periods first: references stay stable
