"""Billing cycles and invoice composition (tarifa.core.invoicing), without a database."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tarifa.core.invoices import InvoiceFigures, LineSection, check_invoice
from tarifa.core.invoicing import (
    SUBTOTAL_SECTIONS,
    CallGroup,
    Cycle,
    CycleKind,
    Discount,
    DiscountKind,
    Item,
    Period,
    PeriodData,
    UsageGroup,
    compose,
    cycle_problems,
    discount_amount,
    ended_periods_in,
    last_ended_period,
    next_period,
    parse_period,
    period_of,
)
from tarifa.core.taxes import TaxableLine, TaxCustomer, TaxLine

D = Decimal
CUSTOMER = TaxCustomer(1, "US", "", "USD", False, 2)


class Percent:
    """A test engine: one percentage tax on the whole taxable base, rounded half-up."""

    def __init__(self, rate: str) -> None:
        self.rate = D(rate)

    def taxes(self, customer: TaxCustomer, lines: Sequence[TaxableLine], on: date) -> list[TaxLine]:
        base = sum((line.amount for line in lines), D(0))
        if not self.rate:
            return []
        amount = (base * self.rate / 100).quantize(D(1).scaleb(-customer.decimals))
        return [TaxLine("VAT", self.rate, base, amount)]


def test_monthly_periods_start_on_the_day_and_shorter_months_on_their_last_day() -> None:
    cycle = Cycle(CycleKind.MONTHLY, day=31)
    assert period_of(cycle, date(2026, 2, 15)) == Period(date(2026, 1, 31), date(2026, 2, 27))
    assert period_of(cycle, date(2026, 2, 28)) == Period(date(2026, 2, 28), date(2026, 3, 30))
    first = period_of(Cycle(), date(2026, 11, 17))
    assert first == Period(date(2026, 11, 1), date(2026, 11, 30))
    assert first.label == "2026-11"
    assert next_period(Cycle(), first) == Period(date(2026, 12, 1), date(2026, 12, 31))


def test_weekly_and_custom_periods() -> None:
    weekly = Cycle(CycleKind.WEEKLY, weekday=0)
    assert period_of(weekly, date(2026, 12, 3)) == Period(date(2026, 11, 30), date(2026, 12, 6))
    custom = Cycle(CycleKind.CUSTOM, every_days=10, anchor=date(2026, 1, 5))
    assert period_of(custom, date(2026, 1, 14)) == Period(date(2026, 1, 5), date(2026, 1, 14))
    assert period_of(custom, date(2026, 1, 4)) == Period(date(2025, 12, 26), date(2026, 1, 4))
    assert period_of(custom, date(2026, 1, 15)).label == "2026-01-15..2026-01-24"


def test_a_period_ends_at_local_midnight_and_the_last_ended_one_is_in_the_customers_days() -> None:
    paris = ZoneInfo("Europe/Paris")
    nov = Period(date(2026, 11, 1), date(2026, 11, 30))
    assert nov.bounds(paris) == (datetime(2026, 10, 31, 23, tzinfo=UTC), datetime(2026, 11, 30, 23, tzinfo=UTC))
    # 23:30 UTC on Nov 30 is already December 1 in Paris, still November in New York
    now = datetime(2026, 11, 30, 23, 30, tzinfo=UTC)
    assert last_ended_period(Cycle(), paris, now) == nov
    assert last_ended_period(Cycle(), ZoneInfo("America/New_York"), now).label == "2026-10"


def test_periods_ending_in_a_range_and_the_period_syntax() -> None:
    weekly = Cycle(CycleKind.WEEKLY, weekday=0)
    ends = [p.end for p in ended_periods_in(weekly, date(2026, 11, 1), date(2026, 11, 30))]
    assert ends == [date(2026, 11, 1), date(2026, 11, 8), date(2026, 11, 15), date(2026, 11, 22), date(2026, 11, 29)]
    assert parse_period("2026-02") == Period(date(2026, 2, 1), date(2026, 2, 28))
    assert parse_period("2026-11-15..2026-12-14") == Period(date(2026, 11, 15), date(2026, 12, 14))
    for bad in ("2026-13", "2026-1", "november", "2026-12-01..2026-11-01", ""):
        with pytest.raises(ValueError, match="is refused"):
            parse_period(bad)


def test_cycle_rules_name_the_field() -> None:
    (p,) = cycle_problems(Cycle(CycleKind.CUSTOM, every_days=0))
    assert (p.field, p.value) == ("every_days", 0)
    assert cycle_problems(Cycle(CycleKind.MONTHLY, day=32))[0].field == "day"
    assert cycle_problems(Cycle(CycleKind.WEEKLY, weekday=7))[0].field == "weekday"
    assert cycle_problems(Cycle()) == []


def test_discounts_never_exceed_the_base_nor_go_negative() -> None:
    assert discount_amount(Discount(DiscountKind.PERCENT, D("10")), D("33.33"), 2) == D("3.33")
    assert discount_amount(Discount(DiscountKind.FIXED, D("50")), D("20"), 2) == D("20")
    assert discount_amount(Discount(DiscountKind.FIXED, D("5")), D("-3"), 2) == 0
    assert discount_amount(Discount(), D("100"), 2) == 0


def test_an_invoice_from_its_period() -> None:
    data = PeriodData(
        calls=[CallGroup("UK", 3, 180, D("0.6000")), CallGroup("US", 1, 60, D("0.0100"))],
        usage=[UsageGroup("Paris office", 4, 240, D("0.6100"))],
        items=[
            Item(LineSection.SERVICES, "Monthly fee", D("30")),
            Item(LineSection.PENALTY, "Late payment", D("5")),
            Item(LineSection.DEPOSIT, "Deposit held", D("100")),
        ],
    )
    comp = compose(data, Discount(DiscountKind.PERCENT, D("10")), Percent("20"), CUSTOMER, date(2026, 11, 30))
    assert comp.discount == D("3.06")  # 10 % of 30.61
    assert comp.subtotal == D("130.61")  # calls + services + deposit
    assert comp.tax == D("5.51")  # 20 % of 30.61 - 3.06 = 27.55
    assert comp.penalty == D("5")
    assert comp.total == D("130.61") - D("3.06") + D("5") + D("5.51")
    sections = [line.section for line in comp.lines]
    assert sections == sorted(sections, key=list(LineSection).index)
    assert sum(line.amount for line in comp.lines if line.section != LineSection.USAGE) == comp.total
    assert next(line.description for line in comp.lines if line.section == LineSection.CALLS).startswith("UK: 3 call")


def test_a_refund_of_penalties_is_an_adjustment_so_the_penalty_stays_positive() -> None:
    data = PeriodData(items=[Item(LineSection.PENALTY, "Penalty reversed", D("-5"))])
    comp = compose(data, Discount(), Percent("0"), CUSTOMER, date(2026, 11, 30))
    assert comp.penalty == 0
    assert comp.lines[0].section == LineSection.ADJUSTMENT
    assert comp.total == D("-5")


money = st.decimals(min_value=D("-1000"), max_value=D("100000"), places=4, allow_nan=False, allow_infinity=False)
charge = st.decimals(min_value=D("0"), max_value=D("100000"), places=6, allow_nan=False, allow_infinity=False)
sections = st.sampled_from([LineSection.SERVICES, LineSection.PENALTY, LineSection.DEPOSIT, LineSection.ADJUSTMENT])


@given(
    calls=st.lists(st.tuples(st.text(max_size=5), st.integers(0, 999), st.integers(0, 99999), charge), max_size=6),
    items=st.lists(st.tuples(sections, money), max_size=6),
    discount=st.one_of(
        st.builds(Discount, st.just(DiscountKind.PERCENT), st.decimals(0, 100, places=2)),
        st.builds(Discount, st.just(DiscountKind.FIXED), st.decimals(0, 500, places=2)),
        st.just(Discount()),
    ),
    rate=st.sampled_from(["0", "5", "19.6", "20", "27"]),
    decimals=st.integers(0, 6),
)
def test_the_total_is_the_sum_of_its_parts_to_the_last_decimal(calls, items, discount, rate, decimals) -> None:  # type: ignore[no-untyped-def]
    data = PeriodData(
        calls=[CallGroup(dest, n, s, amount) for dest, n, s, amount in calls],
        items=[Item(section, f"item {i}", amount) for i, (section, amount) in enumerate(items)],
    )
    customer = TaxCustomer(1, "US", "", "USD", False, decimals)
    comp = compose(data, discount, Percent(rate), customer, date(2026, 11, 30))
    charges = sum((g.amount for g in data.calls), D(0)) + sum((i.amount for i in data.items), D(0))
    # what the ledger holds for the period, once the run posted discount (+) and tax (-): minus the total
    assert comp.total == charges - comp.discount + comp.tax_posted
    assert comp.total == sum((line.amount for line in comp.lines if line.section != LineSection.USAGE), D(0))
    assert comp.subtotal == sum((line.amount for line in comp.lines if line.section in SUBTOTAL_SECTIONS), D(0))
    assert comp.discount >= 0 and comp.penalty >= 0 and comp.tax >= 0
    figures = InvoiceFigures(None, None, "USD", "USD", comp.subtotal, comp.discount, comp.penalty, comp.tax, comp.total)
    assert check_invoice(figures) == []


# --- credit notes: net and tax in the invoice's proportions (new-user finding #7) -------------


def _vat(base: str, amount: str, name: str = "VAT 20%", rate: str | None = "20") -> TaxLine:
    return TaxLine(name, D(rate) if rate is not None else None, D(base), D(amount))


def test_a_credit_on_a_taxed_invoice_carries_its_tax_like_an_invoice_tax_line() -> None:
    from tarifa.core.invoicing import credit_split
    from tarifa.core.taxes import check_tax_line

    # invoice: 100.00 net + 20.00 VAT = 120.00; a credit of 12.50 (tax included)
    split = credit_split(D("12.50"), D("120.00"), [_vat("100.00", "20.00")], D(0), [], 2)
    (tax,) = split.taxes
    assert (tax.base, tax.amount, tax.rate) == (D("10.42"), D("2.08"), D("20"))
    assert check_tax_line(tax, 2) == []  # recomputes from its base, like the invoice's tax line
    assert split.net == D("10.42") and split.net + split.tax == D("12.50")
    # crediting the rest credits exactly what is left of each tax: none remains
    rest = credit_split(D("107.50"), D("120.00"), [_vat("100.00", "20.00")], D("12.50"), [tax], 2)
    assert (rest.taxes[0].base, rest.taxes[0].amount, rest.net) == (D("89.58"), D("17.92"), D("89.58"))
    # an invoice without tax, or a tax-free total: all net
    assert credit_split(D("5"), D("50"), [], D(0), [], 2).net == D("5")


def test_a_credit_split_over_several_and_fixed_taxes_never_exceeds_the_amount() -> None:
    from tarifa.core.invoicing import credit_split

    taxes = [_vat("100", "20"), _vat("120", "6", "QST", "5"), _vat("0", "1.00", "Fee", None)]
    split = credit_split(D("12.70"), D("127.00"), taxes, D(0), [], 2)  # a tenth of the invoice
    assert [(t.name, t.base, t.amount) for t in split.taxes] == [
        ("VAT 20%", D("10.00"), D("2.00")),
        ("QST", D("12.00"), D("0.60")),
        ("Fee", D("0.00"), D("0.10")),
    ]
    assert split.net == D("10.00")
    tiny = credit_split(D("0.01"), D("127.00"), taxes, D(0), [], 2)
    assert tiny.net >= 0 and tiny.net + tiny.tax == D("0.01")
