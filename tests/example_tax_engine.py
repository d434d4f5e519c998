"""An external tax engine, as an operator would plug one in with
``TARIFA_TAX_ENGINE=tests.example_tax_engine:FlatStateEngine`` (docs/taxes.md, "Another tax engine"):
a plain class with a ``taxes`` method; nothing of Tarifa's is imported at module level, so the start-up
check can import it before Django is set up."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from tarifa.core.taxes import TaxableLine, TaxCustomer, TaxLine


class FlatStateEngine:
    """A 7.25% state sales tax on calls and services, for customers in the US; none elsewhere."""

    RATE = Decimal("7.25")

    def __init__(self) -> None:
        self.asked: list[int] = []

    def taxes(self, customer: TaxCustomer, lines: Sequence[TaxableLine], on: date) -> list[TaxLine]:
        self.asked.append(customer.customer_id)
        if customer.exempt or customer.country != "US":
            return []
        base = sum((ln.amount for ln in lines if ln.section in ("calls", "services")), Decimal(0))
        amount = (base * self.RATE / 100).quantize(Decimal(1).scaleb(-customer.decimals), rounding=ROUND_HALF_UP)
        return [TaxLine("State sales tax", self.RATE, base, amount, decimals=customer.decimals)]


class NotAnEngine:
    """Has no taxes() method: TARIFA_TAX_ENGINE pointing here is refused at start-up."""
