"""The allocation rule (core.allocation): oldest first, never over-allocated, refunds take back newest first."""

from __future__ import annotations

import itertools
from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from tarifa.core.allocation import Allocation, CreditSource, OpenInvoice, Placed, allocate, take_back

D = Decimal
DAY = date(2026, 1, 1)


def test_oldest_invoice_first_from_the_oldest_payment() -> None:
    invoices = [OpenInvoice(2, DAY + timedelta(days=30), D("50")), OpenInvoice(1, DAY, D("30"))]
    sources = [CreditSource(10, D("40")), CreditSource(11, D("25"))]
    rows = allocate(sources, invoices, pool=D("65"))
    assert rows == [
        Allocation(10, 1, D("30")),
        Allocation(10, 2, D("10")),
        Allocation(11, 2, D("25")),
    ]


def test_a_chosen_invoice_only_and_never_beyond_what_it_still_owes() -> None:
    invoices = [OpenInvoice(1, DAY, D("30")), OpenInvoice(2, DAY + timedelta(days=1), D("50"), allocated=D("45"))]
    rows = allocate([CreditSource(10, D("100"))], invoices, pool=D("100"), chosen=2)
    assert rows == [Allocation(10, 2, D("5"))]


def test_the_pool_caps_what_sources_still_show_after_a_refund() -> None:
    # 100 paid, 60 refunded out of unallocated money: only 40 may go to invoices
    rows = allocate([CreditSource(10, D("100"))], [OpenInvoice(1, DAY, D("70"))], pool=D("40"))
    assert rows == [Allocation(10, 1, D("40"))]


def test_a_refund_uses_free_money_first_then_reopens_the_newest_invoice() -> None:
    old, new = OpenInvoice(1, DAY, D("30"), D("30")), OpenInvoice(2, DAY + timedelta(days=31), D("20"), D("20"))
    placed = [Placed(10, old, D("30")), Placed(10, new, D("20"))]
    assert take_back(D("5"), D("10"), placed) == []
    assert take_back(D("25"), D("10"), placed) == [Allocation(10, 2, D("-15"))]
    assert take_back(D("45"), D("0"), placed) == [Allocation(10, 2, D("-20")), Allocation(10, 1, D("-25"))]


money = st.decimals(min_value=D("0.01"), max_value=D("1000"), places=2)


@given(
    st.lists(money, min_size=0, max_size=6),
    st.lists(st.tuples(money, st.integers(0, 400)), min_size=0, max_size=6),
    st.decimals(min_value=D("0"), max_value=D("3000"), places=2),
)
def test_never_over_allocates_and_fills_oldest_first(
    paid: list[Decimal], owed: list[tuple[Decimal, int]], pool: Decimal
) -> None:
    sources = [CreditSource(i + 1, amount) for i, amount in enumerate(paid)]
    invoices = [OpenInvoice(100 + i, DAY + timedelta(days=age), total) for i, (total, age) in enumerate(owed)]
    rows = allocate(sources, invoices, pool)
    per_source: dict[int, Decimal] = defaultdict(Decimal)
    per_invoice: dict[int, Decimal] = defaultdict(Decimal)
    for row in rows:
        assert row.amount > 0
        per_source[row.source_id] += row.amount
        per_invoice[row.invoice_id] += row.amount
    assert all(per_source[s.id] <= s.amount for s in sources)
    assert all(per_invoice[i.id] <= i.total for i in invoices)
    placed = sum(per_source.values(), D(0))
    assert placed <= pool
    # as much as possible is placed: the least of the money, the pool and what is owed
    assert placed == min(sum(paid, D(0)), pool, sum((t for t, _a in owed), D(0)))
    # oldest first: an invoice receives money only once every older one is paid in full
    ordered = sorted(invoices, key=lambda i: i.order)
    for older, newer in itertools.pairwise(ordered):
        if per_invoice[newer.id] > 0:
            assert per_invoice[older.id] == older.total


@given(
    st.lists(st.tuples(money, st.integers(0, 400)), min_size=0, max_size=6),
    money,
    st.decimals(min_value=D("0"), max_value=D("500"), places=2),
)
def test_take_back_never_takes_more_than_placed_and_exactly_what_is_missing(
    placed_amounts: list[tuple[Decimal, int]], refund: Decimal, free: Decimal
) -> None:
    placed = [
        Placed(1, OpenInvoice(100 + i, DAY + timedelta(days=age), amount, amount), amount)
        for i, (amount, age) in enumerate(placed_amounts)
    ]
    rows = take_back(refund, free, placed)
    taken: dict[int, Decimal] = defaultdict(Decimal)
    for row in rows:
        assert row.amount < 0
        taken[row.invoice_id] -= row.amount
    assert all(taken[p.invoice.id] <= p.amount for p in placed)
    total_placed = sum((p.amount for p in placed), D(0))
    assert sum(taken.values(), D(0)) == min(max(refund - free, D(0)), total_placed)
