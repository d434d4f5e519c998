"""Ordering route candidates by a routing group's policy (DESIGN.md §5)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum


class RoutingPolicy(StrEnum):
    """How a routing group orders its routes (the RoutingGroup model's ``policy``)."""

    LEAST_COST = "least_cost"
    PRIORITY = "priority"
    WEIGHTED = "weighted"


@dataclass(frozen=True, slots=True)
class Candidate:
    connection_id: int
    vendor_price: Decimal  # per minute, first interval
    priority: int
    weight: int


def order(candidates: list[Candidate], policy: str, call_id: str) -> list[Candidate]:
    """least_cost: cheapest first (priority breaks ties); priority: lowest number first;
    weighted: a weighted random permutation, seeded by the call id so a retry sees the same order."""
    if policy == RoutingPolicy.LEAST_COST:
        return sorted(candidates, key=lambda c: (c.vendor_price, c.priority, c.connection_id))
    if policy == RoutingPolicy.PRIORITY:
        return sorted(candidates, key=lambda c: (c.priority, c.vendor_price, c.connection_id))
    if policy == RoutingPolicy.WEIGHTED:
        # Efraimidis-Spirakis: key = u ** (1 / w), largest first; u from a hash, not from random.
        def key(c: Candidate) -> Decimal:
            digest = hashlib.sha256(f"{call_id}:{c.connection_id}".encode()).digest()
            u = (Decimal(int.from_bytes(digest[:8], "big")) + 1) / Decimal(2**64 + 1)
            return u ** (Decimal(1) / Decimal(max(c.weight, 1)))

        return sorted(candidates, key=key, reverse=True)
    raise ValueError(f"routing policy {policy!r} is not one of {', '.join(RoutingPolicy)}")
