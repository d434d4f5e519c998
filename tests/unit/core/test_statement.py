"""Statement of account and aged receivables (core.statement), and the top-up back-off."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from tarifa.core.statement import (
    ReceivableInvoice,
    StatementRow,
    age,
    bucket_of,
    build_statement,
    retry_after_seconds,
)

D = Decimal


def _row(i: int, day: int, amount: str) -> StatementRow:
    return StatementRow(i, datetime(2026, 3, day, tzinfo=UTC), "payment", "", f"R{i}", D(amount))


def test_running_balance_from_the_opening_to_the_closing() -> None:
    st = build_statement(D("10"), [_row(2, 5, "-3.5"), _row(1, 2, "20")], "USD", date(2026, 3, 1), date(2026, 3, 31))
    assert [(line.row.id, line.balance) for line in st.lines] == [(1, D("30")), (2, D("26.5"))]
    assert (st.opening, st.closing, st.money_in, st.money_out) == (D("10"), D("26.5"), D("20"), D("3.5"))


def test_an_empty_range_closes_at_its_opening() -> None:
    st = build_statement(D("-4"), [], "EUR", None, None)
    assert st.closing == D("-4") and st.lines == ()


@pytest.mark.parametrize(
    ("days", "bucket"),
    [
        (-10, "0-30"),
        (0, "0-30"),
        (30, "0-30"),
        (31, "31-60"),
        (60, "31-60"),
        (61, "61-90"),
        (90, "61-90"),
        (91, "90+"),
        (400, "90+"),
    ],
)
def test_buckets_by_days_past_due(days: int, bucket: str) -> None:
    assert bucket_of(days) == bucket


def test_aging_counts_unpaid_amounts_only_by_due_date() -> None:
    today = date(2026, 6, 30)
    invoices = [
        ReceivableInvoice(1, "A-1", date(2026, 1, 1), date(2026, 1, 31), D("100"), D("40")),  # 150 days: 90+
        ReceivableInvoice(2, "A-2", date(2026, 5, 1), date(2026, 5, 20), D("50"), D("0")),  # 41 days: 31-60
        ReceivableInvoice(3, "A-3", date(2026, 6, 1), date(2026, 7, 1), D("25"), D("0")),  # not yet due
        ReceivableInvoice(4, "A-4", date(2026, 6, 1), None, D("10"), D("10")),  # paid: left out
    ]
    aging = age(invoices, today)
    assert aging.buckets == {"0-30": D("25"), "31-60": D("50"), "61-90": D("0"), "90+": D("60")}
    assert aging.current == D("25") and aging.total == D("135")
    assert [i.number for i, _d, _b in aging.invoices] == ["A-1", "A-2", "A-3"]


def test_top_up_waits_longer_after_each_decline_up_to_a_day() -> None:
    assert [retry_after_seconds(n) for n in (0, 1, 2, 3)] == [0, 3600, 7200, 14400]
    assert retry_after_seconds(50) == 86400
