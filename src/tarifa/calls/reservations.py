"""Releasing reservations: by the call's end, its CDR, or the expiry sweep of ``tarifa worker``."""

from __future__ import annotations

from django.db.models import Q
from django.utils import timezone

from tarifa.calls.models import Reservation


def release_calls(calls: list[tuple[str, str]]) -> int:
    """Delete the reservations of these (switch, call id) pairs; runs in the caller's transaction."""
    released = 0
    for start in range(0, len(calls), 400):
        chunk = calls[start:start + 400]
        query = Q()
        by_switch: dict[str, list[str]] = {}
        for switch, call_id in chunk:
            by_switch.setdefault(switch, []).append(call_id)
        for switch, ids in by_switch.items():
            query |= Q(switch=switch, call_id__in=ids)
        released += Reservation.objects.filter(query).delete()[0]
    return released


def expire(now=None) -> int:  # type: ignore[no-untyped-def]
    """Drop reservations of calls that never reported back (past max duration + margin)."""
    return Reservation.objects.filter(expires_at__lt=now or timezone.now()).delete()[0]
