"""Posts the recurring and one-time charges of every service that carries a plan (issue 14), once
per service and period, through the ledger (docs/recurring-charges.md).

What is due is :mod:`tarifa.core.recurring`'s; this module reads the services, writes one
:class:`~tarifa.billing.models.ServiceCharge` row per charge and posts the rows it wrote.

Exactly once: a charge's key (service kind, service id, charge kind, period start) is unique in
the database. Each chunk inserts its ServiceCharge rows with ``ON CONFLICT DO NOTHING RETURNING``
and posts only the rows that came back, in the same database transaction. A second worker
inserting the same keys waits for the first one's transaction (PostgreSQL's unique index; SQLite
has one writer) and then inserts nothing; a restarted or repeated run finds the keys taken. The
last period charged per service is only a starting point (the cursor): correctness rests on the
unique key alone, so a worker that was down catches up on every period due since.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.db import DataError, transaction
from django.db.models import Max, Min, Sum
from django.utils import timezone

from tarifa.billing import ledger
from tarifa.billing.choices import ChargeKind, ServiceKind, TransactionKind, UnpaidAction
from tarifa.billing.models import ServiceCharge
from tarifa.billing.signals import money_added
from tarifa.core import recurring as rules
from tarifa.core.authorization.judgement import spendable
from tarifa.core.money import minor_unit
from tarifa.customers.choices import BalanceMode, BillingType
from tarifa.customers.signals import ChargedSpan, service_charged
from tarifa.dids.signals import did_releasing

CHUNK = 2000  # services per database transaction

_TRANSACTION_KIND = {
    rules.SETUP: TransactionKind.ONE_TIME_FEE,
    rules.ACTIVATION: TransactionKind.ONE_TIME_FEE,
    rules.RECURRING: TransactionKind.RECURRING_FEE,
    rules.MINIMUM: TransactionKind.MINIMUM_CHARGE,
}
assert set(_TRANSACTION_KIND) == set(ChargeKind)


@dataclass(frozen=True, slots=True)
class Service:
    """One service that carries a plan, as the charging rules need it."""

    kind: str  # ServiceKind
    id: int
    label: str
    customer_id: int
    account_id: int
    own_balance: bool
    terms: rules.Terms
    activation: date
    cancellation: date | None
    unpaid_action: str = UnpaidAction.ALLOW

    def reference(self, charge: rules.Charge) -> str:
        return (
            f"svc:{self.kind}:{self.id}:{self.activation.isoformat()}:{charge.kind}:{charge.period_start.isoformat()}"
        )


@dataclass
class RunResult:
    services: int = 0
    posted: int = 0
    amount: Decimal = Decimal(0)
    blocked: int = 0
    # Services whose charges could not be posted (label, reason): nothing of theirs is posted, and
    # the next run tries them again.
    failed: list[tuple[str, str]] = field(default_factory=list)

    def add(self, other: RunResult) -> None:
        self.services += other.services
        self.posted += other.posted
        self.amount += other.amount
        self.blocked += other.blocked
        self.failed += other.failed


# ---------------------------------------------------------------------------------------------
# Reading the services

_PLAN = (
    "period",
    "recurring_fee",
    "setup_fee",
    "activation_fee",
    "billing_day",
    "weekday",
    "prorate",
    "minimum_amount",
    "unpaid_action",
)


def _plan_terms(row: dict[str, Any], prefix: str, currency: str) -> tuple[rules.Terms, str]:
    p = {name: row[f"{prefix}{name}"] for name in _PLAN}
    terms = rules.Terms(
        period=p["period"],
        fee=p["recurring_fee"],
        setup_fee=p["setup_fee"],
        activation_fee=p["activation_fee"],
        billing_day=p["billing_day"],
        weekday=p["weekday"],
        prorate=p["prorate"],
        minimum=p["minimum_amount"],
        decimals=minor_unit(currency),
    )
    return terms, p["unpaid_action"]


def _monthly_terms(row: dict[str, Any], fee: Decimal, setup: Decimal, currency: str) -> tuple[rules.Terms, str]:
    """DIDs and virtual numbers: monthly, prorated, on the billing day of the account's service plan
    (the 1st without one), and blocked or not as the account's plan says."""
    billing_day = row.get("account__service_plan__billing_day") or 1
    terms = rules.Terms(
        period=rules.MONTHLY, fee=fee, setup_fee=setup, billing_day=billing_day, decimals=minor_unit(currency)
    )
    return terms, row.get("account__service_plan__unpaid_action") or UnpaidAction.ALLOW


