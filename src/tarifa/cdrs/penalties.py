"""Short-call-duration penalties (docs/origination.md): computed over a closed month's inbound
CDRs and posted once per customer, plan and month through the ledger.

The rule is :func:`tarifa.core.origination.short_call_penalty`; this module reads CDRs and DID
plans and posts Transactions, so it sits with the CDRs, above billing and DIDs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import Case, CharField, Count, F, Q, When
from django.db.models.functions import Substr

from tarifa.billing import ledger
from tarifa.billing.models import Transaction
from tarifa.cdrs.models import Cdr
from tarifa.core.origination import PenaltyMode, ShortCallPolicy, short_call_penalty
from tarifa.customers.models import Customer
from tarifa.dids.models import Did, DidPlan, VirtualNumber


class PeriodNotClosed(ValueError):
    """The month is not over yet: its penalty cannot be known."""


@dataclass(frozen=True, slots=True)
class PenaltyPosted:
    customer_id: int
    plan: str
    calls: int
    short: int
    amount: Decimal
    posted: bool  # False: posted by an earlier run (its reference exists)
    currency: str = ""  # the customer's, for showing the amount with its decimals


def _month_bounds(month: date) -> tuple[datetime, datetime]:
    start = datetime(month.year, month.month, 1, tzinfo=UTC)
    end = datetime(month.year + (month.month == 12), month.month % 12 + 1, 1, tzinfo=UTC)
    return start, end


def penalty_reference(plan_id: int, customer_id: int, month: date) -> str:
    """The unique Transaction reference of one customer's penalty for one plan and month: what
    makes posting idempotent (run twice, or two runs at once, and it is posted once)."""
    return f"short-calls:{plan_id}:{customer_id}:{month:%Y-%m}"


def post_short_call_penalties(month: date, *, now: datetime | None = None) -> list[PenaltyPosted]:
    """Compute and post the short-call penalties of the calendar month (UTC) ``month``, which
    must be over. A customer's calls to a plan's numbers are its answered inbound A-leg calls
    to the plan's DIDs and to the virtual numbers sharing them."""
    moment = now or datetime.now(UTC)
    if (month.year, month.month) >= (moment.year, moment.month):  # this month or later: not over (and
        # December 9999 would have no following month to end on)
        raise PeriodNotClosed(f"month {month:%Y-%m} is refused: it is not over yet (today is {moment:%Y-%m-%d} UTC)")
    start, end = _month_bounds(month)
    if end > moment:
        raise PeriodNotClosed(f"month {month:%Y-%m} is refused: it ends {end:%Y-%m-%d %H:%M} UTC, not yet over")
    results: list[PenaltyPosted] = []
    for plan in DidPlan.objects.filter(short_call_seconds__gt=0, short_call_penalty__gt=0).order_by("pk"):
        policy = ShortCallPolicy(
            plan.short_call_seconds,
            plan.short_call_threshold,
            plan.short_call_penalty,
            PenaltyMode(plan.short_call_mode),
        )
        counts = (
            Cdr.objects.filter(
                direction="inbound",
                leg="a",
                disposition="answered",
                duration__gt=0,
                customer__isnull=False,
                start_time__gte=start,
                start_time__lt=end,
            )
            .annotate(
                did_digits=Case(
                    When(did__startswith="+", then=Substr("did", 2)), default=F("did"), output_field=CharField()
                )
            )
            .filter(_rated_as(plan))
            .values("customer")
            .annotate(calls=Count("id"), short=Count("id", filter=Q(duration__lt=policy.seconds)))
            .order_by("customer")
        )
        for row in counts:
            amount = short_call_penalty(policy, row["calls"], row["short"])
            if not amount:
                continue
            reference = penalty_reference(plan.pk, row["customer"], month)
            posted = _post_once(
                row["customer"],
                amount,
                reference,
                f"Short-call penalty {month:%Y-%m}, plan {plan.name}: {row['short']} of "
                f"{row['calls']} calls under {policy.seconds} s",
            )
            currency = Customer.objects.filter(pk=row["customer"]).values_list("currency", flat=True).first() or ""
            results.append(
                PenaltyPosted(row["customer"], plan.name, row["calls"], row["short"], amount, posted, currency)
            )
    return results


def _rated_as(plan: DidPlan) -> Q:
    """The inbound CDRs rated as one of the plan's DIDs (or of the virtual numbers sharing them),
    found the way matching found them (``Directory.match``): by the CDR's ``did`` field (a
    leading ``+`` ignored, see ``did_digits``) when it names a DID we hold, else by the callee,
    else a virtual number by callee or extension. Counting by the callee alone left out the
    calls a switch identified by the ``did`` field. Subqueries, not lists: the inventory may
    hold more numbers than a query may carry parameters."""
    held = Did.objects.values("number")
    dids = Did.objects.filter(plan=plan).values("number")
    virtual = VirtualNumber.objects.filter(primary_did__plan=plan).values("number")
    by_callee_or_virtual = Q(number__in=dids) | (
        ~Q(number__in=held) & (Q(number__in=virtual) | Q(extension__in=virtual))
    )
    return Q(did_digits__in=dids) | (~Q(did_digits__in=held) & by_callee_or_virtual)


def _post_once(customer_id: int, amount: Decimal, reference: str, description: str) -> bool:
    """Post the penalty unless its reference exists; the unique reference settles a race."""
    if Transaction.objects.filter(reference=reference).exists():
        return False
    try:
        with transaction.atomic():
            ledger.post(
                [
                    ledger.Posting(
                        customer_id=customer_id,
                        amount=-amount,
                        kind="penalty",
                        reference=reference,
                        description=description,
                    )
                ]
            )
    except IntegrityError:  # another run posted it in between
        return False
    return True
