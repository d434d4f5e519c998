"""Number normalisation to E.164 digits (DESIGN section 4)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tarifa.core.numbering import InvalidNumber, is_e164_digits, normalize


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2125551234", "12125551234"),
        ("(212) 555-1234", "12125551234"),
        ("212.555.1234", "12125551234"),
        ("12125551234", "12125551234"),
        ("1 212 555 1234", "12125551234"),
        ("011442071234567", "442071234567"),
        ("011 44 20 7123 4567", "442071234567"),
        ("00442071234567", "442071234567"),
        ("+442071234567", "442071234567"),
        ("+1 (212) 555-1234", "12125551234"),
        ("411", "1411"),
        ("911", "1911"),
        ("\t212-555-1234 ", "12125551234"),
    ],
)
def test_nanp(raw: str, expected: str) -> None:
    assert normalize(raw, "nanp") == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("442071234567", "442071234567"),
        ("+44 20 7123 4567", "442071234567"),
        ("0044 20 7123 4567", "442071234567"),
        ("011 44 20 7123 4567", "442071234567"),
        ("12125551234", "12125551234"),
        ("1", "1"),
        ("123456789012345", "123456789012345"),
        ("+(33) 1.23.45.67.89", "33123456789"),
    ],
)
def test_e164(raw: str, expected: str) -> None:
    assert normalize(raw, "e164") == expected


@pytest.mark.parametrize(
    ("raw", "mode", "reason"),
    [
        ("", "e164", "empty"),
        ("  - ", "nanp", "empty"),
        ("+", "e164", "no digits after '+'"),
        ("12a45", "e164", "'a' is not a digit"),
        ("1234567890123456", "e164", "more than 15 digits"),
        ("+1234567890123456", "nanp", "more than 15 digits"),
        ("00", "e164", "no digits after the international prefix"),
        ("011", "nanp", "no digits after the international prefix"),
        ("0123", "e164", "a country code cannot start with 0"),
        ("000123", "e164", "a country code cannot start with 0"),
        ("5551234", "nanp", "7 digits"),
        ("22125551234", "nanp", "must start with 1"),
        ("311111", "nanp", "6 digits"),
        ("111", "nanp", "3 digits"),
        ("1+2", "e164", "'+' is not a digit"),
        ("١٢٣", "e164", "is not a digit"),  # Arabic-Indic digits are not E.164 digits
        ("9" * 100, "e164", "more than 15 digits"),
    ],
)
def test_invalid(raw: str, mode: str, reason: str) -> None:
    with pytest.raises(InvalidNumber) as info:
        normalize(raw, mode)
    assert reason in info.value.reason
    assert isinstance(info.value, ValueError)
    assert str(info.value).startswith(f"invalid number {raw[:10]!r}"[:-1])  # names the input


def test_unknown_mode_and_type() -> None:
    with pytest.raises(ValueError, match="dialing mode"):
        normalize("123", "uk")
    with pytest.raises(TypeError):
        normalize(12125551234, "e164")  # type: ignore[arg-type]


def test_is_e164_digits() -> None:
    assert is_e164_digits("442071234567")
    assert not is_e164_digits("")
    assert not is_e164_digits("0442")
    assert not is_e164_digits("1" * 16)
    assert not is_e164_digits("12 3")


@given(st.from_regex(r"[1-9][0-9]{0,14}", fullmatch=True))
def test_e164_digits_are_a_fixed_point(digits: str) -> None:
    assert normalize(digits, "e164") == digits
    assert normalize("+" + digits, "nanp") == digits
    assert normalize("00" + digits, "e164") == digits
    assert normalize(digits, "e164") == normalize(normalize(digits, "e164"), "e164")


@given(st.from_regex(r"[2-9][0-9]{9}", fullmatch=True))
def test_nanp_ten_digits(digits: str) -> None:
    assert normalize(digits, "nanp") == "1" + digits
    formatted = f"({digits[:3]}) {digits[3:6]}-{digits[6:]}"
    assert normalize(formatted, "nanp") == "1" + digits
