"""The tax engine the invoice run uses (:func:`tax_engine`), behind :class:`tarifa.core.taxes.TaxEngine`.

Until the operator's tax tables exist, the built-in engine applies the customer's own "VAT/Tax flag"
and "Tax rate (%)" as one percentage tax on the whole invoice.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from tarifa.core.taxes import TaxableLine, TaxCustomer, TaxEngine, TaxLine

__all__ = ["CustomerRateEngine", "tax_engine"]


class CustomerRateEngine:
    """One percentage tax per customer: its ``tax_rate`` under its ``tax_flag`` name."""

    def __init__(self, rates: dict[int, tuple[str, Decimal]]) -> None:
        self._rates = rates  # customer id -> (tax name, percent)

    def taxes(self, customer: TaxCustomer, lines: Sequence[TaxableLine], on: date) -> list[TaxLine]:
        name, rate = self._rates.get(customer.customer_id, ("", Decimal(0)))
        if customer.exempt or not rate:
            return []
        base = sum((line.amount for line in lines), Decimal(0))
        amount = (base * rate / 100).quantize(Decimal(1).scaleb(-customer.decimals), rounding=ROUND_HALF_UP)
        return [TaxLine(name=name, rate=rate, base=base, amount=amount)]


def tax_engine(customer_ids: Sequence[int]) -> TaxEngine:
    """The engine for an invoice run over these customers (loads what it needs in one query)."""
    from tarifa.customers.models import Customer

    rows = (
        Customer.objects.filter(pk__in=customer_ids).exclude(tax_flag="NONE").values_list("pk", "tax_flag", "tax_rate")
    )
    return CustomerRateEngine({pk: (flag, rate) for pk, flag, rate in rows})
