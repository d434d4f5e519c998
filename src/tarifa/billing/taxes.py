"""The tax engine the invoice run uses (:func:`tax_engine`), behind :class:`tarifa.core.taxes.TaxEngine`.

``TARIFA_TAX_ENGINE=builtin`` (the default): :class:`TableTaxEngine`, the operator's tax tables
(:class:`~tarifa.billing.models.TaxRate`), customer exemptions (:class:`~tarifa.billing.models.TaxExemption`)
and the customer's own "Tax rate (%)". ``package.module:Class``: that class, constructed with no
arguments once per invoice run (docs/taxes.md, "Another tax engine").

The built-in engine reads everything an invoice run needs in three queries (the tax table, the run's
customers, their exemptions), never one per customer: the rules are then pure
(:func:`tarifa.core.taxes.compute`).
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal

from tarifa import config
from tarifa.core import taxes as rules
from tarifa.core.taxes import TaxableLine, TaxCustomer, TaxEngine, TaxLine

__all__ = ["CustomerTaxFacts", "TableTaxEngine", "load_rules", "tax_engine"]


@dataclass(frozen=True, slots=True)
class CustomerTaxFacts:
    """What the tables know of a customer: its flag, place in the tree, own rate and exemption."""

    flag: str
    path: str
    own_rate: Decimal
    exemption: tuple[str, date | None, date | None] | None = None  # (reference, valid from, valid to)

    def exempt_on(self, day: date) -> bool:
        if self.exemption is None:
            return False
        _ref, start, end = self.exemption
        return (start is None or start <= day) and (end is None or day < end)


class TableTaxEngine:
    """The built-in engine: the tax table's rows that bind the customer (core.taxes.applies), after the
    customer's own "Tax rate (%)" when it has one (a percentage tax named by its flag, first in order)."""

    def __init__(self, table: Sequence[rules.TaxRule], customers: dict[int, CustomerTaxFacts]) -> None:
        self._table = list(table)
        self._customers = customers

    @classmethod
    def load(cls, customer_ids: Sequence[int]) -> TableTaxEngine:
        from tarifa.billing.models import TaxExemption
        from tarifa.customers.models import Customer

        facts = {
            pk: CustomerTaxFacts(flag, path, rate)
            for pk, flag, path, rate in Customer.objects.filter(pk__in=customer_ids).values_list(
                "pk", "tax_flag", "path", "tax_rate"
            )
        }
        for pk, ref, start, end in TaxExemption.objects.filter(customer_id__in=customer_ids).values_list(
            "customer_id", "reference", "valid_from", "valid_to"
        ):
            facts[pk] = replace(facts[pk], exemption=(ref, start, end))
        return cls(load_rules(), facts)

    def exemption_reference(self, customer_id: int, on: date) -> str | None:
        """The exemption reference to print on the customer's invoice when it is exempt on ``on``."""
        facts = self._customers.get(customer_id)
        if facts is None or facts.exemption is None or not facts.exempt_on(on):
            return None
        return facts.exemption[0]

    def taxes(self, customer: TaxCustomer, lines: Sequence[TaxableLine], on: date) -> list[TaxLine]:
        facts = self._customers.get(customer.customer_id)
        if facts is None or facts.flag in ("", "NONE"):
            return []
        who = replace(customer, flag=facts.flag, path=facts.path, exempt=customer.exempt or facts.exempt_on(on))
        table = self._table
        if facts.own_rate > 0:
            own = rules.TaxRule(
                name=facts.flag, kind=rules.PERCENT, rate=facts.own_rate, flag=facts.flag, order=-1, key="own"
            )
            table = [own, *table]
        return rules.compute(who, lines, table, on)


def load_rules() -> list[rules.TaxRule]:
    """The whole tax table as core rules (one query)."""
    from tarifa.billing.models import TaxRate, rules_of

    return rules_of(TaxRate.objects.all())


def _external(spec: str) -> TaxEngine:
    module_name, class_name = spec.split(":")
    engine: TaxEngine = getattr(importlib.import_module(module_name), class_name)()
    return engine


def tax_engine(customer_ids: Sequence[int]) -> TaxEngine:
    """The configured engine for an invoice run over these customers (TARIFA_TAX_ENGINE)."""
    spec = config.tax_engine()
    if spec == "builtin":
        return TableTaxEngine.load(customer_ids)
    return _external(spec)
