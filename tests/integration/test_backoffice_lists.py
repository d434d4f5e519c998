"""Back-office leftovers (user report L): CDR search by source IP, included-minutes prefixes typed
one per line."""

from __future__ import annotations

import html
from datetime import UTC, datetime

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from tarifa.billing.models import IncludedMinutes, ServicePlan
from tarifa.cdrs.models import Cdr

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)


@pytest.fixture
def boss(client):  # type: ignore[no-untyped-def]
    client.force_login(get_user_model().objects.create_superuser("boss", "b@example.com", "Boss-pass1"))
    return client


def test_the_cdr_search_finds_a_source_ip_exactly(boss) -> None:
    for n, address in enumerate(("198.51.100.2", "198.51.100.20", "203.0.113.7")):
        Cdr.objects.create(switch="sw", call_id=f"call-{n}", callee="442079460958", start_time=T0, source_ip=address)
    url = reverse("admin:cdrs_cdr_changelist")
    assert boss.get(url, {"q": "198.51.100.2"}).context["cl"].result_count == 1
    assert boss.get(url, {"q": "203.0.113.7"}).context["cl"].result_count == 1
    assert boss.get(url, {"q": "198.51.100"}).context["cl"].result_count == 2  # part of an address: substring


def _plan_form(prefixes: str) -> dict[str, str]:
    return {
        "name": "Gold",
        "recurring_fee": "10",
        "period": "monthly",
        "setup_fee": "0",
        "billing_day": "1",
        "activation_fee": "0",
        "weekday": "0",
        "prorate": "on",
        "minimum_amount": "0",
        "unpaid_action": "allow",
        "description": "",
        "active": "on",
        "included_minutes-0-rollover_cap": "0",
        "included_minutes-TOTAL_FORMS": "1",
        "included_minutes-INITIAL_FORMS": "0",
        "included_minutes-MIN_NUM_FORMS": "0",
        "included_minutes-MAX_NUM_FORMS": "1000",
        "included_minutes-0-name": "UK and US",
        "included_minutes-0-prefixes": prefixes,
        "included_minutes-0-minutes": "100",
    }


def test_included_minutes_prefixes_are_typed_one_per_line(boss) -> None:
    url = reverse("admin:billing_serviceplan_add")
    page = boss.get(url).content.decode()
    assert "One E.164 prefix per line" in page
    response = boss.post(url, _plan_form("1\r\n44"))
    assert response.status_code == 302, html.unescape(response.content.decode())[-3000:]
    pool = IncludedMinutes.objects.get(plan__name="Gold")
    assert pool.prefixes == ["1", "44"]
    change = boss.get(reverse("admin:billing_includedminutes_change", args=[pool.pk])).content.decode()
    assert "1\n44</textarea>" in change


def test_a_bad_prefix_is_refused_naming_it(boss) -> None:
    response = boss.post(reverse("admin:billing_serviceplan_add"), _plan_form("1\n4a"))
    page = html.unescape(response.content.decode())
    assert response.status_code == 200
    assert "Prefix '4a' is refused: must be 1 to 15 digits 0-9" in page and "valid JSON" not in page
    assert not ServicePlan.objects.exists()
