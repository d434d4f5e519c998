"""Where ingestion's rules meet the database: CDR batches, the rows they refer to, pool usage,
call charges.

Everything here runs inside the caller's database transaction (one per batch,
:mod:`tarifa.cdrs.ingest`). The CDR table has no database-level foreign keys (a per-row check
would cost more than the insert itself, docs/cdr-ingestion.md): :func:`hold_references` locks the
rows a batch refers to instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date

from django.db import OperationalError, connection

from tarifa.billing import ledger
from tarifa.billing.models import IncludedMinutes, MinutePoolUsage
from tarifa.cdrs.models import Cdr
from tarifa.core.charging import ACCOUNT_BALANCE, BalanceCharges
from tarifa.core.payments import TransactionKind
from tarifa.core.pools import Pool, PoolSlot, carried_over
from tarifa.customers.models import Account, Customer
from tarifa.db import any_of
from tarifa.dids.models import DidPlan
from tarifa.routing.models import Connection as RoutingConnection

Key = tuple[str, str, str]  # a CDR's idempotency key: (switch, call id, leg)
_CHUNK = 5000  # call ids per query


class Raced(Exception):
    """Another writer stored one of this batch's calls meanwhile: roll back and retry."""


class Stale(Exception):
    """An account, customer or connection this run loaded is gone: reload and retry."""


def retryable(exc: BaseException) -> bool:
    """A conflict with another writer that a retry of the batch resolves."""
    if isinstance(exc, OperationalError):
        return "locked" in str(exc) or "deadlock" in str(exc)
    if connection.vendor == "postgresql":
        import psycopg

        # COPY runs on psycopg's own cursor: its errors come unwrapped.
        return isinstance(exc, (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure))
    return False


def pools_in_play() -> bool:
    """Whether any plan includes minutes (two small queries; no need to load the directory)."""
    return IncludedMinutes.objects.exists() or DidPlan.objects.filter(included_minutes__gt=0).exists()


def hold_references(
    accounts: Iterable[int | None], customers: Iterable[int | None], connections: Iterable[int | None]
) -> None:
    """Make sure the rows a batch's CDRs refer to exist until it commits (:class:`Stale` if not).

    Each referenced row is locked once per batch, ``FOR KEY SHARE`` on PostgreSQL (no one can
    delete it until we commit; SQLite's writer lock does the same).
    """
    for model, ids in ((Account, accounts), (Customer, customers), (RoutingConnection, connections)):
        wanted = sorted({pk for pk in ids if pk is not None})
        if not wanted:
            continue
        table = connection.ops.quote_name(model._meta.db_table)
        condition, params = any_of("id", wanted)
        lock = " FOR KEY SHARE" if connection.vendor == "postgresql" else ""
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT count(*) FROM (SELECT id FROM {table} WHERE {condition}{lock}) AS held", params)
            if cursor.fetchone()[0] != len(wanted):
                raise Stale()


