"""The call history: the customer's CDRs filtered, totalled and paged by key, and exported.

Pages are found by key, never by OFFSET: the next page is "older than the last row shown",
``(start_time, id) < (t, n)``, read from the index on ``(customer, start_time, id)``
(cdrs migration ``portal_history``) in order. Page 10,000 costs what page 1 costs, and a call
stored while someone reads does not shift the pages.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import tablib
from django import forms
from django.db.models import Count, Q, QuerySet, Sum
from django.utils import timezone

from tarifa.cdrs.choices import DISPOSITION_LABELS
from tarifa.cdrs.models import Cdr
from tarifa.customers.models import Customer
from tarifa.exports import SafeCSV, SafeXLSX
from tarifa.forms import LabeledForm
from tarifa.portal import scope
from tarifa.validators import DayBetween, refuse

__all__ = ["EXPORT_MAX", "PAGE_SIZE", "HistoryFilter", "Page", "Totals", "export", "page", "totals"]

PAGE_SIZE = 50
#: At most this many calls in one export (newest first); narrow the dates for more.
EXPORT_MAX = 100_000
DEFAULT_DAYS = 31
_SEP = "_"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class HistoryFilter(LabeledForm):
    """The filters of the call history (GET): dates in the customer's time zone, inclusive."""

    date_from = forms.DateField(
        label="From", required=False, widget=forms.DateInput(attrs={"type": "date"}), validators=[DayBetween("From")]
    )
    date_to = forms.DateField(
        label="To", required=False, widget=forms.DateInput(attrs={"type": "date"}), validators=[DayBetween("To")]
    )
    number = forms.CharField(label="Number", max_length=64, required=False, help_text="Part of the caller or callee.")
    destination = forms.CharField(label="Destination", max_length=100, required=False)
    status = forms.ChoiceField(
        label="Status",
        required=False,
        choices=[("", "Any"), *((str(k), str(v)) for k, v in DISPOSITION_LABELS.choices)],
    )
    account = forms.ChoiceField(label="Account", required=False)

    def __init__(self, *args: Any, customer: Customer, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.customer = customer
        account = self.fields["account"]
        assert isinstance(account, forms.ChoiceField)
        account.choices = [("", "All accounts")] + [
            (str(a.pk), a.name) for a in scope.accounts(customer).only("pk", "name")
        ]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        start, end = cleaned.get("date_from"), cleaned.get("date_to")
        if start and end and end < start:
            self.add_error("date_to", refuse("To", end.isoformat(), f"must be on or after From ({start})", "order"))
        for name in ("number", "destination"):
            if "\x00" in (cleaned.get(name) or ""):
                self.add_error(name, refuse(name.capitalize(), cleaned[name], "may not contain a NUL character", "nul"))
        return cleaned


def default_range(customer: Customer, now: datetime | None = None) -> tuple[date, date]:
    today = (now or timezone.now()).astimezone(scope.zone(customer)).date()
    return today - timedelta(days=DEFAULT_DAYS - 1), today


def filtered(customer: Customer, data: dict[str, Any]) -> QuerySet[Cdr]:
    """The customer's calls matching cleaned filter ``data`` (the account is one of the customer's)."""
    rows = scope.cdrs(customer)
    zone = scope.zone(customer)
    if data.get("date_from"):
        rows = rows.filter(start_time__gte=datetime.combine(data["date_from"], time.min, tzinfo=zone))
    if data.get("date_to"):
        rows = rows.filter(start_time__lt=datetime.combine(data["date_to"] + timedelta(days=1), time.min, tzinfo=zone))
    if data.get("account"):
        rows = rows.filter(account_id=scope.account_of(customer, data["account"]).pk)
    if data.get("number"):
        rows = rows.filter(Q(callee__contains=data["number"]) | Q(caller__contains=data["number"]))
    if data.get("destination"):
        rows = rows.filter(destination__icontains=data["destination"])
    if data.get("status"):
        rows = rows.filter(disposition=data["status"])
    return rows


@dataclass(frozen=True)
class Totals:
    calls: int
    seconds: int
    price: Decimal


def totals(rows: QuerySet[Cdr]) -> Totals:
    found = rows.aggregate(n=Count("id"), s=Sum("duration"), p=Sum("price"))
    return Totals(found["n"] or 0, found["s"] or 0, found["p"] or Decimal(0))


def cursor_of(row: Cdr) -> str:
    return f"{(row.start_time - _EPOCH) // timedelta(microseconds=1)}{_SEP}{row.pk}"


def parse_cursor(text: str) -> tuple[datetime, int]:
    """``<microseconds since 1970>_<id>``: the last row of the page before. Refused by name."""
    try:
        micros, pk = (int(part) for part in text.split(_SEP))
        moment = _EPOCH + timedelta(microseconds=micros)
    except (ValueError, OverflowError):
        raise refuse(
            "Page", text[:40], "is not a page of this list; start again from the first page", "cursor"
        ) from None
    return moment, pk


@dataclass(frozen=True)
class Page:
    rows: list[Cdr]
    next_cursor: str | None


def page(rows: QuerySet[Cdr], after: tuple[datetime, int] | None, size: int = PAGE_SIZE) -> Page:
    """The ``size`` newest calls older than ``after`` (by start time, then id)."""
    if after is not None:
        moment, pk = after
        # "start_time <= t" first: the index range bound; the OR only settles the ties at t
        rows = rows.filter(start_time__lte=moment).filter(Q(start_time__lt=moment) | Q(pk__lt=pk))
    found = list(rows.select_related("account").order_by("-start_time", "-pk")[: size + 1])
    more = len(found) > size
    found = found[:size]
    return Page(found, cursor_of(found[-1]) if more and found else None)


HEADERS = [
    "Start time (UTC)",
    "Account",
    "Caller",
    "Callee",
    "Destination",
    "Status",
    "SIP code",
    "Duration (s)",
    "Billed (s)",
    "Price",
    "Rating",
]


def export(rows: QuerySet[Cdr], fmt: str) -> tuple[bytes, str, str]:
    """(content, content type, extension) of the rows as CSV or XLSX, formula cells guarded."""
    data = tablib.Dataset(headers=HEADERS, title="Calls")
    for r in rows.select_related("account").order_by("-start_time", "-pk")[:EXPORT_MAX].iterator(chunk_size=2000):
        data.append(
            [
                r.start_time.strftime("%Y-%m-%d %H:%M:%S"),
                r.account.name if r.account else "",
                r.caller,
                r.callee,
                r.destination,
                r.get_disposition_display(),
                r.sip_code if r.sip_code is not None else "",
                r.duration,
                r.billed_seconds,
                str(r.price),
                r.get_rating_status_display(),
            ]
        )
    kind = SafeXLSX() if fmt == "xlsx" else SafeCSV()
    content = kind.export_data(data)
    if isinstance(content, str):
        content = content.encode("utf-8")
    return content, kind.get_content_type(), kind.get_extension()