def load_services(today: date, *, kind: str | None = None, ids: Sequence[int] | None = None) -> list[Service]:
    """Every service with a plan and an activation date on or before ``today`` (of one kind and
    ids when given), by kind and id."""
    from tarifa.customers.models import Account, IpDevice, SipDevice
    from tarifa.dids.choices import DidStatus
    from tarifa.dids.models import Did, VirtualNumber

    services: list[Service] = []

    def wanted(k: str) -> bool:
        return kind is None or kind == k

    def narrow(qs: Any) -> Any:
        return qs if ids is None else qs.filter(pk__in=list(ids))

    plan_fields = [f"service_plan__{n}" for n in _PLAN]
    account_plan = ["account__service_plan__billing_day", "account__service_plan__unpaid_action"]
    if wanted(ServiceKind.ACCOUNT):
        for row in (
            narrow(Account.objects.filter(service_plan__isnull=False, activation_date__lte=today))
            .values(
                "pk",
                "name",
                "account_code",
                "customer_id",
                "balance_mode",
                "activation_date",
                "cancellation_date",
                "customer__currency",
                *plan_fields,
            )
            .order_by("pk")
        ):
            terms, action = _plan_terms(row, "service_plan__", row["customer__currency"])
            services.append(
                Service(
                    ServiceKind.ACCOUNT,
                    row["pk"],
                    f"account {row['name']} ({row['account_code']})",
                    row["customer_id"],
                    row["pk"],
                    row["balance_mode"] == BalanceMode.OWN,
                    terms,
                    row["activation_date"],
                    row["cancellation_date"],
                    action,
                )
            )
    for model, skind, name in (
        (SipDevice, ServiceKind.SIP_DEVICE, "login"),
        (IpDevice, ServiceKind.IP_DEVICE, "address"),
    ):
        if not wanted(skind):
            continue
        for row in (
            narrow(model.objects.filter(service_plan__isnull=False, activation_date__lte=today))
            .values(
                "pk",
                name,
                "account_id",
                "account__customer_id",
                "account__balance_mode",
                "activation_date",
                "cancellation_date",
                "account__customer__currency",
                *plan_fields,
            )
            .order_by("pk")
        ):
            terms, action = _plan_terms(row, "service_plan__", row["account__customer__currency"])
            what = "extension" if skind == ServiceKind.SIP_DEVICE else "IP address"
            services.append(
                Service(
                    skind,
                    row["pk"],
                    f"{what} {row[name]}",
                    row["account__customer_id"],
                    row["account_id"],
                    row["account__balance_mode"] == BalanceMode.OWN,
                    terms,
                    row["activation_date"],
                    row["cancellation_date"],
                    action,
                )
            )
    if wanted(ServiceKind.DID):
        for row in (
            narrow(
                Did.objects.filter(
                    status=DidStatus.ASSIGNED,
                    account__isnull=False,
                    plan__isnull=False,
                    activation_date__lte=today,
                )
            )
            .values(
                "pk",
                "number",
                "account_id",
                "account__customer_id",
                "account__balance_mode",
                "activation_date",
                "account__customer__currency",
                "plan__monthly_fee",
                "plan__setup_fee",
                *account_plan,
            )
            .order_by("pk")
        ):
            terms, action = _monthly_terms(
                row, row["plan__monthly_fee"], row["plan__setup_fee"], row["account__customer__currency"]
            )
            services.append(
                Service(
                    ServiceKind.DID,
                    row["pk"],
                    f"DID {row['number']}",
                    row["account__customer_id"],
                    row["account_id"],
                    row["account__balance_mode"] == BalanceMode.OWN,
                    terms,
                    row["activation_date"],
                    None,
                    action,
                )
            )
    if wanted(ServiceKind.VIRTUAL_NUMBER):
        for row in (
            narrow(VirtualNumber.objects.filter(activation_date__lte=today, additional_charge__gt=0))
            .values(
                "pk",
                "number",
                "account_id",
                "account__customer_id",
                "account__balance_mode",
                "activation_date",
                "account__customer__currency",
                "additional_charge",
                *account_plan,
            )
            .order_by("pk")
        ):
            terms, action = _monthly_terms(
                row, row["additional_charge"], Decimal(0), row["account__customer__currency"]
            )
            services.append(
                Service(
                    ServiceKind.VIRTUAL_NUMBER,
                    row["pk"],
                    f"virtual number {row['number']}",
                    row["account__customer_id"],
                    row["account_id"],
                    row["account__balance_mode"] == BalanceMode.OWN,
                    terms,
                    row["activation_date"],
                    None,
                    action,
                )
            )
    return services


