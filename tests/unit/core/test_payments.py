"""The rule of operator money movements (core.payments): sign per kind, limits, refusals."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tarifa.core.payments import (
    MONEY_MAX,
    BalanceState,
    MoneyRequest,
    Refused,
    invoice_refusal,
    parse_amount,
    signed_amount,
)

STATE = BalanceState(balance=Decimal("40"), currency="USD", paid=Decimal("100"), refunded=Decimal("30"))


def req(
    kind: str = "payment", amount: str = "10", reference: str = "R-1", reason: str = "why", currency: str | None = None
) -> MoneyRequest:
    return MoneyRequest(kind=kind, amount=Decimal(amount), reference=reference, reason=reason, currency=currency)


@pytest.mark.parametrize(
    ("kind", "amount", "expected"),
    [
        ("payment", "10", "10"),
        ("credit", "2.5", "2.5"),
        ("refund", "10", "-10"),
        ("adjustment", "3", "3"),
        ("adjustment", "-3", "-3"),
    ],
)
def test_each_kind_moves_the_balance_its_way(kind: str, amount: str, expected: str) -> None:
    assert signed_amount(req(kind, amount), STATE) == Decimal(expected)


@pytest.mark.parametrize(
    ("request_", "field", "fragment"),
    [
        (req("payment", "0"), "amount", "must be greater than 0"),
        (req("payment", "-1"), "amount", "must be greater than 0"),
        (req("refund", "-1"), "amount", "must be greater than 0"),
        (req("adjustment", "0"), "amount", "must not be zero"),
        (req("payment", "0.0000001"), "amount", "at most 6 decimal places"),
        (req("payment", "1e30"), "amount", f"at most {MONEY_MAX}"),
        (req("gift"), "kind", "must be one of payment, credit, refund, adjustment"),
        (req(currency="EUR"), "currency", "must be the customer's currency USD"),
        (req(reference=""), "reference", "required"),
        (req(reference=" R"), "reference", "without leading or trailing spaces"),
        (req(reference="x" * 101), "reference", "at most 100 characters"),
        (req("credit", reason=""), "reason", "required for a credit"),
        (req("refund", reason=" "), "reason", "required for a refund"),
        (req("adjustment", reason=""), "reason", "required for an adjustment"),
        (req(reason="y" * 201), "reason", "at most 200 characters"),
        # 100 paid - 30 refunded = 70 refundable, but the balance is 40
        (req("refund", "71"), "amount", "payments not yet refunded (70)"),
        (req("refund", "41"), "amount", "must not exceed the balance (40)"),
    ],
)
def test_refusals_name_field_value_and_rule(request_: MoneyRequest, field: str, fragment: str) -> None:
    with pytest.raises(Refused) as caught:
        signed_amount(request_, STATE)
    assert caught.value.field == field
    assert fragment in str(caught.value)
    assert str(caught.value).startswith(f"{field.capitalize()} ")
    assert "is refused:" in str(caught.value)


def test_a_payment_needs_no_reason_and_a_refund_may_take_the_whole_refundable_balance() -> None:
    assert signed_amount(req("payment", reason=""), STATE) == Decimal(10)
    assert signed_amount(req("refund", "40"), STATE) == Decimal(-40)


def test_credits_are_never_cashed_out() -> None:
    credited = BalanceState(balance=Decimal("50"), currency="USD", paid=Decimal(0), refunded=Decimal(0))
    with pytest.raises(Refused, match="payments not yet refunded"):
        signed_amount(req("refund", "1"), credited)


def test_the_balance_after_must_fit_the_money_column() -> None:
    near = BalanceState(balance=MONEY_MAX - 1, currency="USD", paid=Decimal(0), refunded=Decimal(0))
    assert signed_amount(req("payment", "1"), near) == 1
    with pytest.raises(Refused, match="balance after it"):
        signed_amount(req("payment", "1.000001"), near)
    low = BalanceState(balance=-MONEY_MAX, currency="USD", paid=Decimal(0), refunded=Decimal(0))
    with pytest.raises(Refused, match="balance after it"):
        signed_amount(req("adjustment", "-0.000001"), low)


@pytest.mark.parametrize(
    "text", ["", "  ", "abc", "1,5", "NaN", "Infinity", "12.5.1", "1e3", "1E3", "2.5e-2", "-1e3", "1_000", "٣"]
)
def test_parse_amount_refuses_what_is_not_a_decimal_number(text: str) -> None:
    with pytest.raises(Refused) as caught:
        parse_amount(text)
    assert caught.value.field == "amount"


def test_parse_amount_is_exact() -> None:
    assert parse_amount(" 12.10 ") == Decimal("12.10")
    assert parse_amount("-2.50") == Decimal("-2.50") and parse_amount(".5") == Decimal("0.5")


@pytest.mark.parametrize(("text", "value"), [(" 5", "5"), ("5.00 ", "5"), ("+5", "5"), ("5.", "5"), (".5", "0.5")])
def test_parse_amount_accepts_and_normalises_the_usual_ways_of_writing_a_decimal(text: str, value: str) -> None:
    """attack-findings #8, decided: blanks around, a leading + and a bare decimal point are how
    people write amounts and are unambiguous; they are accepted and stored as the same number at
    every door (CLI, API, back office). What is ambiguous (1,5  1e3  1_000) stays refused."""
    assert parse_amount(text) == Decimal(value)


def test_an_exponent_is_refused_saying_plain_notation() -> None:
    """User report I: `1e3` was taken as 1000."""
    with pytest.raises(Refused) as caught:
        parse_amount("1e3")
    assert "'1e3'" in str(caught.value) and "plain notation" in str(caught.value)
    assert parse_amount("-0.000001") == Decimal("-0.000001")


@given(
    st.sampled_from(["payment", "credit", "refund", "adjustment"]),
    st.decimals(min_value=Decimal("-1000"), max_value=Decimal("1000"), places=6, allow_nan=False),
)
def test_the_signed_amount_is_the_amount_or_its_opposite(kind: str, amount: Decimal) -> None:
    try:
        signed = signed_amount(req(kind, str(amount)), STATE)
    except Refused:
        return
    assert abs(signed) == abs(amount) and signed != 0
    assert (signed < 0) == (kind == "refund" or (kind == "adjustment" and amount < 0))


@pytest.mark.parametrize(
    ("money", "kind", "status", "rule"),
    [
        ("payment", "invoice", "issued", None),
        ("credit", "invoice", "issued", None),
        ("payment", "invoice", "paid", "it is already paid"),
        ("payment", "invoice", "void", "it is void"),
        ("payment", "invoice", "draft", "it is a draft: issue it before allocating money to it"),
        ("payment", "credit_note", "issued", "is a credit note: money is allocated only to an invoice"),
        ("refund", "invoice", "issued", "only a payment or a credit is allocated to an invoice, not a refund"),
    ],
)
def test_invoice_refusal_names_the_reason(money: str, kind: str, status: str, rule: str | None) -> None:
    assert invoice_refusal(money, kind, status) == rule
