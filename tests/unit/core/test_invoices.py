"""Invoice arithmetic and life cycle (core.invoices), without a database."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from tarifa.core.invoices import InvoiceFigures, check_invoice, check_line, check_lines_sum, check_status_change

D = Decimal


def figures(**overrides: object) -> InvoiceFigures:
    base = dict(
        period_start=date(2026, 1, 1),
        period_end=date(2026, 1, 31),
        currency="USD",
        customer_currency="USD",
        subtotal=D(100),
        discount=D(10),
        penalty=D(5),
        tax=D("9.5"),
        total=D("104.5"),
    )
    return InvoiceFigures(**(base | overrides))  # type: ignore[arg-type]


def test_a_consistent_invoice_has_no_problem() -> None:
    assert check_invoice(figures()) == []
    assert check_invoice(figures(period_end=date(2026, 1, 1), period_start=date(2026, 1, 1))) == []


@pytest.mark.parametrize(
    ("overrides", "field", "code"),
    [
        ({"total": D(999)}, "total", "total"),
        ({"period_end": date(2025, 12, 31)}, "period_end", "period_order"),
        ({"currency": "EUR"}, "currency", "currency"),
        ({"discount": D(-1), "total": D("115.5")}, "discount", "negative"),
        ({"penalty": D(-1), "total": D("98.5")}, "penalty", "negative"),
        ({"tax": D(-1), "total": D(94)}, "tax", "negative"),
    ],
)
def test_each_broken_rule_is_one_problem_on_its_field(overrides: dict, field: str, code: str) -> None:
    problems = check_invoice(figures(**overrides))
    assert [(p.field, p.code) for p in problems] == [(field, code)]
    assert problems[0].code != "invalid"  # a form would replace an "invalid" message by its own


def test_line_amount_is_quantity_times_unit_price() -> None:
    assert check_line(D(1), D(5), D(5)) == []
    assert check_line(D(3), D("0.333333"), D("0.999999")) == []
    [problem] = check_line(D(1), D(5), D(7))
    assert (problem.field, problem.value) == ("amount", D(7)) and "1 × 5 = 5" in problem.rule
    # rounded to the customer's billing decimals, half-up
    assert check_line(D("1.5"), D("0.333333"), D("0.5000"), billing_decimals=4) == []
    assert check_line(D("1.5"), D("0.333333"), D("0.4999995"), billing_decimals=4)  # 7 places: not a money amount


def test_subtotal_is_the_sum_of_the_lines_when_there_are_lines() -> None:
    assert check_lines_sum(D(10), []) == []
    assert check_lines_sum(D(10), [D(4), D(6)]) == []
    [problem] = check_lines_sum(D(10), [D(5)])
    assert problem.field == "subtotal" and "(5)" in problem.rule


@pytest.mark.parametrize(
    ("stored", "wanted", "ok"),
    [
        ("draft", "issued", True),
        ("draft", "void", True),
        ("draft", "paid", False),
        ("issued", "paid", True),
        ("issued", "void", True),
        ("issued", "draft", False),
        ("paid", "void", False),
        ("paid", "draft", False),
        ("void", "issued", False),
        ("paid", "paid", True),
    ],
)
def test_status_moves_only_forwards(stored: str, wanted: str, ok: bool) -> None:
    assert (check_status_change(stored, wanted, {}) == []) is ok


def test_only_a_draft_changes_its_figures() -> None:
    assert check_status_change("draft", "draft", {"total": D(5)}) == []
    [problem] = check_status_change("issued", "paid", {"total": D(5)})
    assert (problem.field, problem.value, problem.code) == ("total", D(5), "immutable")