def _cursors(services: Sequence[Service]) -> dict[tuple[str, int, date], date]:
    """The last period charged (recurring or minimum) of each service since its activation: where
    its next run starts. By activation too: a DID released and assigned again starts afresh."""
    by_kind: dict[str, list[int]] = defaultdict(list)
    for s in services:
        by_kind[s.kind].append(s.id)
    cursors: dict[tuple[str, int, date], date] = {}
    for skind, ids in by_kind.items():
        for start in range(0, len(ids), 5000):
            for sid, began, last in (
                ServiceCharge.objects.filter(
                    service_kind=skind,
                    service_id__in=ids[start : start + 5000],
                    kind__in=[ChargeKind.RECURRING, ChargeKind.MINIMUM],
                )
                .values("service_id", "service_start")
                .annotate(last=Max("period_start"))
                .values_list(
                    "service_id",
                    "service_start",
                    "last",
                )
            ):
                cursors[(skind, sid, began)] = last
    return cursors


# ---------------------------------------------------------------------------------------------
# What is due


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def usage_charges(account_id: int, start: date, following: date) -> Decimal:
    """The account's call charges (customer price of its CDRs) that started in [start, following) UTC."""
    from tarifa.cdrs.models import Cdr

    total = Cdr.objects.filter(
        account_id=account_id,
        start_time__gte=_day_start(start),
        start_time__lt=_day_start(following),
    ).aggregate(total=Sum("price"))["total"]
    return total or Decimal(0)


def due(service: Service, today: date, after: date | None) -> list[rules.Charge]:
    """The charges of ``service`` due by ``today`` for periods after ``after``, minimum included."""
    charges = rules.charges_due(
        service.terms, service.activation, service.cancellation, today, after=after, what=service.label
    )
    if service.kind == ServiceKind.ACCOUNT and service.terms.minimum > 0:
        for start, end, days, period_days, on in rules.recurring_periods(
            service.terms,
            service.activation,
            service.cancellation,
            today,
            after=after,
        ):
            usage = usage_charges(service.id, start, end + timedelta(days=1))
            short = rules.minimum_shortfall(service.terms, usage, days, period_days)
            if short > 0:
                charges.append(
                    rules.Charge(
                        rules.MINIMUM,
                        start,
                        end,
                        short,
                        f"Minimum billing, {service.label}, {start.isoformat()} to {end.isoformat()}: "
                        f"usage {usage} below the minimum",
                        days,
                        period_days,
                        on,
                    )
                )
    return charges


# ---------------------------------------------------------------------------------------------
# Posting

_SC_COLUMNS = (
    "service_kind",
    "service_id",
    "service_start",
    "kind",
    "period_start",
    "period_end",
    "amount",
    "customer",
    "account",
    "reference",
    "description",
    "created_at",
)


def _insert_new(rows: list[list[Any]]) -> set[str]:
    """Insert ServiceCharge rows, skipping those whose key is taken; the references inserted."""
    from tarifa.db import insert_new

    return set(insert_new(ServiceCharge, _SC_COLUMNS, rows, "reference"))


def _post(services_charges: Iterable[tuple[Service, list[rules.Charge]]]) -> RunResult:
    """Inside the caller's transaction: write the charges' rows, post those that were new, block
    the accounts whose blocking plans' charges the balance cannot pay."""
    result = RunResult()
    now = timezone.now()
    rows: list[list[Any]] = []
    owners: dict[str, tuple[Service, rules.Charge]] = {}
    for service, charges in services_charges:
        result.services += 1
        for charge in sorted(charges, key=lambda c: (c.period_start, c.kind)):
            ref = service.reference(charge)
            owners[ref] = (service, charge)
            rows.append(
                [
                    service.kind,
                    service.id,
                    service.activation,
                    charge.kind,
                    charge.period_start,
                    charge.period_end,
                    charge.amount,
                    service.customer_id,
                    service.account_id,
                    ref,
                    charge.description[:200],
                    now,
                ]
            )
    # One order for every worker (customer, service, charge kind, period), the order services are
    # chunked in too: two workers take the unique keys in the same order and cannot deadlock.
    rows.sort(key=lambda r: (r[7], r[0], r[1], r[2], r[3], r[4]))
    inserted = _insert_new(rows)
    if not inserted:
        return result
    postings = []
    for ref in sorted(inserted, key=lambda r: (owners[r][0].customer_id, r)):
        service, charge = owners[ref]
        postings.append(
            ledger.Posting(
                customer_id=service.customer_id,
                amount=-charge.amount,
                kind=_TRANSACTION_KIND[charge.kind],
                reference=ref,
                description=charge.description[:200],
                account_id=service.account_id if service.own_balance else None,
            )
        )
        result.posted += 1
        result.amount += charge.amount
    balances = ledger.post(postings)
    blocking = {owners[ref][0] for ref in inserted if owners[ref][0].unpaid_action == UnpaidAction.BLOCK}
    result.blocked = _block_unpaid(blocking, balances)
    return result


