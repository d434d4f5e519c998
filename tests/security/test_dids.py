"""Attacks on the DID inventory: staff without DID permissions, secrets of numbers, bad files and
bad search input, a hostile provider's answers."""

from __future__ import annotations

import io

import openpyxl
import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from tarifa.customers.models import Account
from tarifa.dids.imports import ImportRejected, import_file
from tarifa.dids.models import Did
from tarifa.dids.service import DidOptions, assign_did

pytestmark = pytest.mark.django_db

DID_PASSWORD = "Did-Secret-Pass-77"


@pytest.fixture
def stock(did_buyer):  # type: ignore[no-untyped-def]
    account, plan = did_buyer["account"], did_buyer["plan"]
    free = Did.objects.create(number="12125551234")
    taken = assign_did(
        Did.objects.create(number="12125559999"),
        account,
        plan,
        options=DidOptions(username="acme1", password=DID_PASSWORD),
    )
    return {"account": account, "plan": plan, "free": free, "taken": taken}


def _staff(username: str, *codenames: str):  # type: ignore[no-untyped-def]
    user = get_user_model().objects.create_user(username, f"{username}@x.example", "Staff-pass-1234", is_staff=True)
    for codename in codenames:
        user.user_permissions.add(Permission.objects.get(codename=codename))
    return user


def _upload(name: str, data: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="text/csv")


@pytest.mark.parametrize("codenames", [(), ("view_did",)])
def test_staff_without_did_permissions_cannot_import_or_assign(client, stock, codenames) -> None:
    client.force_login(_staff("nobody", *codenames))
    before = sorted(Did.objects.values_list("number", "status", "account"))
    imported = client.post(reverse("admin:dids_did_did_import"), {"file": _upload("x.csv", b"number\n+12125550001\n")})
    assert imported.status_code == 403
    free = stock["free"]
    for name, data in (
        ("did_assign", {"account": "acme-did", "plan": stock["plan"].pk}),
        ("did_release", {}),
        ("did_status", {"status": "disabled"}),
    ):
        target = stock["taken"] if name == "did_release" else free
        response = client.post(reverse(f"admin:dids_did_{name}", args=[target.pk]), data)
        assert response.status_code == 403, name
    assert sorted(Did.objects.values_list("number", "status", "account")) == before


def test_the_change_permission_alone_cannot_import(client, stock) -> None:
    client.force_login(_staff("changer", "view_did", "change_did"))
    assert client.get(reverse("admin:dids_did_did_import")).status_code == 403
    assert client.get(reverse("admin:dids_did_did_assign", args=[stock["free"].pk])).status_code == 200


def test_a_did_password_is_never_shown_to_viewers_nor_exported(client, stock) -> None:
    client.force_login(_staff("viewer", "view_did"))
    page = client.get(reverse("admin:dids_did_change", args=[stock["taken"].pk]))
    assert page.status_code == 200 and DID_PASSWORD.encode() not in page.content and b"acme1" in page.content
    export = client.post(reverse("admin:dids_did_export"), {"format": "0", "resource": "0"})
    assert export.status_code == 200
    body = b"".join(export.streaming_content) if export.streaming else export.content
    assert b"12125559999" in body and DID_PASSWORD.encode() not in body and b"password" not in body.lower()
    # no guessing the secret one character at a time through a listing filter
    guess = client.get(reverse("admin:dids_did_changelist"), {"password__startswith": "Did"})
    assert guess.status_code == 400


def test_an_editor_does_not_get_the_stored_password_back_in_the_form(client, stock) -> None:
    client.force_login(get_user_model().objects.create_superuser("boss", "b@example.com", "Boss-pass1"))
    page = client.get(reverse("admin:dids_did_change", args=[stock["taken"].pk]))
    assert page.status_code == 200 and DID_PASSWORD.encode() not in page.content


@pytest.mark.parametrize(
    ("name", "data", "said"),
    [
        ("formula.csv", b'number,vendor\n"=HYPERLINK(""http://evil.example"",""x"")",\n', "line 2: number"),
        ("ctrl.csv", b"number\n+1212555\x001234\n", "line 2: number"),
        ("huge.csv", b"number\n" + b"1" * 200_000 + b"\n", "is refused"),
        ("cols.csv", b"number,price\n+12125550001,1\n", "column 2"),
        ("sql.csv", b"number\n12125550001' OR '1'='1\n", "line 2: number"),
    ],
)
def test_hostile_files_are_refused_with_the_row_and_change_nothing(stock, name: str, data: bytes, said: str) -> None:
    count = Did.objects.count()
    with pytest.raises(ImportRejected) as caught:
        import_file(data, name)
    assert said in "; ".join(str(e) for e in caught.value.errors)
    assert Did.objects.count() == count


