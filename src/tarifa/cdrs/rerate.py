"""Re-rating stored CDRs after a tariff or account fix: only the difference is posted.

Each changed CDR gets one adjustment Transaction per balance it moves (the old owner is refunded
and the new one charged when the call now matches another account), referencing the CDR and
the RerateRun that records who re-rated, why, and over what.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from tarifa.billing import ledger
from tarifa.cdrs.models import Cdr, RerateRun
from tarifa.cdrs.row_rating import Rater
from tarifa.core.cdr import CanonicalCdr
from tarifa.core.payments import TransactionKind
from tarifa.core.pools import PoolSlot, month_of
from tarifa.core.rating import RatingStatus
from tarifa.customers.choices import BalanceMode
from tarifa.customers.models import Account, Customer
from tarifa.db import bulk_update

UPDATED = (
    "account",
    "customer",
    "number",
    "connection",
    "prefix",
    "destination",
    "billed_seconds",
    "price",
    "cost",
    "margin",
    "rating_status",
    "unrated_reason",
    "rated_at",
    "pool_key",
    "pool_seconds",
    "rerate_run",
)


@dataclass(frozen=True)
class Criteria:
    unrated_only: bool = False
    start: datetime | None = None
    end: datetime | None = None
    customer: str | None = None

    def describe(self) -> str:
        parts = ["unratable only"] if self.unrated_only else []
        if self.start:
            parts.append(f"from {self.start.isoformat()}")
        if self.end:
            parts.append(f"to {self.end.isoformat()}")
        if self.customer:
            parts.append(f"customer {self.customer}")
        return ", ".join(parts) or "all"

    def queryset(self) -> QuerySet[Cdr]:
        qs = Cdr.objects.all()
        if self.unrated_only:
            qs = qs.filter(rating_status=RatingStatus.UNRATED)
        if self.start:
            qs = qs.filter(start_time__gte=self.start)
        if self.end:
            qs = qs.filter(start_time__lt=self.end)
        if self.customer:
            customer = Customer.objects.filter(Q(account_code=self.customer) | Q(web_username=self.customer)).first()
            if customer is None:
                raise ValueError(f"customer {self.customer!r} does not exist")
            qs = qs.filter(customer.in_subtree("customer"))
        return qs


def _canonical(row: Cdr) -> CanonicalCdr:
    return CanonicalCdr(
        call_id=row.call_id,
        callee=row.callee,
        start_time=row.start_time,
        duration=row.duration,
        switch=row.switch,
        leg=row.leg,
        caller=row.caller,
        connect_time=row.connect_time,
        end_time=row.end_time,
        disposition=row.disposition,
        sip_code=row.sip_code,
        direction=row.direction,
        source_ip=row.source_ip or "",
        sip_user=row.sip_user,
        trunk=row.trunk,
        did=row.did,
        extension=row.extension,
        account_code=row.account_code,
        connection=row.connection_name,
    )


def rerate(
    criteria: Criteria, *, reason: str, by: str, user_id: int | None = None, batch_size: int = 1000
) -> RerateRun:
    if not reason.strip():
        raise ValueError("a reason is required for re-rating")
    if criteria.start and criteria.end and criteria.start >= criteria.end:
        raise ValueError(
            f"--from {criteria.start.isoformat()} is refused: must be before --to "
            f"{criteria.end.isoformat()} (calls started from --from up to, not including, --to)"
        )
    run = RerateRun.objects.create(started_by=by[:150], reason=reason[:500], criteria=criteria.describe()[:500])
    ids = list(criteria.queryset().order_by("id").values_list("id", flat=True))
    rater = Rater()
    own = set(Account.objects.filter(balance_mode=BalanceMode.OWN).values_list("pk", flat=True))
    if user_id is not None and not get_user_model().objects.filter(pk=user_id).exists():
        user_id = None
    totals: dict[str, int | Decimal] = {"examined": 0, "changed": 0, "still_unrated": 0, "adjustment_total": Decimal(0)}
    for start in range(0, len(ids), batch_size):
        with transaction.atomic():
            _rerate_batch(ids[start : start + batch_size], rater, run, own, reason, user_id, totals)
    RerateRun.objects.filter(pk=run.pk).update(finished_at=timezone.now(), **totals)
    run.refresh_from_db()
    return run


def _rerate_batch(
    ids: list[int],
    rater: Rater,
    run: RerateRun,
    own: set[int],
    reason: str,
    user_id: int | None,
    totals: dict[str, int | Decimal],
) -> None:
    rater.begin()
    rows = list(Cdr.objects.select_for_update().filter(id__in=ids).order_by("id"))
    # Give back the pool seconds the old rating used, so the new rating sees the true remainder.
    for row in rows:
        if row.pool_seconds and row.account_id:
            at = row.connect_time or row.start_time
            rater.pools.change(PoolSlot(row.account_id, row.pool_key, month_of(at)), -row.pool_seconds)
    postings: list[ledger.Posting] = []
    updates = []
    now = timezone.now()
    for row in rows:
        totals["examined"] += 1
        new = rater.rate(_canonical(row))
        v = new.rating
        info = new.match.account if new.match else None
        new_account = info.account_id if info else None
        new_customer = info.customer_id if info else None
        if v.rating_status != RatingStatus.RATED:
            totals["still_unrated"] += 1
        same = (
            new_account == row.account_id
            and v.price == row.price
            and v.cost == row.cost
            and v.rating_status == row.rating_status
            and v.pool_seconds == row.pool_seconds
            and v.prefix == row.prefix
        )
        if same:
            continue
        totals["changed"] += 1
        text = f"Re-rating of call {row.call_id}: {reason}"[:200]
        reference = f"cdr:{row.pk}:rerate:{run.pk}"
        charged_to = row.customer_id if row.price != 0 else None  # the customer who paid for the call
        was_charged = charged_to is not None
        if charged_to is not None and new_customer == charged_to and new_account == row.account_id:
            diff = v.price - row.price
            postings.append(
                ledger.Posting(
                    customer_id=charged_to,
                    account_id=row.account_id if row.account_id in own else None,
                    amount=-diff,
                    kind=TransactionKind.ADJUSTMENT,
                    reference=reference,
                    description=text,
                    cdr_id=row.pk,
                    created_by_id=user_id,
                )
            )
            totals["adjustment_total"] += diff
        else:
            if charged_to is not None:
                postings.append(
                    ledger.Posting(
                        customer_id=charged_to,
                        account_id=row.account_id if row.account_id in own else None,
                        amount=row.price,
                        kind=TransactionKind.ADJUSTMENT,
                        reference=reference + ":refund",
                        description=text,
                        cdr_id=row.pk,
                        created_by_id=user_id,
                    )
                )
                totals["adjustment_total"] -= row.price
            if info is not None and v.price != 0:
                postings.append(
                    ledger.Posting(
                        customer_id=info.customer_id,
                        account_id=info.account_id if info.own_balance else None,
                        amount=-v.price,
                        kind=TransactionKind.CALL_CHARGE if not was_charged else TransactionKind.ADJUSTMENT,
                        reference=reference,
                        description=text,
                        cdr_id=row.pk,
                        created_by_id=user_id,
                    )
                )
                totals["adjustment_total"] += v.price
        updates.append(
            [
                new_account,
                new_customer,
                v.number,
                v.connection,
                v.prefix,
                v.destination,
                v.billed_seconds,
                v.price,
                v.cost,
                v.margin,
                v.rating_status,
                v.unrated_reason,
                now if v.rating_status == RatingStatus.RATED else None,
                v.pool_key,
                v.pool_seconds,
                run.pk,
                row.pk,
            ]
        )
    bulk_update(Cdr, UPDATED, updates)
    ledger.post(postings)
    rater.flush_pools()