def _funds(customer_ids: Iterable[int]) -> dict[int, tuple[str, Decimal]]:
    from tarifa.customers.models import Customer

    return {
        pk: (bt, limit)
        for pk, bt, limit in Customer.objects.filter(pk__in=set(customer_ids)).values_list(
            "pk", "billing_type", "credit_limit"
        )
    }


def _covered(balance: Decimal, billing_type: str, credit_limit: Decimal) -> bool:
    """Whether a balance pays what was charged: prepaid down to 0, postpaid down to minus the credit limit."""
    return spendable(balance, credit_limit, billing_type == BillingType.POSTPAID) >= 0


def _block_unpaid(services: set[Service], balances: dict[tuple[str, int], Decimal]) -> int:
    from tarifa.calls.cache import bump
    from tarifa.customers.models import Account

    if not services:
        return 0
    terms = _funds(s.customer_id for s in services)
    to_block = set()
    for s in services:
        owner = ("account", s.account_id) if s.own_balance else ("customer", s.customer_id)
        balance = balances.get(owner)
        if balance is not None and not _covered(balance, *terms[s.customer_id]):
            to_block.add(s.account_id)
    if not to_block:
        return 0
    count = Account.objects.filter(pk__in=to_block, blocked_for_unpaid=False).update(blocked_for_unpaid=True)
    bump()  # update() sends no signals: the call caches learn of the block through the version
    return count


def release_paid_blocks(customer_id: int | None = None) -> int:
    """Clear the unpaid block of the accounts whose balance covers what they owe again (after a
    payment); the number of accounts released. Runs in the caller's transaction or its own."""
    from tarifa.calls.cache import bump
    from tarifa.customers.models import Account

    blocked = Account.objects.filter(blocked_for_unpaid=True)
    if customer_id is not None:
        blocked = blocked.filter(customer_id=customer_id)
    rows = list(
        blocked.values_list(
            "pk",
            "customer_id",
            "balance_mode",
            "balance",
            "customer__balance",
            "customer__billing_type",
            "customer__credit_limit",
        )
    )
    free = [
        pk
        for pk, _, mode, own, shared, bt, limit in rows
        if _covered(own if mode == BalanceMode.OWN else shared, bt, limit)
    ]
    if not free:
        return 0
    with transaction.atomic():
        count = Account.objects.filter(pk__in=free, blocked_for_unpaid=True).update(blocked_for_unpaid=False)
        bump()
    return count


