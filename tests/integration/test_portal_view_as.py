"""The "log in as" feature (docs/portal.md): staff with the permission from the customer's back-office page, a
reseller for its own subtree only (404 otherwise); every session recorded in the audit app and shown
in the back office; changes made meanwhile written under the staff user or reseller."""

from __future__ import annotations

import html
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client

from tarifa.audit.models import AuditEntry, ViewAsSession
from tarifa.customers.forms import set_web_access
from tarifa.customers.models import Account, Customer

pytestmark = pytest.mark.django_db

PASSWORD = "Portal-pass1"


def _text(response: Any) -> str:
    return html.unescape(response.content.decode())


@pytest.fixture
def world(net: dict[str, Any], operator: Customer) -> dict[str, Any]:
    customer = net["customer"]
    set_web_access(customer, PASSWORD)
    Account.objects.filter(pk=net["alice"].pk).update(sip_password="Alice-pass1")
    reseller = Customer.objects.create(
        kind="reseller",
        parent=operator,
        name="R",
        company="Resell Inc",
        web_username="resell",
        tariff=net["tariff"],
        email="r@r.example",
        phone="+12015550125",
        country="US",
    )
    set_web_access(reseller, PASSWORD)
    theirs = Customer.objects.create(
        parent=reseller,
        name="Sub",
        company="Sub Co",
        web_username="subco",
        tariff=net["tariff"],
        email="s@s.example",
        phone="+12015550126",
        country="US",
    )
    set_web_access(theirs, PASSWORD)
    sub_account = Account.objects.create(customer=theirs, name="sub-line", sip_password="Subline-pass1")
    users = get_user_model().objects
    boss = users.create_user("boss", "boss@example.com", "Boss-pass1!", is_staff=True)
    boss.user_permissions.add(
        Permission.objects.get(codename="log_in_as"),
        Permission.objects.get(codename="view_customer"),
        Permission.objects.get(codename="view_viewassession"),
        Permission.objects.get(codename="view_auditentry"),
    )
    clerk = users.create_user("clerk", "clerk@example.com", "Clerk-pass1!", is_staff=True)
    clerk.user_permissions.add(Permission.objects.get(codename="view_customer"))
    return {**net, "reseller": reseller, "sub": theirs, "sub_account": sub_account, "boss": boss, "clerk": clerk}


def _staff(name: str, password: str) -> Client:
    client = Client()
    assert client.login(username=name, password=password)
    return client


def _portal_user(name: str) -> Client:
    client = Client()
    response = client.post("/portal/login/", {"username": name, "password": PASSWORD})
    assert response.status_code == 302, _text(response)
    return client


def test_staff_log_in_as_from_the_back_office_recorded_and_attributed(world: dict[str, Any]) -> None:
    customer, alice = world["customer"], world["alice"]
    boss = _staff("boss", "Boss-pass1!")
    page = _text(boss.get(f"/admin/customers/customer/{customer.pk}/change/"))
    assert f"/admin/customers/customer/{customer.pk}/log-in-as/" in page  # the button
    button = boss.get(f"/admin/customers/customer/{customer.pk}/log-in-as/")
    assert button.status_code == 302 and button["Location"] == f"/portal/view-as/{customer.pk}/"
    confirm = boss.get(button["Location"])
    assert confirm.status_code == 200 and "recorded" in _text(confirm)
    assert ViewAsSession.objects.count() == 0  # a GET opens nothing
    opened = boss.post(f"/portal/view-as/{customer.pk}/", REMOTE_ADDR="192.0.2.7")
    assert opened.status_code == 302 and opened["Location"] == "/portal/"
    row = ViewAsSession.objects.get()
    assert (row.user_id, row.actor, row.via, row.customer_id) == (world["boss"].pk, "boss", "admin", customer.pk)
    assert row.address == "192.0.2.7" and row.started_at is not None and row.ended_at is None

    home = _text(boss.get("/portal/"))
    assert "Viewing as" in home and customer.company in home and "end</button>" in home
    # a change made while viewing as: written under the staff user, naming the customer
    general = {"name": "alice-renamed", "dialing_mode": "e164", "music_on_hold": "bleep"}
    saved = boss.post(f"/portal/accounts/{alice.pk}/general/", general)
    assert saved.status_code == 302, _text(saved)
    entry = AuditEntry.objects.get(object_type="customers.account", object_id=str(alice.pk))
    assert entry.user_id == world["boss"].pk and entry.actor == "boss (as cust)" and entry.via == "portal"
    assert entry.before["name"] == "alice" and entry.after["name"] == "alice-renamed"
    # the customer's portal password is not the staff user's to change
    refused = boss.post(
        "/portal/profile/",
        {"form": "password", "old_password": "Boss-pass1!", "new_password1": "Other-pass9!", "new_password2": "x"},
        follow=True,
    )
    assert "cannot be changed while viewing as" in _text(refused)
    assert boss.login(username="boss", password="Boss-pass1!")  # unchanged

    # nor the e-mail where reset links go (attack finding F1), nor a card payment (F2)
    email = boss.post(
        "/portal/profile/",
        {
            "form": "profile",
            "name": customer.name,
            "company": customer.company,
            "email": "evil@attacker.example",
            "address": customer.address,
            "phone": customer.phone,
            "country": customer.country,
            "pin": "",
        },
    )
    assert email.status_code == 400 and "cannot be changed while viewing as" in _text(email)
    customer.refresh_from_db()
    assert customer.email != "evil@attacker.example"

    # visible in the back office
    listing = _text(boss.get("/admin/audit/viewassession/"))
    assert "boss" in listing and customer.company in listing

    ended = boss.post("/portal/view-as/end/")
    assert ended.status_code == 302 and ended["Location"] == f"/admin/customers/customer/{customer.pk}/change/"
    row.refresh_from_db()
    assert row.ended_at is not None
    after = boss.get("/portal/")
    assert after.status_code == 302 and after["Location"].startswith("/portal/login/")


