"""Amounts as people read them: with their currency's decimals.

Why: stored amounts keep up to six decimals (a per-minute rate, a prorated fee), so printing
them as stored gives ``7.000000`` for a seven-dollar penalty and a column mixing ``0.35``,
``0.5``, ``0`` and ``1.2``. A shown amount has the currency's minor-unit decimals (ISO 4217),
and more only where the amount has them: a shown digit is never rounded away.
"""

from __future__ import annotations

from decimal import Decimal
from functools import cache
from typing import Any, Final

#: the locale of amounts shown (the invoice PDF's and the command line's)
LOCALE: Final = "en_US"


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


@cache
def _pattern(decimals: int) -> tuple[Any, Any]:
    from babel import Locale
    from babel.numbers import parse_pattern

    pattern = "¤#,##0" + ("." + "0" * decimals if decimals > 0 else "")
    return Locale.parse(LOCALE), parse_pattern(pattern)


def format_money(amount: Decimal, currency: str, decimals: int | None = None) -> str:
    """The one way an amount of money is shown to people, in the invoice PDF and on the command line:
    the currency's sign (Babel, ``en_US``: ``$``, ``€``, ``CA$``), thousands separated, and at least
    ``decimals`` decimals (the customer's billing decimals; None: the currency's minor unit), more only
    when the amount has them (a digit is never rounded away): ``format_money(Decimal("1234.5"), "USD",
    4)`` is ``$1,234.5000``, ``-12.5`` in EUR with 2 is ``-€12.50``."""
    places = minor_unit(currency) if decimals is None else decimals
    locale, pattern = _pattern(places)
    return str(pattern.apply(amount, locale, currency=currency, currency_digits=False, decimal_quantization=False))


__all__ = ["LOCALE", "format_money", "minor_unit", "shown_amount"]
