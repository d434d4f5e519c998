"""Numbers on the back-office home page: what an operator checks first."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db.models import Count, Sum
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone


def dashboard_callback(request: HttpRequest, context: dict[str, Any]) -> dict[str, Any]:
    from tarifa.calls.models import Reservation
    from tarifa.cdrs.models import Cdr
    from tarifa.core.rating import RatingStatus
    from tarifa.customers.choices import Status
    from tarifa.customers.models import Customer

    since = timezone.now() - timedelta(hours=24)
    last_day = Cdr.objects.filter(received_at__gte=since).aggregate(
        calls=Count("id"), revenue=Sum("price"), cost=Sum("cost")
    )
    unrated = Cdr.objects.filter(rating_status=RatingStatus.UNRATED)
    by_reason = list(unrated.values("unrated_reason").annotate(n=Count("id")).order_by("-n")[:8])
    cdr_list = reverse("admin:cdrs_cdr_changelist")
    context["tarifa_cards"] = [
        {
            "title": "Active customers",
            "value": Customer.objects.filter(status=Status.ACTIVE).count(),
            "link": reverse("admin:customers_customer_changelist") + f"?status__exact={Status.ACTIVE.value}",
        },
        {"title": "CDRs received (24 h)", "value": last_day["calls"] or 0, "link": cdr_list},
        {"title": "Revenue (24 h)", "value": last_day["revenue"] or 0, "link": cdr_list},
        {"title": "Margin (24 h)", "value": (last_day["revenue"] or 0) - (last_day["cost"] or 0), "link": cdr_list},
        {
            "title": "Unratable CDRs",
            "value": unrated.count(),
            "link": cdr_list + f"?rating_status__exact={RatingStatus.UNRATED.value}",
            "id": "unratable-count",
        },
        {
            "title": "Calls in progress",
            "value": Reservation.objects.count(),
            "link": reverse("admin:calls_reservation_changelist"),
        },
    ]
    context["tarifa_unrated_reasons"] = [
        {
            **row,
            "link": cdr_list
            + f"?rating_status__exact={RatingStatus.UNRATED.value}&unrated_reason={row['unrated_reason']}",
        }
        for row in by_reason
    ]
    try:
        from tarifa.calls.models import Refusal

        context["tarifa_refusals"] = list(
            Refusal.objects.filter(day__gte=since.date()).values("reason").annotate(n=Sum("count")).order_by("-n")[:10]
        )
    except ImportError:
        context["tarifa_refusals"] = []
    return context
