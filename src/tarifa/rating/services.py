"""From stored rates to the pure core's RateTable, with customer overrides layered on bases."""

from __future__ import annotations

from tarifa.core.rating import RateEntry, RateTable, RateTerms
from tarifa.rating.models import RateFields, Tariff


def rate_entry(rate: RateFields) -> RateEntry:
    return RateEntry(
        prefix=rate.prefix,
        destination=rate.destination,
        terms=RateTerms(
            price_1=rate.price_1, price_n=rate.price_n, interval_1=rate.interval_1, interval_n=rate.interval_n,
            connect_fee=rate.connect_fee, free_seconds=rate.free_seconds, grace_period=rate.grace_period,
            post_call_surcharge=rate.post_call_surcharge, min_charge=rate.min_charge, forbidden=rate.forbidden,
        ),
        effective_from=rate.effective_from,
        effective_to=rate.effective_to,
        period=rate.period or None,
    )


def tariff_chain(tariff: Tariff) -> list[Tariff]:
    """The tariff, its base, the base's base ... (cycles are refused by Tariff.clean)."""
    chain, seen = [], set()
    node: Tariff | None = tariff
    while node is not None and node.pk not in seen:
        chain.append(node)
        seen.add(node.pk)
        node = node.base
    return chain


def tariff_table(tariff: Tariff) -> RateTable:
    """All rates a tariff prices with: its own, then its bases' for prefixes it does not override.

    An override owns its prefix entirely: every version and period of that prefix in the base
    is hidden, so a customer price is never mixed with base history for the same prefix.
    """
    entries: list[RateEntry] = []
    covered: set[str] = set()
    for node in tariff_chain(tariff):
        rates = list(node.rates.all())
        entries.extend(rate_entry(r) for r in rates if r.prefix not in covered)
        covered.update(r.prefix for r in rates)
    return RateTable(entries, tariff.time_zone)
