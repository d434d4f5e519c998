"""From stored rates to the pure core's RateTable, with customer overrides layered on bases."""

from __future__ import annotations

from django.db.models import QuerySet

from tarifa.core.periods import parse_period
from tarifa.core.rating import RateEntry, RateTable, RateTerms
from tarifa.rating.models import RateFields, Tariff


def rate_entry(rate: RateFields) -> RateEntry:
    return RateEntry(
        prefix=rate.prefix,
        destination=rate.destination,
        terms=RateTerms(
            price_1=rate.price_1,
            price_n=rate.price_n,
            interval_1=rate.interval_1,
            interval_n=rate.interval_n,
            connect_fee=rate.connect_fee,
            free_seconds=rate.free_seconds,
            grace_period=rate.grace_period,
            post_call_surcharge=rate.post_call_surcharge,
            min_charge=rate.min_charge,
            forbidden=rate.forbidden,
        ),
        effective_from=rate.effective_from,
        effective_to=rate.effective_to,
        period=parse_period(rate.period) if rate.period else None,
    )


ENTRY_FIELDS = (
    "prefix",
    "destination",
    "price_1",
    "price_n",
    "interval_1",
    "interval_n",
    "connect_fee",
    "free_seconds",
    "grace_period",
    "post_call_surcharge",
    "min_charge",
    "forbidden",
    "effective_from",
    "effective_to",
    "period",
)


def load_entries(rates: QuerySet) -> list[RateEntry]:
    """Rate entries straight from rows (no model instances): 60,000 rates in about a second."""
    entries = []
    for (
        prefix,
        destination,
        p1,
        pn,
        i1,
        i_n,
        fee,
        free,
        grace,
        surcharge,
        minimum,
        forbidden,
        start,
        end,
        period,
    ) in rates.values_list(*ENTRY_FIELDS).iterator(chunk_size=5000):
        entries.append(
            RateEntry(
                prefix=prefix,
                destination=destination,
                terms=RateTerms(
                    price_1=p1,
                    price_n=pn,
                    interval_1=i1,
                    interval_n=i_n,
                    connect_fee=fee,
                    free_seconds=free,
                    grace_period=grace,
                    post_call_surcharge=surcharge,
                    min_charge=minimum,
                    forbidden=forbidden,
                ),
                effective_from=start,
                effective_to=end,
                period=period or None,
            )
        )
    return entries


def rates_signature(rates: QuerySet) -> tuple:
    """Changes whenever a rate of the set is added, removed or changed (cache invalidation)."""
    from django.db.models import Count, Max, Sum

    row = rates.aggregate(
        n=Count("id"),
        last=Max("updated_at"),
        top=Max("id"),
        p1=Sum("price_1"),
        pn=Sum("price_n"),
        i1=Sum("interval_1"),
        fee=Sum("connect_fee"),
        mc=Sum("min_charge"),
    )
    return tuple(row.values())


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
        own = load_entries(node.rates.all())
        entries.extend(e for e in own if e.prefix not in covered)
        covered.update(e.prefix for e in own)
    return RateTable(entries, tariff.time_zone)


def tariff_signature(tariff: Tariff) -> tuple:
    return tuple(
        (t.pk, t.time_zone, t.rounding, t.base_id, rates_signature(t.rates.all())) for t in tariff_chain(tariff)
    )