def _by_switch(keys: Iterable[Key]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for switch, call_id, _leg in keys:
        found.setdefault(switch, []).append(call_id)
    return found


def stored_keys(keys: Sequence[Key]) -> set[Key]:
    """The keys among ``keys`` of calls already stored."""
    found: set[Key] = set()
    table = connection.ops.quote_name(Cdr._meta.db_table)
    with connection.cursor() as cursor:
        for switch, ids in _by_switch(keys).items():
            for start in range(0, len(ids), _CHUNK):
                condition, params = any_of("call_id", ids[start : start + _CHUNK])
                cursor.execute(
                    f"SELECT switch, call_id, leg FROM {table} WHERE switch = %s AND {condition}", [switch, *params]
                )
                found.update(cursor.fetchall())
    return found


def inserted_ids(keys: Sequence[Key], token: int) -> dict[Key, int]:
    """Ids of the rows of ``keys`` that carry the batch token ``token`` (that this batch inserted)."""
    table = connection.ops.quote_name(Cdr._meta.db_table)
    ids: dict[Key, int] = {}
    with connection.cursor() as cursor:
        for switch, call_ids in _by_switch(keys).items():
            for start in range(0, len(call_ids), _CHUNK):
                condition, params = any_of("call_id", call_ids[start : start + _CHUNK])
                cursor.execute(
                    f"SELECT id, switch, call_id, leg FROM {table} WHERE switch = %s AND {condition} AND batch = %s",
                    [switch, *params, token],
                )
                ids.update({(s, c, leg): pk for pk, s, c, leg in cursor.fetchall()})
    return ids


class PoolUsageTable:
    """:class:`tarifa.core.pools.PoolUsageStore` on ``MinutePoolUsage``: a slot's row is locked
    (``SELECT ... FOR UPDATE``) when first read, so concurrent writers use a pool in turn."""

    def load(self, slot: PoolSlot) -> int:
        # Make sure the row exists before locking it: a missing row cannot be locked, and two
        # writers would both start from 0 for the month's first calls.
        rows = MinutePoolUsage.objects.filter(account_id=slot.account_id, pool_key=slot.key, period_start=slot.period)
        MinutePoolUsage.objects.get_or_create(
            account_id=slot.account_id, pool_key=slot.key, period_start=slot.period, defaults={"seconds_used": 0}
        )
        return int(rows.select_for_update().values_list("seconds_used", flat=True).get())

    def save(self, slot: PoolSlot, seconds: int) -> None:
        MinutePoolUsage.objects.update_or_create(
            account_id=slot.account_id,
            pool_key=slot.key,
            period_start=slot.period,
            defaults={"seconds_used": seconds},
        )

    def carried(self, slot: PoolSlot, pool: Pool) -> int:
        """The month's carry, computed from the previous month's row once and kept on the row: with
        no row for the previous month (no calls), the whole allowance was left, if the account
        was in service before this month (activated, or created without a date, before it)."""
        if pool.rollover_cap <= 0:
            return 0
        rows = MinutePoolUsage.objects.filter(account_id=slot.account_id, pool_key=slot.key, period_start=slot.period)
        kept = rows.values_list("carried_seconds", flat=True).first()
        if kept is not None:
            return int(kept)
        before = date(slot.period.year - (slot.period.month == 1), (slot.period.month - 2) % 12 + 1, 1)
        previous = (
            MinutePoolUsage.objects.filter(
                account_id=slot.account_id,
                pool_key=slot.key,
                period_start=before,
            )
            .values_list("seconds_used", "carried_seconds")
            .first()
        )
        if previous is not None:
            carry = carried_over(pool.seconds, pool.rollover_cap, previous[0], previous[1] or 0)
        else:
            since = Account.objects.filter(pk=slot.account_id).values_list("activation_date", "created_at").first()
            began = since and (since[0] or since[1].date())
            carry = carried_over(pool.seconds, pool.rollover_cap, 0, 0) if began and began < slot.period else 0
        rows.update(carried_seconds=carry)
        return carry


class Charges(BalanceCharges):
    """A batch's call charges (:class:`~tarifa.core.charging.BalanceCharges`) with the ids of the
    Transactions that will post them, handed out first so the CDRs can point to them."""

    def __init__(self) -> None:
        super().__init__()
        self.ids = ledger.NextIds()
        # the out-payments of revenue-share DIDs (Cdr.out_payment): one credit per balance and batch
        self.out_payments = BalanceCharges()

    def post(self) -> None:
        """One ``call_charge`` Transaction per balance (``Cdr.transaction`` points to it), and one
        ``credit`` per balance for the batch's out-payments (amount: plus their sum)."""
        ledger.post(
            [
                ledger.Posting(
                    id=self.ids[charge.owner],
                    customer_id=charge.customer_id,
                    account_id=charge.owner.id if charge.owner.kind == ACCOUNT_BALANCE else None,
                    amount=charge.amount,
                    kind=TransactionKind.CALL_CHARGE,
                    reference=None,
                    description=charge.description,
                )
                for charge in self.to_post()
            ]
        )
        ledger.post(
            [
                ledger.Posting(
                    customer_id=credit.customer_id,
                    account_id=credit.owner.id if credit.owner.kind == ACCOUNT_BALANCE else None,
                    amount=-credit.amount,
                    kind="credit",
                    reference=None,
                    description=f"Out-payment for {credit.description}",
                )
                for credit in self.out_payments.to_post()
            ]
        )


__all__ = [
    "Charges",
    "Key",
    "PoolUsageTable",
    "Raced",
    "Stale",
    "hold_references",
    "inserted_ids",
    "pools_in_play",
    "retryable",
    "stored_keys",
]
