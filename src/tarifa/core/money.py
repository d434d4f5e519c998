"""Amounts as people read them: with their currency's decimals.

Why: stored amounts keep up to six decimals (a per-minute rate, a prorated fee), so printing
them as stored gives ``7.000000`` for a seven-dollar penalty and a column mixing ``0.35``,
``0.5``, ``0`` and ``1.2``. A shown amount has the currency's minor-unit decimals (ISO 4217),
and more only where the amount has them: a shown digit is never rounded away.
"""

from __future__ import annotations

from decimal import Decimal
from functools import cache


@cache
def minor_unit(currency: str) -> int:
    """Decimal places of the currency's minor unit (ISO 4217 via Babel: USD 2, JPY 0, BHD 3)."""
    from babel.numbers import get_currency_precision

    return int(get_currency_precision(currency))


def shown_amount(amount: Decimal, decimals: int) -> str:
    """``amount`` with at least ``decimals`` decimals, more only when it has more
    (``7.000000`` -> ``7.00``; ``0.5`` -> ``0.50``; ``0.0125`` -> ``0.0125``)."""
    exponent = amount.normalize().as_tuple().exponent
    places = max(decimals, -exponent if isinstance(exponent, int) else 0)
    return f"{amount:.{places}f}"


__all__ = ["minor_unit", "shown_amount"]