def _chunks(items: Sequence[Service], size: int) -> Iterator[Sequence[Service]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def run_charges(today: date | None = None, *, chunk: int = CHUNK) -> RunResult:
    """Post every charge due by ``today`` (default: today UTC) that is not posted yet. Safe to run
    again, after a crash, or in several workers at once: each charge is posted exactly once."""
    today = today or timezone.now().astimezone(UTC).date()
    # By customer: a chunk locks and updates few balances (the ledger locks each customer posted to).
    services = sorted(load_services(today), key=lambda s: (s.customer_id, s.kind, s.id))
    result = RunResult()
    for part in _chunks(services, chunk):
        cursors = _cursors(part)
        work = [(s, due(s, today, cursors.get((s.kind, s.id, s.activation)))) for s in part]
        work = [(s, c) for s, c in work if c]
        try:
            with transaction.atomic():
                result.add(_post(work))
        except (ValueError, ArithmeticError, DataError):
            # A charge the ledger refuses (a balance out of its range, say): each service alone, so
            # the others are posted and the one that cannot be is reported, not the whole chunk lost.
            for service, charges in work:
                try:
                    with transaction.atomic():
                        result.add(_post([(service, charges)]))
                except (ValueError, ArithmeticError, DataError) as exc:
                    result.services += 1
                    result.failed.append((service.label, str(exc)))
        result.services += len(part) - len(work)
    release_paid_blocks()
    return result


def post_cancellation_charge(service_kind: str, service: Any, on: date) -> list[ServiceCharge]:
    """Post what a service owes up to its cancellation on ``on`` (the first day not charged): the
    prorated last period and any period not charged yet. Call it while the service still knows its
    account and plan (before a DID is released). Returns the service's ServiceCharge rows for
    those charges, whether posted now or before (calling it twice posts nothing more)."""
    if service_kind not in ServiceKind.values:
        raise ValueError(f"Service kind {service_kind!r} is refused: must be one of {', '.join(ServiceKind.values)}")
    kind = ServiceKind(service_kind)
    found = load_services(on, kind=kind, ids=[service.pk])
    if not found:
        return []
    current = found[0]
    cancellation = on if current.cancellation is None else min(on, current.cancellation)
    ending = Service(
        current.kind,
        current.id,
        current.label,
        current.customer_id,
        current.account_id,
        current.own_balance,
        current.terms,
        current.activation,
        cancellation,
        current.unpaid_action,
    )
    charges = due(ending, on, None)
    with transaction.atomic():
        _post([(ending, charges)] if charges else [])
    refs = [ending.reference(c) for c in charges]
    return list(
        ServiceCharge.objects.filter(reference__in=refs, service_kind=kind, service_id=service.pk).order_by(
            "period_start", "kind"
        )
    )


__all__ = [
    "RunResult",
    "Service",
    "load_services",
    "minor_unit",
    "post_cancellation_charge",
    "release_paid_blocks",
    "run_charges",
    "usage_charges",
]


def _release_on_money(sender: object, customer_id: int, **_: object) -> None:
    release_paid_blocks(customer_id)


def _charge_released_did(sender: object, did: Any, on: date, **_: object) -> None:
    post_cancellation_charge(ServiceKind.DID, did, on)


def _charge_deleted_service(sender: Any, instance: Any, **_: object) -> None:
    """A virtual number, extension or IP address deleted while it had a plan pays up to today
    (UTC) first: its row -- and so its account and plan -- is still there (pre_delete)."""
    from tarifa.customers.models import IpDevice, SipDevice
    from tarifa.dids.models import VirtualNumber

    kind = {
        VirtualNumber: ServiceKind.VIRTUAL_NUMBER,
        SipDevice: ServiceKind.SIP_DEVICE,
        IpDevice: ServiceKind.IP_DEVICE,
    }
    post_cancellation_charge(kind[sender], instance, timezone.now().astimezone(UTC).date())


def _charged_span(
    sender: object,
    kind: str,
    service_id: int,
    activation: date | None,
    other_than: date | None,
    periods_only: bool,
    **_: object,
) -> ChargedSpan | None:
    """The days covered by a service's posted charges, for the models' date rules
    (tarifa.customers.signals): from the first period's start to the last day charged."""
    charged = ServiceCharge.objects.filter(service_kind=kind, service_id=service_id)
    if activation is not None:
        charged = charged.filter(service_start=activation)
    if other_than is not None:
        charged = charged.exclude(service_start=other_than)
    if periods_only:
        charged = charged.filter(kind__in=[ChargeKind.RECURRING, ChargeKind.MINIMUM])
    span = charged.aggregate(first=Min("period_start"), through=Max("period_end"))
    if span["first"] is None:
        return None
    return ChargedSpan(span["first"], span["through"])


def connect_signals() -> None:
    """Money added for a customer releases the accounts its unpaid block held (billing.signals);
    a DID released, and a virtual number, extension or IP address deleted, is charged up to that
    day first (dids.signals, pre_delete); the models ask what a service was charged for
    (customers.signals)."""
    from django.db.models.signals import pre_delete

    from tarifa.customers.models import IpDevice, SipDevice
    from tarifa.dids.models import VirtualNumber

    money_added.connect(_release_on_money, dispatch_uid="tarifa.services.recurring.release")
    did_releasing.connect(_charge_released_did, dispatch_uid="tarifa.services.recurring.did_released")
    service_charged.connect(_charged_span, dispatch_uid="tarifa.services.recurring.charged_span")
    for model in (VirtualNumber, SipDevice, IpDevice):
        pre_delete.connect(
            _charge_deleted_service, sender=model, dispatch_uid=f"tarifa.services.recurring.{model.__name__}"
        )
