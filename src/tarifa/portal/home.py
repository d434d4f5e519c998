"""The home page's numbers: balance, what may still be spent, this month's spend, the spend chart."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.db.models import Count, Max, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from tarifa.core.authorization.judgement import spendable
from tarifa.customers.choices import BalanceMode, BillingType
from tarifa.customers.models import Customer
from tarifa.notices.models import NoticeSettings
from tarifa.portal import scope

__all__ = ["Bar", "Summary", "low_balance_threshold", "spend_chart", "summary"]

CHART_DAYS = 30
CHART_WIDTH = 600
CHART_HEIGHT = 160


@dataclass(frozen=True)
class Summary:
    balance: Decimal
    credit_limit: Decimal
    postpaid: bool
    reserved: Decimal  # held by calls in progress on the customer's balance
    available: Decimal  # what calls may still spend
    month_spend: Decimal
    month_calls: int
    month_start: date
    calls_in_progress: int
    threshold: Decimal | None  # the low-balance threshold the warning compares with
    low: bool


def _month_start(customer: Customer, now: datetime) -> datetime:
    local = now.astimezone(scope.zone(customer))
    return local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def summary(customer: Customer, now: datetime | None = None) -> Summary:
    now = now or timezone.now()
    postpaid = customer.billing_type == BillingType.POSTPAID
    reserved = scope.calls_in_progress(customer).filter(own_balance=False).aggregate(s=Sum("amount"))["s"] or Decimal(0)
    available = spendable(customer.balance, customer.credit_limit, postpaid) - reserved
    start = _month_start(customer, now)
    month = scope.cdrs(customer).filter(start_time__gte=start).aggregate(s=Sum("price"), n=Count("id"))
    threshold = low_balance_threshold(customer)
    low = available <= 0 or (threshold is not None and available < threshold)
    return Summary(
        balance=customer.balance,
        credit_limit=customer.credit_limit,
        postpaid=postpaid,
        reserved=reserved,
        available=available,
        month_spend=month["s"] or Decimal(0),
        month_calls=month["n"] or 0,
        month_start=start.date(),
        calls_in_progress=scope.calls_in_progress(customer).count(),
        threshold=threshold,
        low=low,
    )


def low_balance_threshold(customer: Customer) -> Decimal | None:
    """The customer's own low-balance threshold (its notice settings, the profile page) when set;
    otherwise the highest threshold of the accounts that share the customer's balance (seed 001
    "Balance Threshold"); None when neither is set."""
    own: Decimal | None = (
        NoticeSettings.objects.filter(customer_id=customer.pk).values_list("low_balance_threshold", flat=True).first()
    )
    if own is not None:
        return own
    shared = scope.accounts(customer).filter(balance_mode=BalanceMode.SHARED)
    found: Decimal | None = shared.aggregate(t=Max("balance_threshold"))["t"]
    return found


@dataclass(frozen=True)
class Bar:
    day: date
    amount: Decimal
    x: int
    y: int
    width: int
    height: int


def spend_chart(customer: Customer, now: datetime | None = None, days: int = CHART_DAYS) -> list[Bar]:
    """One bar per day of the last ``days`` days (the customer's days), scaled to the chart's
    height in whole pixels; days without calls have an empty bar. Drawn as inline SVG."""
    now = now or timezone.now()
    zone = scope.zone(customer)
    today = now.astimezone(zone).date()
    first = today - timedelta(days=days - 1)
    since = datetime.combine(first, datetime.min.time(), tzinfo=zone)
    rows = (
        scope.cdrs(customer)
        .filter(start_time__gte=since)
        .annotate(day=TruncDate("start_time", tzinfo=zone))
        .values("day")
        .annotate(total=Sum("price"))
        .order_by()
    )
    by_day = {row["day"]: row["total"] or Decimal(0) for row in rows}
    top = max(by_day.values(), default=Decimal(0))
    slot = CHART_WIDTH // days
    bars = []
    for n in range(days):
        day = first + timedelta(days=n)
        amount = by_day.get(day, Decimal(0))
        height = int(amount * (CHART_HEIGHT - 10) / top) if top > 0 else 0
        height = max(height, 1) if amount > 0 else 0
        bars.append(Bar(day, amount, n * slot + 1, CHART_HEIGHT - height, slot - 2, height))
    return bars
