"""Back office: every model's listing opens, the seed 003 filters work, each export format opens."""

from __future__ import annotations

import csv
import io

import openpyxl
import pytest
import xlrd
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.urls import reverse

from tarifa.customers.models import Account, Customer, IpDevice, SipDevice
from tarifa.exports import FORMATS

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):  # type: ignore[no-untyped-def]
    user = get_user_model().objects.create_superuser("boss", "boss@example.com", "Boss-pass1")
    client.force_login(user)
    return client


@pytest.fixture
def two_customers(tariff, operator):  # type: ignore[no-untyped-def]
    made = []
    for n, (company, user, ip, sip, status) in enumerate(
        [
            ("Alpha Telecom", "alpha1", "192.0.2.10", "alphasip", "active"),
            ("Beta Voice", "beta2", "192.0.2.20", "betasip", "inactive"),
        ]
    ):
        customer = Customer.objects.create(
            parent=operator,
            name=f"Name{n}",
            company=company,
            web_username=user,
            tariff=tariff,
            status=status,
            email=f"{user}@x.example",
            phone="+12015550123",
            country="US",
        )
        account = Account.objects.create(customer=customer, name=f"{user}-main")
        IpDevice.objects.create(account=account, address=ip)
        SipDevice.objects.create(account=account, login=sip, secret="s3cret")
        made.append(customer)
    return made


def test_every_registered_model_listing_opens(staff_client, two_customers) -> None:
    from tarifa.demo import load_demo

    load_demo()
    assert len(admin.site._registry) >= 20
    for model in admin.site._registry:
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        response = staff_client.get(url)
        assert response.status_code == 200, (url, response.status_code)


# Shown inside another page.
_NOT_PAGES = {"InvoiceLine"}


def test_every_model_in_the_domain_is_in_the_admin() -> None:
    from django.apps import apps

    ours = [m for m in apps.get_models() if m.__module__.startswith("tarifa.")]
    missing = [m.__name__ for m in ours if m not in admin.site._registry and m.__name__ not in _NOT_PAGES]
    assert missing == []


@pytest.mark.parametrize(
    ("param", "value", "expected"),
    [
        ("company", "alpha", ["alpha1"]),
        ("user_name", "beta2", ["beta2"]),
        ("name", "Name1", ["beta2"]),
        ("ip_address", "192.0.2.10", ["alpha1"]),
        ("sip_user", "betasip", ["beta2"]),
        ("status__exact", "inactive", ["beta2"]),
    ],
)
def test_customer_listing_filters(staff_client, two_customers, param: str, value: str, expected: list[str]) -> None:
    url = reverse("admin:customers_customer_changelist")
    response = staff_client.get(url, {param: value})
    assert response.status_code == 200
    shown = [c.web_username for c in response.context["cl"].queryset]
    assert shown == expected


def test_customer_filter_by_account_id(staff_client, two_customers) -> None:
    code = two_customers[1].accounts.get().account_code
    response = staff_client.get(reverse("admin:customers_customer_changelist"), {"account_id": code})
    assert [c.web_username for c in response.context["cl"].queryset] == ["beta2"]


def test_customer_search(staff_client, two_customers) -> None:
    response = staff_client.get(reverse("admin:customers_customer_changelist"), {"q": "192.0.2.20"})
    assert [c.web_username for c in response.context["cl"].queryset] == ["beta2"]


def _export(client, fmt_title: str, query: str = "") -> bytes:  # type: ignore[no-untyped-def]

    titles = [fmt().get_title().lower() for fmt in FORMATS]
    index = titles.index(fmt_title)
    url = reverse("admin:customers_customer_export") + query
    response = client.post(url, {"format": str(index), "resource": "0"})
    assert response.status_code == 200, response.content[:500]
    return b"".join(response.streaming_content) if response.streaming else response.content


