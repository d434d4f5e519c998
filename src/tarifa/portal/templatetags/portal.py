"""Template filters of the portal."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django import template

register = template.Library()


@register.filter
def money(value: object, places: object = 4) -> str:
    """An amount with at most ``places`` decimals (the customer's billing decimals) and at least 2:
    106.077700 -> 106.0777, 5.000000 -> 5.00. Never a float."""
    try:
        amount = Decimal(str(value))
        digits = max(2, min(6, int(str(places))))
    except (InvalidOperation, ValueError):
        return str(value)
    text = f"{amount.quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP):f}"
    whole, _, fraction = text.partition(".")
    fraction = fraction.rstrip("0").ljust(2, "0")
    return f"{whole}.{fraction}"
