"""The one way money moves: append Transactions and update balances in the caller's database
transaction (DESIGN.md §6). Balance rows are locked first, so concurrent posters serialise."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from tarifa.billing.models import Transaction
from tarifa.customers.models import Account, Customer
from tarifa.db import bulk_insert, bulk_update, prepared_datetime

TRANSACTION_COLUMNS = (
    "customer",
    "account",
    "kind",
    "amount",
    "balance_after",
    "currency",
    "description",
    "reference",
    "cdr",
    "created_at",
    "created_by",
    "actor",
    "method",
)


@dataclass(frozen=True, slots=True)
class Posting:
    """One money movement. ``amount`` raises the balance when positive (a charge is negative).

    ``account_id`` is set when the account keeps its own balance; that balance moves instead
    of the customer's. ``actor`` says who did it (a staff user name, ``cli:<os user>``; empty
    for the system). ``created_at`` backdates the posting (loading history, e.g. the demo's
    January calls); None is now. A backdated posting still lands at the end of the balance's
    running total: balance = sum of Transactions holds whatever their times.
    """

    customer_id: int
    amount: Decimal
    kind: str
    reference: str | None
    description: str = ""
    account_id: int | None = None
    cdr_id: int | None = None
    created_by_id: int | None = None
    id: int | None = None  # a Transaction id taken beforehand with next_ids (rows already point to it)
    actor: str = ""
    created_at: datetime | None = None
    method: str = ""  # payments, refunds, credits: core.payments.METHODS


def post(postings: Iterable[Posting]) -> dict[tuple[str, int], Decimal]:
    """Append the postings in order and return the new balance of every balance touched."""
    items = [p for p in postings if p.amount != 0]
    if not items:
        return {}
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("ledger.post must run inside a database transaction")
    by_owner: dict[tuple[str, int], list[Posting]] = defaultdict(list)
    for p in items:
        owner = ("account", p.account_id) if p.account_id else ("customer", p.customer_id)
        by_owner[owner].append(p)
    customer_ids = sorted(pk for kind, pk in by_owner if kind == "customer")
    account_ids = sorted(pk for kind, pk in by_owner if kind == "account")
    # Lock in a fixed order (customers, then accounts, by id) so two posters never deadlock.
    # FOR NO KEY UPDATE: posters serialise, while the KEY SHARE locks CDR ingestion holds on the
    # rows its CDRs refer to (tarifa.cdrs.ingest) do not block them.
    balances: dict[tuple[str, int], Decimal] = {}
    currencies: dict[int, str] = {}
    for pk, balance, currency in (
        Customer.objects.select_for_update(no_key=True)
        .filter(pk__in={p.customer_id for p in items})
        .order_by("pk")
        .values_list("pk", "balance", "currency")
    ):
        currencies[pk] = currency
        if pk in customer_ids:
            balances[("customer", pk)] = balance
    for pk, balance in (
        Account.objects.select_for_update(no_key=True)
        .filter(pk__in=account_ids)
        .order_by("pk")
        .values_list("pk", "balance")
    ):
        balances[("account", pk)] = balance
    moment = timezone.now()
    now = prepared_datetime(moment)
    for p in items:
        if p.created_at is not None and (timezone.is_naive(p.created_at) or p.created_at > moment):
            raise ValueError(f"Posting time {p.created_at} is refused: must be timezone-aware and not in the future")
    with_ids = all(p.id is not None for p in items)  # ids handed out ahead (NextIds): written as given
    rows = []
    for owner, owned in by_owner.items():
        running = balances[owner]
        for p in owned:
            running += p.amount
            rows.append(
                [
                    *([p.id] if with_ids else []),
                    p.customer_id,
                    p.account_id,
                    p.kind,
                    p.amount,
                    running,
                    currencies[p.customer_id],
                    p.description[:200],
                    p.reference,
                    p.cdr_id,
                    now if p.created_at is None else prepared_datetime(p.created_at),
                    p.created_by_id,
                    p.actor[:150],
                    p.method,
                ]
            )
        balances[owner] = running
    bulk_insert(Transaction, ("id", *TRANSACTION_COLUMNS) if with_ids else TRANSACTION_COLUMNS, rows)
    bulk_update(Customer, ["balance"], [[balances[("customer", pk)], pk] for pk in customer_ids])
    bulk_update(Account, ["balance"], [[balances[("account", pk)], pk] for pk in account_ids])
    return balances


class NextIds:
    """Transaction ids handed out before their Transactions are posted (within one database
    transaction), so that the rows a Transaction accounts for can point to it when written.

    Such an id is taken before the balance lock, so another poster may get a higher id and an
    earlier place in the balance: running balances (``balance_after``) follow ``created_at``,
    which is set under the lock, not the id.
    """

    def __init__(self) -> None:
        self._ids: dict[Any, int] = {}
        self._next: int | None = None  # SQLite: the next free id (one writer holds the lock)

    def prepare(self, keys: Iterable[Any]) -> None:
        missing = [k for k in dict.fromkeys(keys) if k not in self._ids]
        if not missing:
            return
        from django.db import connection

        if connection.vendor == "postgresql":
            from tarifa.db import next_ids

            self._ids.update(zip(missing, next_ids(Transaction, len(missing)).to_list(), strict=True))
            return
        if self._next is None:
            from tarifa.db import next_ids

            self._next = int(next_ids(Transaction, 1)[0])
        self._ids.update(zip(missing, range(self._next, self._next + len(missing)), strict=True))
        self._next += len(missing)

    def __getitem__(self, key: Any) -> int:
        return self._ids[key]

    def items(self) -> Iterable[tuple[Any, int]]:
        return self._ids.items()


def post_one(posting: Posting) -> Decimal:
    with transaction.atomic():
        balances = post([posting])
    owner = ("account", posting.account_id) if posting.account_id else ("customer", posting.customer_id)
    return balances[owner]
