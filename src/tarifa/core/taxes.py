"""Taxes on an invoice: the contract between the invoice run and a tax engine.

The invoice run (``tarifa.services.invoicing``) hands a tax engine the invoice's taxable lines and the
customer's tax facts; the engine answers with tax lines, each naming its base so that it can be
recomputed from the invoice alone (``amount = base × rate`` for a percentage tax). The built-in engine
(``tarifa.billing.taxes``) reads the operator's tax tables; another engine (a BillSoft-like service)
implements :class:`TaxEngine` and is chosen in configuration.

Pure: no Django, no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Protocol

__all__ = ["TaxCustomer", "TaxEngine", "TaxLine", "TaxableLine"]


@dataclass(frozen=True, slots=True)
class TaxableLine:
    """One invoice line before tax. ``section`` is a :class:`tarifa.core.invoices.LineSection` value;
    ``origin_country`` / ``origin_region`` say where the calls of a calls line came from (the caller's
    country, ISO 3166-1 alpha-2, and region code), for origin-based taxes; None when unknown or not a call."""

    key: str
    section: str
    description: str
    amount: Decimal
    origin_country: str | None = None
    origin_region: str | None = None


@dataclass(frozen=True, slots=True)
class TaxCustomer:
    """What a tax engine knows of the customer billed."""

    customer_id: int
    country: str  # ISO 3166-1 alpha-2, "" when unknown
    region: str  # "" when unknown
    currency: str
    exempt: bool
    decimals: int  # the customer's billing decimals: tax amounts are rounded to them (half-up)


@dataclass(frozen=True, slots=True)
class TaxLine:
    """One tax on the invoice. ``rate`` is a percentage (None for a fixed amount); ``base`` the amount it
    was computed on (for a compounding tax, base includes the taxes before it)."""

    name: str
    rate: Decimal | None
    base: Decimal
    amount: Decimal
    compound: bool = False


class TaxEngine(Protocol):
    """Computes the taxes of one invoice. Must be deterministic: the same input gives the same lines."""

    def taxes(self, customer: TaxCustomer, lines: Sequence[TaxableLine], on: date) -> list[TaxLine]: ...
