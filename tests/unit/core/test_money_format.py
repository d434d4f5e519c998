"""The one money formatter (tarifa.core.money.format_money) of the invoice PDF and the command line
(new-user finding #3: 4 decimals here, 3 there, 6 in a third place)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tarifa.core.money import format_money

D = Decimal


@pytest.mark.parametrize(
    ("amount", "currency", "decimals", "shown"),
    [
        ("118.342100", "USD", 4, "$118.3421"),  # stored with 6 places: shown with the billing decimals
        ("0.773", "USD", 4, "$0.7730"),  # padded, not trimmed: one width in a column
        ("16.906", "USD", 2, "$16.906"),  # more decimals than asked: never rounded away
        ("1234567.5", "USD", 2, "$1,234,567.50"),  # thousands separated, as the PDF shows them
        ("-12.5", "EUR", 2, "-€12.50"),
        ("300", "USD", None, "$300.00"),  # no billing decimals: the currency's minor unit
        ("1500", "JPY", None, "¥1,500"),
        ("0", "USD", 4, "$0.0000"),
    ],
)
def test_format_money(amount: str, currency: str, decimals: int | None, shown: str) -> None:
    assert format_money(D(amount), currency, decimals) == shown