def test_a_wide_xlsx_row_is_refused_before_it_is_read(stock) -> None:
    book = openpyxl.Workbook()
    book.active.append(["number"])
    book.active.append(["+12125550001", *([""] * 300), "x"])
    buffer = io.BytesIO()
    book.save(buffer)
    with pytest.raises(ImportRejected, match="1 error") as caught:
        import_file(buffer.getvalue(), "wide.xlsx")
    assert "a DID inventory file has at most 5 columns" in str(caught.value.errors[0])


def test_the_import_page_shows_each_error_and_never_fails(client, stock) -> None:
    client.force_login(get_user_model().objects.create_superuser("boss", "b@example.com", "Boss-pass1"))
    url = reverse("admin:dids_did_did_import")
    for name, data in (
        ("bad.csv", b"number,vendor\n1212,\n+12125550001,Nobody\n"),
        ("x.xlsx", b"PK\x03\x04junk"),
        ("x.exe", b"MZ"),
    ):
        response = client.post(url, {"file": _upload(name, data)})
        assert response.status_code == 200, name
    assert b"must be a .csv or .xlsx file" in client.post(url, {"file": _upload("x.exe", b"MZ")}).content
    page = client.post(
        url, {"file": _upload("bad.csv", b"number,vendor\n1212,\n+12125550001,Nobody\n")}
    ).content.decode()
    assert "2 errors" in page and "no vendor has this name" in page and "nothing was imported" in page
    assert Did.objects.count() == 2


@pytest.mark.parametrize("pattern", ["5.*", "(a+)+$", "555[0-9]", "'; DROP TABLE dids_did; --", "5" * 40])
def test_the_pattern_filter_refuses_anything_but_digits_and_wildcards(client, stock, pattern: str) -> None:
    client.force_login(get_user_model().objects.create_superuser("boss", "b@example.com", "Boss-pass1"))
    response = client.get(reverse("admin:dids_did_changelist"), {"pattern": pattern})
    assert response.status_code == 200
    assert b"is refused: must be 1 to 15 of the digits" in response.content
    assert Did.objects.count() == 2


def test_action_pages_with_nonsense_ids_do_not_fail(client, stock) -> None:
    client.force_login(get_user_model().objects.create_superuser("boss", "b@example.com", "Boss-pass1"))
    for name in ("did_assign", "did_release", "did_status"):
        for bad in ("abc", "999999", "1%00"):
            response = client.get(reverse(f"admin:dids_did_{name}", args=[bad]))
            assert response.status_code in (302, 404), (name, bad)


def test_assigning_through_the_page_says_why_a_number_is_not_available(client, stock) -> None:
    client.force_login(get_user_model().objects.create_superuser("boss", "b@example.com", "Boss-pass1"))
    other = Account.objects.create(customer=stock["account"].customer, name="acme-2", kind="did")
    response = client.post(
        reverse("admin:dids_did_did_assign", args=[stock["taken"].pk]),
        {"account": other.name, "plan": stock["plan"].pk},
    )
    assert response.status_code == 200
    assert f"cannot be assigned: it is assigned to {stock['account']}" in response.content.decode()
    assert Did.objects.get(pk=stock["taken"].pk).account == stock["account"]


def test_the_add_form_does_not_put_a_number_on_an_account_past_the_rules(client, stock) -> None:
    client.force_login(get_user_model().objects.create_superuser("boss", "b@example.com", "Boss-pass1"))
    response = client.post(
        reverse("admin:dids_did_add"),
        {
            "number": "12125550077",
            "monthly_cost": "0",
            "status": "assigned",
            "account": stock["account"].pk,
            "out_payment_rate": "0",
            "destination": "account",
        },
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "Status &#x27;assigned&#x27; is refused" in page and "then use Assign" in page
    assert not Did.objects.filter(number="12125550077").exists()
    added = client.post(
        reverse("admin:dids_did_add"),
        {
            "number": "12125550077",
            "monthly_cost": "0.35",
            "status": "available",
            "out_payment_rate": "0",
            "destination": "account",
        },
    )
    assert added.status_code == 302, added.content.decode()[:2000]
    assert Did.objects.get(number="12125550077").area_code == "212"