def test_staff_without_the_permission_cannot_log_in_as(world: dict[str, Any]) -> None:
    customer = world["customer"]
    clerk = _staff("clerk", "Clerk-pass1!")
    assert "/log-in-as/" not in _text(clerk.get(f"/admin/customers/customer/{customer.pk}/change/"))
    assert clerk.get(f"/admin/customers/customer/{customer.pk}/log-in-as/").status_code == 403
    assert clerk.post(f"/portal/view-as/{customer.pk}/").status_code == 404
    assert clerk.get("/portal/").status_code == 302
    assert ViewAsSession.objects.count() == 0
    # nor can an anonymous visitor or a plain customer user
    anonymous = Client().post(f"/portal/view-as/{customer.pk}/")
    assert anonymous.status_code == 302 and "/admin/login/" in anonymous["Location"]
    cust = _portal_user("cust")
    assert cust.post(f"/portal/view-as/{world['sub'].pk}/").status_code == 404
    assert cust.get("/portal/customers/").status_code == 404


def test_a_permission_taken_away_ends_the_view_at_once(world: dict[str, Any]) -> None:
    boss = _staff("boss", "Boss-pass1!")
    assert boss.post(f"/portal/view-as/{world['customer'].pk}/").status_code == 302
    assert boss.get("/portal/").status_code == 200
    world["boss"].user_permissions.remove(Permission.objects.get(codename="log_in_as"))
    assert boss.get("/portal/").status_code == 302
    assert ViewAsSession.objects.get().ended_at is not None


def test_a_reseller_logs_in_as_its_own_customers_only(world: dict[str, Any]) -> None:
    sub, customer = world["sub"], world["customer"]
    reseller = _portal_user("resell")
    listing = _text(reseller.get("/portal/customers/"))
    assert "Sub Co" in listing and customer.company not in listing and "Resell Inc</td>" not in listing
    assert 'href="/portal/customers/"' in _text(reseller.get("/portal/"))
    for outside in (customer.pk, world["reseller"].pk, 999999):
        assert reseller.get(f"/portal/view-as/{outside}/").status_code == 404
        assert reseller.post(f"/portal/view-as/{outside}/").status_code == 404
    assert ViewAsSession.objects.count() == 0

    assert reseller.post(f"/portal/view-as/{sub.pk}/").status_code == 302
    row = ViewAsSession.objects.get()
    assert (row.via, row.actor, row.customer_id) == ("reseller", "resell", sub.pk)
    accounts = _text(reseller.get("/portal/accounts/"))
    assert "sub-line" in accounts and "Viewing as" in accounts
    # while viewing as, still only that customer's data: another tenant's account is 404
    assert reseller.get(f"/portal/accounts/{world['alice'].pk}/").status_code == 404
    saved = reseller.post("/portal/profile/", {"form": "notices", "low_balance_threshold": "5", "emails": ""})
    assert saved.status_code == 302
    entry = AuditEntry.objects.get(object_type="notices.noticesettings")
    assert entry.actor == "resell (as subco)" and entry.user_id == world["reseller"].user_id
    assert entry.action == "create"

    # a customer moved out of the reseller's subtree: the view ends
    Customer.objects.filter(pk=sub.pk).update(path="/elsewhere/")
    assert reseller.get("/portal/").status_code == 200  # back to the reseller's own portal
    assert "Viewing as" not in _text(reseller.get("/portal/"))
    assert ViewAsSession.objects.get().ended_at is not None


def test_log_out_ends_the_view(world: dict[str, Any]) -> None:
    reseller = _portal_user("resell")
    assert reseller.post(f"/portal/view-as/{world['sub'].pk}/").status_code == 302
    end = reseller.post("/portal/view-as/end/")
    assert end.status_code == 302 and end["Location"] == "/portal/customers/"
    assert ViewAsSession.objects.get().ended_at is not None
    assert reseller.post(f"/portal/view-as/{world['sub'].pk}/").status_code == 302
    assert reseller.post("/portal/logout/").status_code == 302
    assert ViewAsSession.objects.filter(ended_at__isnull=True).count() == 0


def test_logging_out_of_the_back_office_ends_the_view_too(world: dict[str, Any]) -> None:
    """Attack finding F7: the back office's log-out left the view-as row open."""
    boss = _staff("boss", "Boss-pass1!")
    assert boss.post(f"/portal/view-as/{world['customer'].pk}/").status_code == 302
    assert ViewAsSession.objects.get().ended_at is None
    assert boss.post("/admin/logout/").status_code in (200, 302)
    assert ViewAsSession.objects.get().ended_at is not None
