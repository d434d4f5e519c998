"""The provider adapter's checks of what a provider answers: it is outside input."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tarifa.dids.providers import ProviderError, _money, _number


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ("-1", "not an amount from 0 to 999999.99"),
        ("NaN", "not an amount"),
        ("1e9", "not an amount from 0"),
        (1.5, "not an amount written as text"),
        (True, "not an amount written as text"),
        ("x", "not a decimal amount"),
    ],
)
def test_a_providers_amounts_are_checked(value: object, said: str) -> None:
    with pytest.raises(ProviderError, match=said):
        _money(value, "monthly cost")
    assert _money("0.50", "monthly cost") == Decimal("0.50")


@pytest.mark.parametrize("value", [None, 12125550100, "=cmd|' /C calc'!A0", "+1 212", "+999 1234 5678"])
def test_a_providers_numbers_are_checked(value: object) -> None:
    with pytest.raises(ProviderError, match="the provider's number"):
        _number(value)
    assert _number("+1 212 555 0100") == "12125550100"