def _rows_csv(data: bytes, delimiter: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig")), delimiter=delimiter))


@pytest.mark.parametrize("fmt", ["csv", "txt", "xlsx", "xls"])
def test_export_formats_open_with_their_reader(staff_client, two_customers, fmt: str) -> None:
    data = _export(staff_client, fmt, "?status__exact=active")
    if fmt == "csv":
        rows = _rows_csv(data, ",")
    elif fmt == "txt":
        rows = _rows_csv(data, "\t")
    elif fmt == "xlsx":
        sheet = openpyxl.load_workbook(io.BytesIO(data)).active
        rows = [[("" if c is None else str(c)) for c in row] for row in sheet.iter_rows(values_only=True)]
    else:
        sheet = xlrd.open_workbook(file_contents=data).sheet_by_index(0)
        rows = [[str(c) for c in sheet.row_values(i)] for i in range(sheet.nrows)]
    header = rows[0]
    assert "web_username" in header and "company" in header
    usernames = [row[header.index("web_username")] for row in rows[1:]]
    # The export follows the listing's filter: the inactive customer is left out.
    assert "alpha1" in usernames and "beta2" not in usernames


def test_transactions_are_read_only_in_admin(staff_client, operator) -> None:
    response = staff_client.get(reverse("admin:billing_transaction_add"))
    assert response.status_code == 403


def test_add_customer_through_admin_applies_the_same_rules(staff_client, customer_form_data) -> None:
    url = reverse("admin:customers_customer_add")
    data = customer_form_data(payment_term_days="45")
    for prefix in ("accounts", "dialing_routes", "translation_rules"):
        data.update({f"{prefix}-TOTAL_FORMS": "0", f"{prefix}-INITIAL_FORMS": "0"})
    response = staff_client.post(url, data)
    assert response.status_code == 200
    assert "Payment term 45 is refused: must be between 1 and 30 days" in response.content.decode()
    data["payment_term_days"] = "30"
    response = staff_client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:3000]
    created = Customer.objects.get(web_username="janedoe1")
    assert created.user.check_password("Secret-pass1")


def test_account_page_shows_list_widgets_and_masks_the_password(staff_client, operator) -> None:
    account = Account.objects.create(
        customer=operator,
        name="main",
        sip_password="Main-pass1",
        allowed_countries=["GB"],
        ip_restriction=["192.0.2.0/24"],
        allowed_codecs=["PCMU"],
    )
    response = staff_client.get(reverse("admin:customers_account_change", args=[account.pk]))
    assert response.status_code == 200
    page = response.content.decode()
    assert "data-country-picker" in page and "data-country-search" in page and "customers/country-picker.js" in page
    assert 'value="GB"' in page and "checked" in page
    assert "192.0.2.0/24</textarea>" in page
    assert 'name="allowed_codecs" value="PCMU"' in page
    assert "Main-pass1" not in page
    assert "Enter a valid JSON" not in page and "[&quot;GB&quot;]" not in page
    script = staff_client.get("/static/customers/country-picker.js")
    assert script.status_code == 200


def test_a_new_customers_country_starts_blank_and_is_required(staff_client, operator, customer_form_data) -> None:
    """User report D: the admin listed no blank country, so a browser submitted Afghanistan."""
    import re

    from django.test import RequestFactory

    page = staff_client.get(reverse("admin:customers_customer_add")).content.decode()
    select = re.search(r'<select name="country".*?</select>', page, re.DOTALL)
    assert select is not None
    first = re.search(r"<option[^>]*>[^<]*</option>", select.group(0))
    assert first is not None and 'value=""' in first.group(0) and "choose a country" in first.group(0)
    assert 'value="AF" selected' not in select.group(0)
    request = RequestFactory().get("/")
    request.user = get_user_model().objects.get(username="boss")
    form_class = admin.site._registry[Customer].get_form(request)
    form = form_class(data=customer_form_data(country=""))
    assert not form.is_valid() and form.errors["country"] == ["Country is required"]
