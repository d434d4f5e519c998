"""The one way money moves: append Transactions and update balances in the caller's database
transaction (DESIGN.md §6). Balance rows are locked first, so concurrent posters serialise."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from tarifa.billing.models import Transaction
from tarifa.customers.models import Account, Customer
from tarifa.db import bulk_insert, bulk_update, prepared_datetime

MICRO_PLACES = 6  # money columns hold integer counts of 10**-6 units (tarifa.fields.ExactDecimalField)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

TRANSACTION_COLUMNS = (
    "customer", "account", "kind", "amount", "balance_after", "currency", "description", "reference", "cdr",
    "created_at", "created_by",
)


@dataclass(frozen=True, slots=True)
class Posting:
    """One money movement. ``amount`` raises the balance when positive (a charge is negative).

    ``account_id`` is set when the account keeps its own balance; that balance moves instead
    of the customer's.
    """

    customer_id: int
    amount: Decimal
    kind: str
    reference: str | None
    description: str = ""
    account_id: int | None = None
    cdr_id: int | None = None
    created_by_id: int | None = None


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
    balances: dict[tuple[str, int], Decimal] = {}
    currencies: dict[int, str] = {}
    for pk, balance, currency in Customer.objects.select_for_update().filter(
        pk__in={p.customer_id for p in items}
    ).order_by("pk").values_list("pk", "balance", "currency"):
        currencies[pk] = currency
        if pk in customer_ids:
            balances[("customer", pk)] = balance
    for pk, balance in Account.objects.select_for_update().filter(pk__in=account_ids).order_by("pk").values_list(
        "pk", "balance"
    ):
        balances[("account", pk)] = balance
    now = prepared_datetime(timezone.now())
    rows = []
    for owner, owned in by_owner.items():
        running = balances[owner]
        for p in owned:
            running += p.amount
            rows.append([
                p.customer_id, p.account_id, p.kind, p.amount, running, currencies[p.customer_id], p.description[:200],
                p.reference, p.cdr_id, now, p.created_by_id,
            ])
        balances[owner] = running
    bulk_insert(Transaction, TRANSACTION_COLUMNS, rows)
    bulk_update(Customer, ["balance"], [[balances[("customer", pk)], pk] for pk in customer_ids])
    bulk_update(Account, ["balance"], [[balances[("account", pk)], pk] for pk in account_ids])
    return balances


def post_one(posting: Posting) -> Decimal:
    with transaction.atomic():
        balances = post([posting])
    owner = ("account", posting.account_id) if posting.account_id else ("customer", posting.customer_id)
    return balances[owner]


def post_frame(charges: Any, kind: str) -> int:
    """Append many postings given as a polars frame, in its row order, and move the balances.

    Columns: ``customer_id``, ``account_id`` (null: the customer's balance moves, else that
    account's own balance), ``amount`` (Int64, 10**-6 units, negative for a charge),
    ``description``, ``cdr_id``. The same locking order and running ``balance_after`` as
    :func:`post`, without a Python object per posting. Returns the number of Transactions.
    """
    import polars as pl

    from tarifa.db import datetime_text, insert_frame

    for field in ("amount", "balance_after"):
        assert Transaction._meta.get_field(field).places == MICRO_PLACES  # type: ignore[attr-defined]
    charges = charges.filter(pl.col("amount") != 0)
    if charges.height == 0:
        return 0
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("ledger.post_frame must run inside a database transaction")
    customer_ids = sorted(set(charges["customer_id"].to_list()))
    account_ids = sorted(set(charges["account_id"].drop_nulls().to_list()))
    starts: dict[tuple[str, int], int] = {}
    currencies: dict[int, str] = {}
    for pk, balance, currency in Customer.objects.select_for_update().filter(pk__in=customer_ids).order_by(
        "pk"
    ).values_list("pk", "balance", "currency"):
        currencies[pk] = currency
        starts[("c", pk)] = int(balance.scaleb(MICRO_PLACES))
    for pk, balance in Account.objects.select_for_update().filter(pk__in=account_ids).order_by("pk").values_list(
        "pk", "balance"
    ):
        starts[("a", pk)] = int(balance.scaleb(MICRO_PLACES))
    owners = pl.DataFrame(
        {"o_kind": [k for k, _ in starts], "o_id": [i for _, i in starts], "start": list(starts.values())},
        schema={"o_kind": pl.String, "o_id": pl.Int64, "start": pl.Int64},
    )
    frame = charges.with_columns(
        o_kind=pl.when(pl.col("account_id").is_null()).then(pl.lit("c")).otherwise(pl.lit("a")),
        o_id=pl.coalesce("account_id", "customer_id").cast(pl.Int64),
    ).join(owners, on=["o_kind", "o_id"], how="left", maintain_order="left")
    frame = frame.with_columns(
        balance_after=pl.col("start") + pl.col("amount").cum_sum().over(["o_kind", "o_id"]),
    )
    now_us = (timezone.now() - EPOCH) // timedelta(microseconds=1)
    rows = frame.select(
        customer=pl.col("customer_id"),
        account=pl.col("account_id"),
        kind=pl.lit(kind),
        amount=pl.col("amount"),
        balance_after=pl.col("balance_after"),
        currency=pl.col("customer_id").replace_strict(currencies, return_dtype=pl.String),
        description=pl.col("description").str.slice(0, 200),
        reference=pl.lit(None, pl.String),
        cdr=pl.col("cdr_id"),
        created_at=datetime_text(pl.lit(now_us, pl.Int64)),
        created_by=pl.lit(None, pl.Int64),
    )
    insert_frame(Transaction, rows)
    moved = frame.group_by(["o_kind", "o_id"]).agg(pl.col("amount").sum()).join(owners, on=["o_kind", "o_id"])
    for kind_, model in (("c", Customer), ("a", Account)):
        part = moved.filter(pl.col("o_kind") == kind_)
        bulk_update(model, ["balance"], [
            [Decimal(start + amount).scaleb(-MICRO_PLACES), pk] for pk, amount, start in part.select("o_id", "amount", "start").iter_rows()
        ])
    return rows.height
