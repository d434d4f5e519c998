"""The scheduled checks: low balances and cards about to expire. Each finds its few candidates in
one query (not a loop over every customer), asks the core rule, and queues notices by unique key,
so any number of workers may run them at once and each notice is queued once."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.db.models import Case, ExpressionWrapper, F, Max, Q, Value, When
from django.utils import timezone

from tarifa.billing.models import PaymentMethod
from tarifa.core.authorization.judgement import spendable
from tarifa.core.notices import (
    LowBalance,
    NoticeKind,
    card_expires_on,
    card_expiry_key,
    expiry_months,
    expiry_window,
    low_balance_due,
    low_balance_key,
    money_text,
)
from tarifa.customers.choices import BalanceMode, BillingType, Status
from tarifa.customers.models import Account, Customer
from tarifa.fields import ExactDecimalField
from tarifa.notices.models import NoticeSettings, Outbox
from tarifa.notices.queue import Notice, Rendered, customer_addresses, enqueue, template_for

CHUNK = 500


@dataclass(frozen=True)
class Candidate:
    """A customer or an account whose funds are below its threshold, as the query found it."""

    target: str  # customer:12 | account:34
    customer_id: int
    account_id: int | None
    balance: Decimal
    credit_limit: Decimal
    postpaid: bool
    threshold: Decimal
    addresses: tuple[str, ...]
    context: dict[str, str]
    time_zone: str


def _units(field_path: str, places: int) -> Any:
    """A money column as integer 10^-6 units in SQL (columns are stored with their own places:
    thresholds in cents, balances in micro-units), so columns of either kind compare exactly."""
    scale = 10 ** (6 - places)
    column = F(field_path)
    return column * Value(scale) if scale != 1 else column


_MICRO = ExactDecimalField(places=6)


def _places(model: Any, name: str) -> int:
    field = model._meta.get_field(name)
    assert isinstance(field, ExactDecimalField)
    return field.places


def _funds(balance: Any, prefix: str) -> Any:
    """``judgement.spendable`` in SQL, in micro-units: balance, plus the credit limit when
    postpaid. The candidates are checked again with ``spendable`` itself before anything is sent
    (tests/integration/test_notices.py pins the two together)."""
    credit = Case(
        When(**{f"{prefix}billing_type": BillingType.POSTPAID}, then=F(f"{prefix}credit_limit")),
        default=Value(0),
    )
    return ExpressionWrapper(balance + credit, output_field=_MICRO)


def low_balance_candidates() -> Iterator[Candidate]:
    """Customers (their notice settings) and accounts (seed 001 balance threshold) of active
    customers whose available funds are below their threshold: two indexed queries, each row a
    candidate."""
    threshold_places = _places(NoticeSettings, "low_balance_threshold")
    customers = (
        NoticeSettings.objects.filter(low_balance_threshold__isnull=False, customer__status=Status.ACTIVE)
        .annotate(
            funds=_funds(F("customer__balance"), "customer__"),
            limit=ExpressionWrapper(_units("low_balance_threshold", threshold_places), output_field=_MICRO),
        )
        .filter(funds__lt=F("limit"))
        .values_list(
            "customer_id",
            "customer__balance",
            "customer__credit_limit",
            "customer__billing_type",
            "low_balance_threshold",
            "emails",
            "customer__email",
            "customer__name",
            "customer__company",
            "customer__account_code",
            "customer__currency",
            "customer__time_zone",
        )
        .order_by("customer_id")
    )
    for (
        cid,
        balance,
        credit,
        billing,
        threshold,
        emails,
        email,
        name,
        company,
        code,
        currency,
        tz,
    ) in customers.iterator(chunk_size=CHUNK):
        yield Candidate(
            target=f"customer:{cid}",
            customer_id=cid,
            account_id=None,
            balance=balance,
            credit_limit=credit,
            postpaid=billing == BillingType.POSTPAID,
            threshold=threshold,
            addresses=(emails, email),
            context=_common(name, company, code, currency) | {"account_name": f"account {code}"},
            time_zone=tz,
        )
    account_places = _places(Account, "balance_threshold")
    balance = Case(
        When(balance_mode=BalanceMode.OWN, then=F("balance")),
        default=F("customer__balance"),
    )
    accounts = (
        Account.objects.filter(balance_threshold__isnull=False, status=Status.ACTIVE, customer__status=Status.ACTIVE)
        .annotate(
            funds=_funds(balance, "customer__"),
            limit=ExpressionWrapper(_units("balance_threshold", account_places), output_field=_MICRO),
        )
        .filter(funds__lt=F("limit"))
        .values_list(
            "id",
            "customer_id",
            "balance_mode",
            "balance",
            "customer__balance",
            "customer__credit_limit",
            "customer__billing_type",
            "balance_threshold",
            "notification_emails",
            "customer__email",
            "customer__name",
            "customer__company",
            "account_code",
            "name",
            "customer__currency",
            "customer__time_zone",
        )
        .order_by("id")
    )
    for row in accounts.iterator(chunk_size=CHUNK):
        (
            aid,
            cid,
            mode,
            own,
            shared,
            credit,
            billing,
            threshold,
            emails,
            email,
            cname,
            company,
            code,
            aname,
            cur,
            tz,
        ) = row
        yield Candidate(
            target=f"account:{aid}",
            customer_id=cid,
            account_id=aid,
            balance=own if mode == BalanceMode.OWN else shared,
            credit_limit=credit,
            postpaid=billing == BillingType.POSTPAID,
            threshold=threshold,
            addresses=(emails, email),
            context=_common(cname, company, code, cur) | {"account_name": f"account {aname} ({code})"},
            time_zone=tz,
        )


def _common(name: str, company: str, code: str, currency: str) -> dict[str, str]:
    return {"customer_name": name, "company": company, "account_code": code, "currency": currency}


def _chunks(items: Iterable[Candidate], size: int) -> Iterator[list[Candidate]]:
    chunk: list[Candidate] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def check_low_balances(now: datetime | None = None) -> int:
    """Queue the low-balance notices due now; the number queued."""
    now = now or timezone.now()
    queued = 0
    template = template_for(NoticeKind.LOW_BALANCE)  # read once per check, not once per notice
    for chunk in _chunks(low_balance_candidates(), CHUNK):
        customer_ids = {c.customer_id for c in chunk}
        account_ids = {c.account_id for c in chunk if c.account_id is not None}
        last_sent: dict[str, datetime] = {}
        for cid, at in (
            Outbox.objects.filter(kind=NoticeKind.LOW_BALANCE, customer_id__in=customer_ids, account__isnull=True)
            .values("customer_id")
            .annotate(last=Max("created_at"))
            .values_list("customer_id", "last")
        ):
            last_sent[f"customer:{cid}"] = at
        for aid, at in (
            Outbox.objects.filter(kind=NoticeKind.LOW_BALANCE, account_id__in=account_ids)
            .values("account_id")
            .annotate(last=Max("created_at"))
            .values_list("account_id", "last")
        ):
            last_sent[f"account:{aid}"] = at
        rearmed = dict(
            NoticeSettings.objects.filter(customer_id__in=customer_ids, rearmed_at__isnull=False).values_list(
                "customer_id", "rearmed_at"
            )
        )
        for candidate in chunk:
            queued += _low_balance_notice(
                candidate, last_sent.get(candidate.target), rearmed.get(candidate.customer_id), now, template
            )
    return queued


def _low_balance_notice(
    c: Candidate, last_sent: datetime | None, rearmed: datetime | None, now: datetime, template: Rendered | None = None
) -> int:
    funds = spendable(c.balance, c.credit_limit, c.postpaid)
    zone = _zone(c.time_zone)

    def day_of(moment: datetime) -> date:
        return moment.astimezone(zone).date()

    state = LowBalance(funds=funds, threshold=c.threshold, last_sent_at=last_sent, rearmed_at=rearmed)
    if not low_balance_due(state, now, day_of):
        return 0
    context = c.context | {
        "available_funds": money_text(funds),
        "threshold": money_text(c.threshold),
        "balance": money_text(c.balance),
    }
    notice = Notice(
        kind=NoticeKind.LOW_BALANCE,
        key=low_balance_key(c.target, day_of(now), rearmed),
        addresses=c.addresses,
        context=context,
        customer_id=c.customer_id,
        account_id=c.account_id,
    )
    return 1 if enqueue(notice, now, template) else 0


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ValueError, KeyError, OSError):
        return ZoneInfo("UTC")


def check_card_expiry(windows: Sequence[int], now: datetime | None = None) -> int:
    """Queue a notice for each active saved card that entered an expiry window (days before the
    end of its expiry month) and was not told about that window yet; the number queued."""
    now = now or timezone.now()
    today = now.date()
    months = expiry_months(today, max(windows))
    match = Q()
    for year, month in months:
        match |= Q(expiry_year=year, expiry_month=month)
    due: list[tuple[PaymentMethod, int, str]] = []
    for method in (
        PaymentMethod.objects.filter(match, active=True, customer__status=Status.ACTIVE)
        .select_related("customer")
        .order_by("id")
    ):
        assert method.expiry_year is not None and method.expiry_month is not None  # the filter above
        window = expiry_window(method.expiry_year, method.expiry_month, today, windows)
        if window is not None:
            due.append((method, window, card_expiry_key(method.pk, method.expiry_year, method.expiry_month, window)))
    done = set(Outbox.objects.filter(key__in=[key for _m, _w, key in due]).values_list("key", flat=True))
    queued = 0
    for method, _window, key in due:
        if key in done:
            continue
        customer: Customer = method.customer
        assert method.expiry_year is not None and method.expiry_month is not None
        expires = card_expires_on(method.expiry_year, method.expiry_month)
        card = f"{method.brand} ****{method.last4}".strip() if method.last4 else (method.brand or "card")
        context = _common(customer.name, customer.company, customer.account_code, customer.currency) | {
            "card": card,
            "expiry": f"{method.expiry_month:02d}/{method.expiry_year}",
            "expires_on": expires.isoformat(),
            "days_left": str((expires - today).days),
        }
        notice = Notice(
            kind=NoticeKind.CARD_EXPIRY,
            key=key,
            addresses=customer_addresses(customer.pk, customer.email),
            context=context,
            customer_id=customer.pk,
        )
        queued += 1 if enqueue(notice, now) else 0
    return queued
