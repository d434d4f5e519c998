"""The customer services page's shared test helpers (a helper module, not a test module): its
inline prefixes, a shop of two customers (the ``shop`` fixture, registered by tests/conftest.py)
and what the browser sends back for the page."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from tarifa.customers.models import Account, Customer, IpDevice
from tarifa.dids.models import Did
from tests.factories import page_values

IP = "customers-ipdevice"
SIP = "customers-sipdevice"
VIRTUAL = "dids-virtualnumber"


def make_customer(tariff: Any, operator: Any, user: str, address: str) -> Customer:
    customer = Customer.objects.create(
        parent=operator,
        name=user,
        company=f"{user} Ltd",
        web_username=user,
        tariff=tariff,
        email=f"{user}@x.example",
        phone="+12015550123",
        country="US",
    )
    account = Account.objects.create(customer=customer, name=f"{user}-pbx", kind="ip")
    IpDevice.objects.create(account=account, address=address)
    return customer


@pytest.fixture
def shop(tariff, operator):  # type: ignore[no-untyped-def]
    mine = make_customer(tariff, operator, "mine", "192.0.2.1")
    theirs = make_customer(tariff, operator, "theirs", "192.0.2.2")
    account = mine.accounts.get()
    did = Did.objects.create(number="12015550100", status="assigned", account=account)
    return {
        "mine": mine,
        "theirs": theirs,
        "account": account,
        "did": did,
        "url": reverse("admin:customers_customer_change", args=[mine.pk]),
    }


def page_data(client: Any, url: str) -> dict[str, Any]:
    """What the browser sends back for the page as shown."""
    page = client.get(url)
    assert page.status_code == 200
    data = page_values(page.context["adminform"].form)
    for inline in page.context["inline_admin_formsets"]:
        formset = inline.formset
        data.update({f"{formset.prefix}-{k}": str(v) for k, v in formset.management_form.initial.items()})
        for form in formset.initial_forms:
            data.update(page_values(form))
    data["web_password"] = "Secret-pass1"  # the fixtures' customers have no portal log-in yet
    return data


def add_row(data: dict[str, Any], prefix: str, **fields: Any) -> dict[str, Any]:
    """A new row in the inline ``prefix`` (as "Add another" does)."""
    n = int(data[f"{prefix}-TOTAL_FORMS"])
    data[f"{prefix}-TOTAL_FORMS"] = str(n + 1)
    data.update({f"{prefix}-{n}-{name}": str(value) for name, value in fields.items()})
    return data


def errors(response: Any) -> list[Any]:
    """The form and inline errors of a page that came back."""
    found: list[Any] = [response.context["adminform"].form.errors]
    for inline in response.context["inline_admin_formsets"]:
        found += [inline.formset.prefix, inline.formset.errors, inline.formset.non_form_errors()]
    return found
