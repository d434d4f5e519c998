"""Releasing reservations: by the call's end, its CDR, or the expiry sweep of ``tarifa worker``."""

from __future__ import annotations

from datetime import datetime

from django.db import connection
from django.utils import timezone

from tarifa.calls.models import Reservation
from tarifa.customers.models import Account, Customer
from tarifa.db import any_of


def release_calls(calls: list[tuple[str, str]]) -> int:
    """Delete the reservations of these (switch, call id) pairs; runs in the caller's transaction.

    Reservations are few (the calls in progress) and CDR batches large: for a large batch the
    live reservations of its switches are read first and only those the batch ends are deleted.
    """
    table = connection.ops.quote_name(Reservation._meta.db_table)
    if len(calls) > 100:
        switches = sorted({switch for switch, _ in calls})
        condition, params = any_of("switch", switches)
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT switch, call_id FROM {table} WHERE {condition}", params)
            live = set(cursor.fetchall())
        calls = [call for call in calls if call in live] if live else []
    by_switch: dict[str, list[str]] = {}
    for switch, call_id in calls:
        by_switch.setdefault(switch, []).append(call_id)
    released = 0
    with connection.cursor() as cursor:
        for switch, ids in by_switch.items():
            for start in range(0, len(ids), 5000):
                condition, params = any_of("call_id", ids[start : start + 5000])
                cursor.execute(f"DELETE FROM {table} WHERE switch = %s AND {condition}", [switch, *params])
                released += cursor.rowcount
    return released


def expire(now: datetime | None = None) -> int:
    """Drop reservations of calls that never reported back (past max duration + margin), and
    those of an account or customer deleted while the call was being authorised (reservations
    have no database constraints: migration calls 0006)."""
    from django.db.models import Exists, OuterRef, Q

    gone = ~Exists(Account.objects.filter(pk=OuterRef("account_id"))) | ~Exists(
        Customer.objects.filter(pk=OuterRef("customer_id"))
    )
    return Reservation.objects.filter(Q(expires_at__lt=now or timezone.now()) | gone).delete()[0]


def sweep(now: datetime | None = None) -> tuple[int, int]:
    """One pass of the worker: (reservations expired, CPS counter rows purged)."""
    from tarifa.calls.models import CallRate

    now = now or timezone.now()
    expired = expire(now)
    purged = CallRate.objects.filter(second__lt=int(now.timestamp()) - 60).delete()[0]
    return expired, purged
