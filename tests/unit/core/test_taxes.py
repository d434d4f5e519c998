"""Taxes of the built-in tables (core.taxes): percentage, fixed, origin-based, compounding, exemptions,
validity, and every tax line recomputing from its base. Pure: no database."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tarifa.core.taxes import (
    TaxableLine,
    TaxCustomer,
    TaxLine,
    TaxRefused,
    TaxRule,
    applies,
    check_duplicate,
    check_order,
    check_rule,
    check_tax_line,
    compute,
    parse_rate,
)

D = Decimal
DAY = date(2026, 6, 30)


def cust(**kw: object) -> TaxCustomer:
    base: dict[str, object] = {
        "customer_id": 1,
        "country": "US",
        "region": "CA",
        "currency": "USD",
        "exempt": False,
        "decimals": 2,
        "flag": "VAT",
        "path": "OP/R1/C1/",
    }
    base.update(kw)
    return TaxCustomer(**base)  # type: ignore[arg-type]


def line(amount: str, section: str = "services", country: str | None = None, region: str | None = None) -> TaxableLine:
    return TaxableLine(f"k{amount}{section}{country}", section, "x", D(amount), country, region)


def pct(name: str, rate: str, order: int = 0, **kw: object) -> TaxRule:
    kw.setdefault("flag", "VAT")
    kw.setdefault("key", name)
    return TaxRule(name=name, kind="percent", rate=D(rate), order=order, **kw)  # type: ignore[arg-type]


def test_a_percentage_tax_is_base_times_rate_rounded_half_up_to_the_billing_decimals() -> None:
    [tax] = compute(cust(), [line("10.05"), line("0.10", "calls")], [pct("VAT", "20")], DAY)
    assert (tax.name, tax.rate, tax.base, tax.amount) == ("VAT", D(20), D("10.15"), D("2.03"))
    [half] = compute(cust(), [line("0.125")], [pct("T", "10")], DAY)  # 0.0125 -> 0.01
    assert half.amount == D("0.01")
    [up] = compute(cust(decimals=3), [line("0.125")], [pct("T", "10")], DAY)  # 0.0125 -> 0.013 (half-up)
    assert up.amount == D("0.013")


def test_several_taxes_apply_in_order_and_a_compounding_one_includes_the_earlier_taxes() -> None:
    rules = [pct("QST", "9.975", 2, compound=True), pct("GST", "5", 1)]
    gst, qst = compute(cust(), [line("100")], rules, DAY)
    assert (gst.name, gst.amount) == ("GST", D("5.00"))
    assert (qst.name, qst.base, qst.amount, qst.compound) == ("QST", D("105.00"), D("10.47"), True)
    plain = compute(cust(), [line("100")], [pct("QST", "9.975", 2), pct("GST", "5", 1)], DAY)
    assert plain[1].base == D(100) and plain[1].amount == D("9.98")


def test_a_fixed_tax_is_its_amount_in_the_customers_currency_and_another_currency_is_refused() -> None:
    fee = TaxRule(name="911 fee", kind="fixed", rate=D("1.5"), flag="VAT", currency="USD", key="f")
    [tax] = compute(cust(), [line("3")], [fee], DAY)
    assert (tax.rate, tax.amount, tax.fixed) == (None, D("1.50"), True)
    assert compute(cust(), [], [fee], DAY) == []  # nothing taxable, no fee
    euro = TaxRule(name="EU fee", kind="fixed", rate=D("1"), flag="VAT", currency="EUR", key="e")
    with pytest.raises(
        TaxRefused, match=r"Tax 'EU fee' currency 'EUR' is refused: must be the customer's currency USD"
    ):
        compute(cust(), [line("3")], [euro], DAY)


def test_an_origin_based_tax_takes_only_the_calls_from_its_origin() -> None:
    lines = [
        line("10", "calls", "US", "CA"),
        line("20", "calls", "US", "NY"),
        line("40", "calls", "GB"),
        line("5", "services"),
    ]
    ca = pct("CA 911", "10", origin_country="US", origin_region="CA")
    us = pct("US USF", "1", origin_country="US")
    a, b = compute(cust(), lines, [ca, us], DAY)
    assert (a.name, a.base, a.amount) == ("CA 911", D(10), D("1.00"))
    assert (b.name, b.base, b.amount) == ("US USF", D(30), D("0.30"))


def test_exempt_customers_flag_none_and_validity_and_scope() -> None:
    vat = pct("VAT", "20", valid_from=date(2026, 1, 1), valid_to=date(2026, 7, 1))
    assert compute(cust(exempt=True), [line("10")], [vat], DAY) == []
    assert compute(cust(flag="NONE"), [line("10")], [vat], DAY) == []
    assert compute(cust(flag="TAX"), [line("10")], [vat], DAY) == []
    assert compute(cust(), [line("10")], [vat], date(2026, 7, 1)) == []  # valid_to is the first day without it
    assert compute(cust(), [line("10")], [vat], date(2025, 12, 31)) == []
    scoped = pct("Reseller tax", "5", scope_path="OP/R1/")
    assert applies(scoped, cust(), DAY) and not applies(scoped, cust(path="OP/R2/C9/"), DAY)


def test_usage_deposit_penalty_and_tax_lines_are_not_taxed() -> None:
    lines = [line("10"), line("10", "usage"), line("10", "deposit"), line("10", "penalty"), line("-2", "discount")]
    [tax] = compute(cust(), lines, [pct("VAT", "10")], DAY)
    assert tax.base == D(8)


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (pct("A", "-1"), "Rate (%) -1 is refused: must not be negative"),
        (pct("A", "0"), "Rate (%) 0 is refused: must be above 0"),
        (pct("A", "100.5"), "Rate (%) 100.5 is refused: must be at most 100"),
        (pct("A", "1.23456"), "Rate (%) 1.23456 is refused: must have at most 4 decimal places"),
        (pct("A", "NaN"), "Rate (%) NaN is refused: must be a finite decimal number"),
        (TaxRule(name="F", kind="fixed", rate=D(1), flag="VAT", key="F"), "Currency (empty) is refused: a fixed tax"),
        (
            TaxRule(name="F", kind="fixed", rate=D(1), flag="VAT", currency="EUR", scope_currency="USD", key="F"),
            "Currency 'EUR' is refused: must be the currency of the customers it applies to (USD)",
        ),
        (pct("A", "5", compound=True, origin_country="US"), "Compound 'on' is refused: an origin-based tax cannot"),
        (pct("A", "5", origin_region="CA"), "Origin region 'CA' is refused: needs the origin country"),
        (pct("A", "5", flag="NONE"), "Applies to flag 'NONE' is refused: must be VAT or TAX"),
        (pct("A", "5", valid_from=DAY, valid_to=DAY), "Valid to 2026-06-30 is refused: must be after valid from"),
    ],
)
def test_bad_tax_rows_are_refused_by_field_value_and_rule(rule: TaxRule, message: str) -> None:
    assert any(str(p).startswith(message) for p in check_rule(rule)), [str(p) for p in check_rule(rule)]


def test_malformed_typed_rates_are_refused() -> None:
    assert parse_rate(" 7.5 ") == D("7.5")
    for text in ("abc", "1e3", "Infinity", ""):
        with pytest.raises(TaxRefused, match=r"Rate .* is refused: must be a decimal number in plain notation"):
            parse_rate(text)


def test_a_compounding_tax_at_the_same_order_as_another_is_refused_as_a_loop() -> None:
    a = pct("A", "5", 1, compound=True)
    b = pct("B", "5", 1, compound=True)
    [problem] = check_order(a, [b])
    assert str(problem).startswith("Order 1 is refused: tax 'B' has the same order") and problem.code == "compound_loop"
    assert check_order(a, [pct("B", "5", 2)]) == []
    later = pct("A", "5", 1, compound=True, valid_from=date(2026, 1, 1))
    assert check_order(later, [pct("B", "5", 1, valid_to=date(2026, 1, 1))]) == []  # one ends as the other starts
    assert check_order(pct("X", "5", 1), [pct("Y", "5", 1)]) == []  # neither compounds: order does not matter
    assert check_order(a, [pct("B", "5", 1, scope_path="OP/R1/")]) != []  # overlapping scope


def test_a_second_row_of_the_same_tax_for_the_same_customers_and_days_is_refused() -> None:
    vat = pct("VAT 20%", "20", key="1")  # type: ignore[arg-type]
    [problem] = check_duplicate(pct(" vat  20% ", "20", key="new"), [vat])  # type: ignore[arg-type]
    assert problem.field == "name" and problem.code == "duplicate"
    assert str(problem).startswith("Name ' vat  20% ' is refused: tax 1 'VAT 20%' has the same name and applies")
    assert check_duplicate(pct("VAT 20%", "20", key="new", scope_path="OP/R1/"), [vat]) != []  # type: ignore[arg-type]
    assert check_duplicate(pct("VAT 20%", "20", key="1"), [vat]) == []  # type: ignore[arg-type]  # the row itself
    # a successor starting the day the old row ends, another flag, origin or scope, another name: no duplicate
    ended = pct("VAT 20%", "20", key="1", valid_to=date(2026, 1, 1))  # type: ignore[arg-type]
    assert check_duplicate(pct("VAT 20%", "21", key="new", valid_from=date(2026, 1, 1)), [ended]) == []  # type: ignore[arg-type]
    assert check_duplicate(pct("VAT 20%", "20", key="new", flag="TAX"), [vat]) == []  # type: ignore[arg-type]
    fr = pct("VAT 20%", "20", key="1", origin_country="FR")  # type: ignore[arg-type]
    assert check_duplicate(pct("VAT 20%", "20", key="new", origin_country="GB"), [fr]) == []  # type: ignore[arg-type]
    assert check_duplicate(pct("VAT 20%", "20", key="new"), [fr]) != []  # type: ignore[arg-type]  # all lines vs FR
    r1 = pct("VAT 20%", "20", key="1", scope_path="OP/R1/")  # type: ignore[arg-type]
    assert check_duplicate(pct("VAT 20%", "20", key="new", scope_path="OP/R2/"), [r1]) == []  # type: ignore[arg-type]
    assert check_duplicate(pct("GST", "20", key="new"), [vat]) == []  # type: ignore[arg-type]


def test_check_tax_line_recomputes_from_the_base() -> None:
    assert check_tax_line(TaxLine("VAT", D(20), D("10.15"), D("2.03")), 2) == []
    [problem] = check_tax_line(TaxLine("VAT", D(20), D("10.15"), D("2.04")), 2)
    assert str(problem) == "Tax 'VAT' amount 2.04 is refused: must be base × rate: 10.15 × 20% = 2.03"
    assert check_tax_line(TaxLine("fee", None, D(3), D("1.50"), fixed=True)) == []
    assert check_tax_line(TaxLine("fee", None, D(3), D("-1"), fixed=True)) != []


amounts = st.decimals(min_value=-1000, max_value=100000, places=4)
rates = st.decimals(min_value="0.0001", max_value=100, places=4)


@given(
    st.lists(st.tuples(amounts, st.sampled_from(["calls", "services", "usage", "discount"])), max_size=8),
    st.lists(st.tuples(rates, st.booleans()), min_size=1, max_size=4),
    st.integers(0, 6),
)
def test_every_computed_tax_line_recomputes_from_its_base(
    raw_lines: list[tuple[Decimal, str]], raw_rules: list[tuple[Decimal, bool]], decimals: int
) -> None:
    lines = [TaxableLine(str(i), s, "x", a) for i, (a, s) in enumerate(raw_lines)]
    rules = [pct(f"T{i}", str(r), i, compound=c) for i, (r, c) in enumerate(raw_rules)]
    out = compute(cust(decimals=decimals), lines, rules, DAY)
    for tax in out:
        assert check_tax_line(tax) == []
        assert check_tax_line(tax, decimals) == []
    taxable = sum((ln.amount for ln in lines if ln.section != "usage"), D(0))
    for i, tax in enumerate(out):  # each base is the taxable total, plus the earlier taxes when compounding
        earlier = sum((t.amount for t in out[:i]), D(0))
        assert tax.base == (taxable + earlier if tax.compound else taxable)


@given(st.lists(rates, min_size=1, max_size=4), st.permutations(range(4)), amounts)
def test_without_compounding_the_order_does_not_change_the_total(
    raw: list[Decimal], order: list[int], amount: Decimal
) -> None:
    rules = [pct(f"T{i}", str(r), i) for i, r in enumerate(raw)]
    reordered = [pct(f"T{i}", str(r), order[i] if order[i] < len(raw) else 9) for i, r in enumerate(raw)]
    total = sum((t.amount for t in compute(cust(), [line(str(amount))], rules, DAY)), D(0))
    again = sum((t.amount for t in compute(cust(), [line(str(amount))], reordered, DAY)), D(0))
    assert total == again


def test_a_stored_rate_with_trailing_zeros_is_not_refused_for_its_places() -> None:
    """The database gives 20 back as 20.000000: a stored tax must pass its own check again."""
    assert [p for p in check_rule(pct("A", "20.000000")) if p.code == "places"] == []
    assert [p.code for p in check_rule(pct("A", "1.234560"))] == ["places"]
