"""The monthly deposit job (``tarifa deposits run``, and the worker): interest credited and the
automatic adjustment to usage; docs/deposits.md.

For every customer with a :class:`~tarifa.billing.models.Deposit`:

* interest: every whole month from the deposit's ``since`` month to the month before the run's day is
  credited once (reference ``deposit-interest:<customer>:<YYYY-MM>``), computed by
  :func:`tarifa.core.deposits.interest` from the day-by-day amount held, rebuilt from the deposit
  Transactions (interest excluded);
* adjustment (when ``auto_adjust``): once per month (reference ``deposit-adjust:<customer>:<YYYY-MM>``)
  the required deposit (:func:`tarifa.core.deposits.required_deposit`) over the usage of the last
  ``lookback`` whole months the customer existed in, and the difference requested or released through
  :func:`tarifa.billing.deposits.move_deposit`.

Usage is what the customer was charged for consumption: call charges, recurring fees and minimum-billing
shortfalls (Transactions of those kinds), by calendar month in UTC.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.db.models.functions import TruncMonth

from tarifa.billing import ledger
from tarifa.billing.choices import TransactionKind
from tarifa.billing.deposits import ADJUST_PREFIX, INTEREST_PREFIX, Refused, move_deposit
from tarifa.billing.models import Deposit, Transaction
from tarifa.core import deposits as rules
from tarifa.core.money import shown_amount
from tarifa.core.penalties import add_months

__all__ = ["USAGE_KINDS", "DepositRun", "run_deposits"]

USAGE_KINDS = (TransactionKind.CALL_CHARGE, TransactionKind.RECURRING_FEE, TransactionKind.MINIMUM_CHARGE)


@dataclass
class DepositRun:
    deposits: int = 0
    interest_posted: int = 0
    interest: Decimal = Decimal(0)
    requested: Decimal = Decimal(0)
    released: Decimal = Decimal(0)
    failed: list[tuple[str, str]] = field(default_factory=list)


def _month_start(day: date) -> date:
    return day.replace(day=1)


def _at(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def _histories(customer_ids: list[int]) -> dict[int, list[tuple[date, Decimal]]]:
    """Per customer, (day, held after) of every deposit movement (interest excluded), in time order."""
    out: dict[int, list[tuple[date, Decimal]]] = defaultdict(list)
    held: dict[int, Decimal] = defaultdict(Decimal)
    rows = (
        Transaction.objects.filter(customer_id__in=customer_ids, kind=TransactionKind.DEPOSIT)
        .exclude(reference__startswith=INTEREST_PREFIX)
        .order_by("created_at", "id")
        .values_list("customer_id", "created_at", "amount")
    )
    for customer_id, created_at, amount in rows:
        held[customer_id] -= amount  # a deposit posted is a charge (negative) that raises what is held
        out[customer_id].append((created_at.astimezone(UTC).date(), held[customer_id]))
    return out


def _usage(customer_ids: list[int], start: date, end: date) -> dict[int, dict[date, Decimal]]:
    """Per customer and month (first day) in [start, end): the usage charged, as a positive amount."""
    out: dict[int, dict[date, Decimal]] = defaultdict(dict)
    rows = (
        Transaction.objects.filter(
            customer_id__in=customer_ids, kind__in=USAGE_KINDS, created_at__gte=_at(start), created_at__lt=_at(end)
        )
        .annotate(month=TruncMonth("created_at", tzinfo=UTC))
        .values_list("customer_id", "month")
        .annotate(total=Sum("amount"))
    )
    for customer_id, month, total in rows:
        day = month.date() if isinstance(month, datetime) else month
        out[customer_id][day] = -(total or Decimal(0))
    return out


def run_deposits(on: date | None = None) -> DepositRun:
    """Credit the interest of every whole month not credited yet, then adjust this month's deposits."""
    day = on or datetime.now(UTC).date()
    this_month = _month_start(day)
    result = DepositRun()
    deposits = list(Deposit.objects.select_related("customer"))
    if not deposits:
        return result
    ids = [d.customer_id for d in deposits]
    histories = _histories(ids)
    lookback = max(d.lookback for d in deposits)
    usage = _usage(ids, add_months(this_month, -lookback), this_month)
    used = {
        ref
        for ref in Transaction.objects.filter(customer_id__in=ids, kind=TransactionKind.DEPOSIT)
        .filter(reference__startswith="deposit-")
        .values_list("reference", flat=True)
        if ref is not None
    }
    for deposit in deposits:
        result.deposits += 1
        customer = deposit.customer
        try:
            _credit_interest(deposit, histories.get(customer.pk, []), this_month, used, result)
            if deposit.auto_adjust:
                _adjust(deposit, usage.get(customer.pk, {}), this_month, used, result)
        except (Refused, IntegrityError) as exc:
            result.failed.append((str(customer), str(exc)))
    return result


def _credit_interest(
    deposit: Deposit, history: list[tuple[date, Decimal]], this_month: date, used: set[str], result: DepositRun
) -> None:
    if deposit.interest_rate <= 0:
        return
    customer = deposit.customer
    month = _month_start(deposit.since)
    while month < this_month:
        reference = f"{INTEREST_PREFIX}{customer.pk}:{month:%Y-%m}"
        if reference not in used:
            amount = rules.interest(history, month.year, month.month, deposit.interest_rate, customer.billing_decimals)
            if amount > 0:
                with transaction.atomic():
                    ledger.post(
                        [
                            ledger.Posting(
                                customer_id=customer.pk,
                                amount=amount,
                                kind=TransactionKind.DEPOSIT,
                                reference=reference,
                                description=f"Deposit interest {month:%Y-%m} at {deposit.interest_rate.normalize():f}% a year",
                            )
                        ]
                    )
                result.interest_posted += 1
                result.interest += amount
        month = add_months(month, 1)


def _adjust(deposit: Deposit, usage: dict[date, Decimal], this_month: date, used: set[str], result: DepositRun) -> None:
    customer = deposit.customer
    reference = f"{ADJUST_PREFIX}{customer.pk}:{this_month:%Y-%m}"
    if reference in used:
        return
    first = _month_start(customer.created_at.astimezone(UTC).date())
    months = [add_months(this_month, -k) for k in range(deposit.lookback, 0, -1) if add_months(this_month, -k) >= first]
    terms = deposit.as_terms()
    required = rules.required_deposit([usage.get(m, Decimal(0)) for m in months], terms, customer.billing_decimals)
    held = Deposit.objects.filter(pk=deposit.pk).values_list("held", flat=True).get()
    change = rules.adjustment(held, required, terms.threshold)
    if change == 0:
        return
    action = "post" if change > 0 else "return"
    move_deposit(
        customer,
        action,
        abs(change),
        reference=reference,
        reason=f"automatic adjustment {this_month:%Y-%m}: required {required} ({terms.months.normalize():f} × "
        f"average usage of {len(months)} month(s)), held {shown_amount(held, customer.billing_decimals)}",
        actor="",
        automatic=True,
    )
    if change > 0:
        result.requested += change
    else:
        result.released -= change
