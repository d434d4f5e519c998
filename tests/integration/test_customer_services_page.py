"""The customer's one page (seed 002 "manage all customer services from one page", issue 14):
accounts (trunks, extensions), IP addresses, SIP devices, DIDs and virtual numbers, added,
edited and deleted through the back office's customer page with their own pages' validation."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from tarifa.customers.models import Account, Customer, IpDevice, SipDevice
from tarifa.dids.models import Did, VirtualNumber
from tests.factories import text
from tests.services_page import IP, SIP, VIRTUAL, add_row, errors, page_data

pytestmark = pytest.mark.django_db


@pytest.fixture
def boss(client):  # type: ignore[no-untyped-def]
    client.force_login(get_user_model().objects.create_superuser("boss", "boss@example.com", "Boss-pass1"))
    return client


def test_the_page_lists_every_service_of_the_customer_and_no_other(boss, shop) -> None:
    account = shop["account"]
    SipDevice.objects.create(account=account, login="minesip", secret="Secret123xyzAB", extension="101")
    VirtualNumber.objects.create(number="300", primary_did=shop["did"], account=account)
    Account.objects.create(customer=shop["mine"], name="trunk", kind="trunk", identifier="tr-7", max_channels=4)
    their_account = shop["theirs"].accounts.get()
    SipDevice.objects.create(account=their_account, login="theirsip", secret="Secret123xyzAB")
    Did.objects.create(number="12015550199", status="assigned", account=their_account)
    page = text(boss.get(shop["url"]))
    for shown in (
        "192.0.2.1",
        "minesip",
        "12015550100",
        "tr-7",
        reverse("admin:dids_did_change", args=[shop["did"].pk]),
    ):
        assert shown in page, shown
    for hidden in ("192.0.2.2", "theirsip", "12015550199"):
        assert hidden not in page, hidden


def test_add_edit_and_delete_services_through_the_page(boss, shop) -> None:
    account = shop["account"]
    data = add_row(page_data(boss, shop["url"]), IP, address="192.0.2.10", account=account.pk, status="active")
    add_row(data, SIP, login="newsip", secret="Secret123xyzAB", account=account.pk, extension="102", status="active")
    add_row(data, VIRTUAL, number="301", primary_did=shop["did"].pk, account=account.pk, additional_charge="1.50")
    add_row(data, "accounts", name="ext-1000", kind="extension", identifier="1000", status="active")
    response = boss.post(shop["url"], data)
    assert response.status_code == 302, str(errors(response))
    assert IpDevice.objects.get(address="192.0.2.10").account == account
    assert SipDevice.objects.get(login="newsip").extension == "102"
    assert VirtualNumber.objects.get(number="301").additional_charge == Decimal("1.50")
    assert Account.objects.get(customer=shop["mine"], identifier="1000").kind == "extension"
    # edit one row, delete another
    data = page_data(boss, shop["url"])
    row = next(k for k, v in data.items() if k.startswith(IP) and k.endswith("-address") and v == "192.0.2.10")
    data[row.replace("-address", "-description")] = "second site"
    row = next(k for k, v in data.items() if k.startswith(SIP) and k.endswith("-login") and v == "newsip")
    data[row.replace("-login", "-DELETE")] = "on"
    assert boss.post(shop["url"], data).status_code == 302
    assert IpDevice.objects.get(address="192.0.2.10").description == "second site"
    assert not SipDevice.objects.filter(login="newsip").exists()


def refused(client: Any, shop: dict[str, Any], prefix: str, **fields: Any) -> str:
    """POST a new row with a customer edit alongside: the page must come back with the error and
    store nothing, not even the customer edit."""
    data = add_row(page_data(client, shop["url"]), prefix, **fields)
    data["company"] = "Renamed Ltd"
    before = (
        IpDevice.objects.count(),
        SipDevice.objects.count(),
        VirtualNumber.objects.count(),
        Account.objects.count(),
    )
    response = client.post(shop["url"], data)
    assert response.status_code == 200
    assert (
        IpDevice.objects.count(),
        SipDevice.objects.count(),
        VirtualNumber.objects.count(),
        Account.objects.count(),
    ) == before
    assert Customer.objects.get(pk=shop["mine"].pk).company == "mine Ltd"
    return text(response)


def test_bad_services_show_the_field_error_and_store_nothing(boss, shop) -> None:
    account = shop["account"].pk
    assert "IP address '999.1.1.1' is refused" in refused(
        boss, shop, IP, address="999.1.1.1", account=account, status="active"
    )
    # another tenant's address: the same unique rule as on the IP device's own page
    assert "IP address '192.0.2.2' is refused: already in use" in refused(
        boss, shop, IP, address="192.0.2.2", account=account, status="active"
    )
    assert "SIP device secret" in refused(
        boss, shop, SIP, login="weak", secret="short", account=account, status="active"
    )
    Account.objects.create(customer=shop["mine"], name="e", kind="extension", identifier="1000")
    assert "Virtual number '1000' is refused: already an extension of this customer" in refused(
        boss, shop, VIRTUAL, number="1000", primary_did=shop["did"].pk, account=account, additional_charge="0"
    )
    assert "Extension '1000' is refused: already in use on this customer's PBXs" in refused(
        boss, shop, "accounts", name="e2", kind="extension", identifier="1000", status="active"
    )


def test_another_customers_account_or_did_cannot_be_chosen(boss, shop) -> None:
    """The choices are the customer's: a forged id of another tenant's account or DID is refused."""
    their_account = shop["theirs"].accounts.get()
    their_did = Did.objects.create(number="12015550199", status="assigned", account=their_account)
    choice = "is refused: must be one of the available choices"
    assert f"Account '{their_account.pk}' {choice}" in refused(
        boss, shop, IP, address="192.0.2.11", account=their_account.pk, status="active"
    )
    assert f"Primary DID '{their_did.pk}' {choice}" in refused(
        boss, shop, VIRTUAL, number="302", primary_did=their_did.pk, account=shop["account"].pk, additional_charge="0"
    )
    assert f"Account '{their_account.pk}' {choice}" in refused(
        boss, shop, VIRTUAL, number="303", primary_did=shop["did"].pk, account=their_account.pk, additional_charge="0"
    )
    their_pbx = IpDevice.objects.get(address="192.0.2.2")
    assert f"PBX (IP device) '{their_pbx.pk}' {choice}" in refused(
        boss, shop, "accounts", name="e", kind="extension", identifier="55", pbx=their_pbx.pk, status="active"
    )


def test_the_accounts_own_page_offers_the_pbx(boss, shop) -> None:
    page = boss.get(reverse("admin:customers_account_change", args=[shop["account"].pk]))
    assert page.status_code == 200 and "PBX (IP device)" in text(page)


def test_deleting_the_pbx_of_an_extension_is_refused_not_a_crash(boss, shop) -> None:
    pbx = IpDevice.objects.get(address="192.0.2.1")
    Account.objects.create(customer=shop["mine"], name="e", kind="extension", identifier="1000", pbx=pbx)
    data = page_data(boss, shop["url"])
    row = next(k for k, v in data.items() if k.startswith(IP) and k.endswith("-address") and v == "192.0.2.1")
    data[row.replace("-address", "-DELETE")] = "on"
    response = boss.post(shop["url"], data)
    assert response.status_code == 200
    assert "Deleting IP device '192.0.2.1' is refused: still used by account e (" in text(response)
    assert IpDevice.objects.filter(pk=pbx.pk).exists()


def test_a_stored_rule_breach_on_a_field_the_page_does_not_show_is_a_page_error_not_a_500(boss, shop) -> None:
    """The customer page's IP address rows show no dates; a row stored before the cancellation
    rule (cancellation before activation) must come back as an error naming the field."""
    from datetime import date

    IpDevice.objects.filter(address="192.0.2.1").update(
        activation_date=date(2026, 11, 20), cancellation_date=date(2026, 11, 10)
    )
    data = page_data(boss, shop["url"])
    data["company"] = "Renamed Ltd"
    response = boss.post(shop["url"], data)
    assert response.status_code == 200
    assert "Cancellation date '2026-11-10' is refused: must be on or after the activation date 2026-11-20" in text(
        response
    )
    assert Customer.objects.get(pk=shop["mine"].pk).company == "mine Ltd"
