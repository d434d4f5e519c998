"""Attacks on the customer's services page (issue 14): staff without a service's permissions
cannot add, change or delete it through the customer page, and a page never shows or takes
another customer's services."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission

from tarifa.customers.models import IpDevice, SipDevice
from tarifa.dids.models import VirtualNumber
from tests.services_page import IP, SIP, add_row, page_data

pytestmark = pytest.mark.django_db


def staff(client: Any, *codenames: str) -> Any:
    user = get_user_model().objects.create_user("clerk", "clerk@example.com", "Clerk-pass1", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    client.force_login(user)
    return client


def prefixes(client: Any, url: str) -> set[str]:
    page = client.get(url)
    assert page.status_code == 200
    return {inline.formset.prefix for inline in page.context["inline_admin_formsets"]}


def test_without_a_services_permissions_its_inline_is_absent_and_forged_rows_are_ignored(client, shop) -> None:
    clerk = staff(client, "view_customer", "change_customer", "view_account")
    assert IP not in prefixes(clerk, shop["url"]) and SIP not in prefixes(clerk, shop["url"])
    assert "dids-did" not in prefixes(clerk, shop["url"])  # no DID permission: no DID list either
    data = page_data(clerk, shop["url"])
    data.update(
        {
            f"{IP}-TOTAL_FORMS": "1",
            f"{IP}-INITIAL_FORMS": "0",
            f"{IP}-0-address": "192.0.2.66",
            f"{IP}-0-account": str(shop["account"].pk),
            f"{IP}-0-status": "active",
        }
    )
    clerk.post(shop["url"], data)
    assert not IpDevice.objects.filter(address="192.0.2.66").exists()


def test_a_viewer_of_a_service_cannot_add_change_or_delete_it(client, shop) -> None:
    clerk = staff(client, "view_customer", "change_customer", "view_account", "view_ipdevice")
    assert IP in prefixes(clerk, shop["url"])
    data = page_data(clerk, shop["url"])
    data.update(
        {
            f"{IP}-0-id": str(IpDevice.objects.get(address="192.0.2.1").pk),
            f"{IP}-0-address": "192.0.2.77",
            f"{IP}-0-account": str(shop["account"].pk),
            f"{IP}-0-status": "inactive",
            f"{IP}-0-DELETE": "on",
        }
    )
    add_row(data, IP, address="192.0.2.66", account=shop["account"].pk, status="active")
    clerk.post(shop["url"], data)
    device = IpDevice.objects.get(account=shop["account"])  # still there, unchanged, and alone
    assert (device.address, device.status) == ("192.0.2.1", "active")


def test_without_delete_permission_a_delete_is_ignored(client, shop) -> None:
    clerk = staff(
        client, "view_customer", "change_customer", "view_account", "view_ipdevice", "change_ipdevice", "add_ipdevice"
    )
    data = page_data(clerk, shop["url"])
    data[f"{IP}-0-DELETE"] = "on"
    add_row(data, IP, address="192.0.2.66", account=shop["account"].pk, status="active")
    assert clerk.post(shop["url"], data).status_code == 302
    assert set(IpDevice.objects.filter(account=shop["account"]).values_list("address", flat=True)) == {
        "192.0.2.1",
        "192.0.2.66",
    }


def test_rows_of_another_customer_cannot_be_edited_through_this_page(client, shop) -> None:
    """A forged row id of another tenant's IP device is not one of this page's rows: refused."""
    clerk = staff(
        client,
        "view_customer",
        "change_customer",
        "view_account",
        "view_ipdevice",
        "change_ipdevice",
        "add_ipdevice",
        "delete_ipdevice",
        "view_sipdevice",
        "change_sipdevice",
        "view_virtualnumber",
        "change_virtualnumber",
    )
    theirs = IpDevice.objects.get(address="192.0.2.2")
    data = page_data(clerk, shop["url"])
    data.update({f"{IP}-0-id": str(theirs.pk), f"{IP}-0-address": "192.0.2.99"})
    assert clerk.post(shop["url"], data).status_code in (200, 302)  # not one of the page's rows: not saved
    assert IpDevice.objects.filter(pk=theirs.pk, address="192.0.2.2").exists()
    data[f"{IP}-0-DELETE"] = "on"
    clerk.post(shop["url"], data)  # a deleted row that is not one of the page's deletes nothing
    assert IpDevice.objects.filter(pk=theirs.pk, address="192.0.2.2").exists()
    assert IpDevice.objects.filter(address="192.0.2.1").exists()
    assert not SipDevice.objects.exists() and not VirtualNumber.objects.exists()
