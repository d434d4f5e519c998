"""Bad input a new-user trial of issue 14 got through (DIDs, imports, devices): each refused
naming the field, the value and the rule."""

from __future__ import annotations

import html

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.urls import reverse

from tarifa.core.dids import NumberRefused, parse_number
from tarifa.dids.models import Did

pytestmark = pytest.mark.django_db


def _did_form(number: str) -> dict[str, str]:
    return {
        "number": number,
        "monthly_cost": "0",
        "status": "available",
        "out_payment_rate": "0",
        "destination": "account",
    }


def test_the_did_add_form_checks_and_normalises_numbers_as_the_import_does(client, operator) -> None:  # type: ignore[no-untyped-def]
    client.force_login(get_user_model().objects.create_superuser("boss", "b@example.com", "Boss-pass1"))
    added = client.post(reverse("admin:dids_did_add"), _did_form("+1 201 555 0000"))
    assert added.status_code == 302, added.content.decode()[:3000]
    assert Did.objects.get(number="12015550000").area_code == "201"
    with pytest.raises(NumberRefused) as refused:
        parse_number("12345")
    response = client.post(reverse("admin:dids_did_add"), _did_form("12345"))
    assert response.status_code == 200
    page = html.unescape(response.content.decode())
    assert f"Number '12345' is refused: {refused.value}" in page
    assert not Did.objects.filter(number="12345").exists()


def test_a_new_did_with_an_invalid_number_is_refused_at_every_door() -> None:
    with pytest.raises(ValidationError) as refused:
        Did(number="12345").full_clean()
    assert "number" in refused.value.message_dict


def test_a_national_number_is_refused_with_the_hint_that_numbers_are_international() -> None:
    with pytest.raises(NumberRefused) as refused:
        parse_number("2125550196")
    assert "+212 (MA)" in str(refused.value) and "international (E.164), the country code first" in str(refused.value)
