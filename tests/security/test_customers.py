"""Attacks on customers, accounts and devices: login left behind, user-name clashes, weak
credentials, secrets shown in forms, a reseller subtree leak after a move, bad currencies."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.urls import reverse

from tarifa.customers.models import Account, Customer, IpDevice, SipDevice
from tests.factories import page_values, text

pytestmark = pytest.mark.django_db

User = get_user_model()


@pytest.fixture
def staff_client(client):  # type: ignore[no-untyped-def]
    user = User.objects.create_superuser("admin", "admin@example.com", "Boss-pass1")
    client.force_login(user)
    return client


def admin_post(client, url: str, **changes: Any):  # type: ignore[no-untyped-def]
    """POST the admin page at ``url`` as shown, with ``changes`` (and every inline as it is)."""
    page = client.get(url)
    assert page.status_code == 200
    data = page_values(page.context["adminform"].form)
    for inline in page.context["inline_admin_formsets"]:
        formset = inline.formset
        data.update({f"{formset.prefix}-{k}": str(v) for k, v in formset.management_form.initial.items()})
        for form in formset.initial_forms:
            data.update(page_values(form))
    data.update(changes)
    return client.post(url, data)


def new_customer(client, customer_form_data, **fields: Any):  # type: ignore[no-untyped-def]
    data = customer_form_data(**fields)
    for prefix in ("accounts", "dialing_routes", "translation_rules"):
        data.update({f"{prefix}-TOTAL_FORMS": "0", f"{prefix}-INITIAL_FORMS": "0"})
    return client.post(reverse("admin:customers_customer_add"), data)


# --- issue 11 item 9 / issue 12 item 11: user names ----------------------------------------------


def test_deleted_customers_user_name_can_be_reused(staff_client, customer_form_data) -> None:
    assert new_customer(staff_client, customer_form_data).status_code == 302
    customer = Customer.objects.get(web_username="janedoe1")
    login_pk = customer.user_id
    response = staff_client.post(reverse("admin:customers_customer_delete", args=[customer.pk]), {"post": "yes"})
    assert response.status_code == 302
    assert not User.objects.filter(pk=login_pk).exists()  # the login went with its customer
    response = new_customer(staff_client, customer_form_data)
    assert response.status_code == 302, response.content.decode()[:2000]
    again = Customer.objects.get(web_username="janedoe1")
    assert again.user_id != login_pk and again.user.check_password("Secret-pass1")


def test_bulk_delete_takes_the_logins_along(staff_client, customer_form_data) -> None:
    assert new_customer(staff_client, customer_form_data).status_code == 302
    assert (
        new_customer(staff_client, customer_form_data, web_username="other2", email="o@doe.example").status_code == 302
    )
    pks = list(Customer.objects.filter(kind="customer").values_list("pk", flat=True))
    logins = list(Customer.objects.filter(pk__in=pks).values_list("user_id", flat=True))
    response = staff_client.post(
        reverse("admin:customers_customer_changelist"),
        {"action": "delete_selected", "_selected_action": [str(pk) for pk in pks], "post": "yes"},
    )
    assert response.status_code == 302
    assert not Customer.objects.filter(pk__in=pks).exists()
    assert not User.objects.filter(pk__in=logins).exists()


@pytest.mark.parametrize("username", ["admin", "ADMIN"])
def test_staff_user_name_is_a_form_error_not_a_500(staff_client, customer_form_data, username: str) -> None:
    response = new_customer(staff_client, customer_form_data, web_username=username)
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert errors["web_username"] == [f"Web access user name '{username}' is refused: already in use"]
    assert User.objects.get(username="admin").is_superuser  # untouched


def test_login_left_behind_is_a_form_error(staff_client, customer_form_data) -> None:
    User.objects.create_user("janedoe1")  # e.g. left by an older release
    response = new_customer(staff_client, customer_form_data)
    assert response.status_code == 200
    assert "Web access user name 'janedoe1' is refused: already in use" in text(response)


def test_renaming_a_customer_onto_a_staff_login_is_refused(staff_client, customer_form_data) -> None:
    assert new_customer(staff_client, customer_form_data).status_code == 302
    customer = Customer.objects.get(web_username="janedoe1")
    url = reverse("admin:customers_customer_change", args=[customer.pk])
    response = admin_post(staff_client, url, web_username="admin", web_password="")
    assert response.status_code == 200
    assert "Web access user name 'admin' is refused: already in use" in text(response)
    # Re-saving with its own name is fine (its own login is not a clash).
    assert admin_post(staff_client, url, web_password="").status_code == 302


# --- issue 11 item 13: weak or malformed credentials and hosts ----------------------------------


def refusals(instance: Any) -> dict[str, list[str]]:
    try:
        instance.full_clean()
    except ValidationError as exc:
        return exc.message_dict
    return {}


@pytest.fixture
def sip_account(operator):  # type: ignore[no-untyped-def]
    return Account.objects.create(customer=operator, name="main", sip_password="Main-pass1")


@pytest.mark.parametrize(
    ("login", "secret", "field", "words"),
    [
        ("bad login!", "Strong-Secret-1", "login", ["SIP device login", "'bad login!'", "letters A-Z"]),
        ("goodlogin", "x", "secret", ["SIP device secret", "'*'", "12 to 64 characters"]),
        ("goodlogin", "alllowercase123", "secret", ["SIP device secret", "one capital letter"]),
        ("goodlogin", "With Space 1234", "secret", ["SIP device secret", "without spaces"]),
    ],
)
def test_weak_sip_device_refused(sip_account, login: str, secret: str, field: str, words: list[str]) -> None:
    errors = refusals(SipDevice(account=sip_account, login=login, secret=secret))
    message = " ".join(errors.get(field, []))
    for word in words:
        assert word in message, (word, errors)
    if field == "secret":
        assert secret not in message  # never echoed in clear
    assert refusals(SipDevice(account=sip_account, login="goodlogin", secret="Strong-Secret-1")) == {}


@pytest.mark.parametrize(
    ("password", "words"),
    [
        ("1", ["Main SIP/IAX password", "8 to 64 characters"]),
        ("", ["Main SIP/IAX password is required for a SIP user account"]),
        ("password12", ["Main SIP/IAX password", "one capital letter", "one special character"]),
        ("Pass word-1", ["Main SIP/IAX password", "without spaces"]),
    ],
)
def test_weak_main_sip_password_refused(sip_account, password: str, words: list[str]) -> None:
    sip_account.sip_password = password
    message = " ".join(refusals(sip_account).get("sip_password", []))
    for word in words:
        assert word in message, (word, message)


def test_main_sip_password_not_needed_by_accounts_without_registration(operator) -> None:
    trunk = Account(customer=operator, name="t", kind="trunk", identifier="tr-1")
    assert refusals(trunk) == {}


def test_connection_host_did_mac_and_dial_prefix_refused(sip_account) -> None:
    from tarifa.dids.models import Did
    from tarifa.routing.models import Connection, Vendor

    vendor = Vendor.objects.create(name="Carrier")
    for host in ("sip.carrier.example", "192.0.2.1", "2001:db8::1", "gw-1.example."):
        assert refusals(Connection(vendor=vendor, name=f"c-{host}", host=host)) == {}, host
    for host in ("not a host!!", "-bad.example", "1.2.3.999", "a..b"):
        message = " ".join(refusals(Connection(vendor=vendor, name="c", host=host))["host"])
        assert f"Host {host!r} is refused" in message and "host name" in message
    assert refusals(Did(number="12015550100", mac_address="00:1A:2B:3C:4D:5E")) == {}
    assert refusals(Did(number="12015550100", mac_address="001a2b3c4d5e")) == {}
    for mac in ("zz:zz", "00:1A:2B:3C:4D", "00:1A-2B:3C:4D:5E"):
        message = " ".join(refusals(Did(number="12015550100", mac_address=mac))["mac_address"])
        assert f"MAC address {mac!r} is refused" in message
    assert refusals(IpDevice(account=sip_account, address="192.0.2.9", dial_prefix="99#")) == {}
    message = " ".join(refusals(IpDevice(account=sip_account, address="192.0.2.9", dial_prefix="ab#"))["dial_prefix"])
    assert "Dial prefix 'ab#' is refused" in message and "digits 0-9, * and #" in message


def test_sip_secrets_are_masked_and_kept_when_left_empty(staff_client, sip_account) -> None:
    device = SipDevice.objects.create(account=sip_account, login="alice", secret="Old-Secret-123")
    url = reverse("admin:customers_sipdevice_change", args=[device.pk])
    html = staff_client.get(url).content.decode()
    assert "Old-Secret-123" not in html and 'type="password"' in html
    assert admin_post(staff_client, url, secret="", extension="201").status_code == 302
    device.refresh_from_db()
    assert device.secret == "Old-Secret-123" and device.extension == "201"
    response = admin_post(staff_client, url, secret="weak")
    assert response.status_code == 200 and "SIP device secret '****' is refused" in text(response)
    assert admin_post(staff_client, url, secret="New-Secret-456").status_code == 302
    device.refresh_from_db()
    assert device.secret == "New-Secret-456"
    # The account's main SIP password, on the account page and in its device inline.
    account_url = reverse("admin:customers_account_change", args=[sip_account.pk])
    html = staff_client.get(account_url).content.decode()
    assert "Main-pass1" not in html and "New-Secret-456" not in html
    assert admin_post(staff_client, account_url, sip_password="", name="renamed").status_code == 302
    sip_account.refresh_from_db()
    assert sip_account.sip_password == "Main-pass1" and sip_account.name == "renamed"


def test_new_sip_device_needs_a_secret(staff_client, sip_account) -> None:
    response = staff_client.post(
        reverse("admin:customers_sipdevice_add"),
        {
            "account": sip_account.pk,
            "login": "bob",
            "secret": "",
            "status": "active",
        },
    )
    assert response.status_code == 200
    assert "SIP device secret is required" in text(response)


# --- issue 12 item 8: staff passwords follow the seed's rule, long passphrases welcome -------------


def test_staff_passwords_follow_the_seed_rule() -> None:
    staff = User.objects.create_user("ops", is_staff=True)
    for weak, rule in (
        ("short1!", "8"),
        ("nocapital1!", "one capital letter"),
        ("NoDigit!!x", "one digit"),
        ("NoSpecial12", "one special character"),
    ):
        with pytest.raises(ValidationError) as exc:
            validate_password(weak, staff)
        assert rule in " ".join(exc.value.messages) and weak not in " ".join(exc.value.messages)
    validate_password("correct Horse battery staple 42 and then some more words!", staff)  # 57 characters
    validate_password("Ábcdefg1!", staff)  # a capital is a capital, in any alphabet
    named = User.objects.create_user("margaret.hamilton", is_staff=True)
    for guessable, user in (("Password1!", staff), ("Margaret.Hamilton1", named)):  # common; the user's own name
        with pytest.raises(ValidationError):
            validate_password(guessable, user)


def test_customer_login_keeps_the_seed_limit_of_30() -> None:
    user = User.objects.create_user("cust")
    from tarifa.rating.models import Tariff

    tariff = Tariff.objects.create(name="T")
    Customer.objects.create(
        kind="operator",
        name="C",
        company="C",
        web_username="cust",
        tariff=tariff,
        email="c@c.example",
        phone="+12015550123",
        country="US",
        user=user,
    )
    user.refresh_from_db()
    with pytest.raises(ValidationError) as exc:
        validate_password("Aa1!" + "x" * 27, user)
    assert "8 to 30 characters" in " ".join(exc.value.messages)


# --- issue 12 item 3: a moved reseller's subtree --------------------------------------------------


def _reseller(operator: Customer, name: str) -> Customer:
    return Customer.objects.create(
        kind="reseller",
        parent=operator,
        name=name,
        company=name,
        web_username=name,
        tariff=operator.tariff,
        email=f"{name}@x.example",
        phone="+12015550123",
        country="US",
    )


def test_moving_a_reseller_moves_its_whole_subtree(client, operator) -> None:
    from tarifa.api.models import ApiToken
    from tarifa.cdrs.models import Cdr

    voicenet, callwave = _reseller(operator, "voicenet"), _reseller(operator, "callwave")
    shop = Customer.objects.create(
        parent=callwave,
        name="Shop",
        company="Shop",
        web_username="shop1",
        tariff=operator.tariff,
        email="s@x.example",
        phone="+12015550123",
        country="US",
    )
    account = Account.objects.create(customer=shop, name="shop-main", sip_password="Main-pass1")
    from datetime import UTC, datetime

    Cdr.objects.create(
        switch="sw",
        call_id="leak-1",
        leg="a",
        account=account,
        customer=shop,
        callee="442079460958",
        number="442079460958",
        start_time=datetime(2026, 3, 1, tzinfo=UTC),
        duration=60,
        price=Decimal("0.02"),
    )
    _t, voicenet_token = ApiToken.issue("voicenet", customer=voicenet)

    def seen_by_voicenet() -> list[str]:
        response = client.get("/api/v1/cdrs", HTTP_AUTHORIZATION=f"Bearer {voicenet_token}")
        assert response.status_code == 200
        return [row["call_id"] for row in json.loads(response.content)]

    callwave.parent = voicenet
    callwave.save()
    shop.refresh_from_db()
    assert shop.path == voicenet.path + callwave.account_code + "/" + shop.account_code + "/"
    assert seen_by_voicenet() == ["leak-1"]  # now it is VoiceNet's
    shop.save()  # re-save a child while it is under VoiceNet
    callwave.parent = operator
    callwave.save()
    shop.refresh_from_db()
    assert shop.path == operator.path + callwave.account_code + "/" + shop.account_code + "/"
    assert seen_by_voicenet() == []  # moved back: VoiceNet sees nothing of it
    assert set(voicenet.subtree()) == {voicenet}
    assert set(callwave.subtree()) == {callwave, shop}


def test_the_api_cdr_listing_and_the_subtree_rule_agree(client, operator) -> None:
    """The API's CDR listing shows a token's customer exactly the calls of ``Customer.subtree()``
    (the one statement of the rule, ``Customer.in_subtree``): nothing of a sibling reseller, of the
    parent, or of a customer whose code starts like one of the subtree's."""
    from datetime import UTC, datetime

    from tarifa.api.models import ApiToken
    from tarifa.cdrs.models import Cdr

    voicenet, callwave = _reseller(operator, "voicenet"), _reseller(operator, "callwave")
    sub = Customer.objects.create(
        kind="reseller",
        parent=voicenet,
        name="Sub",
        company="Sub",
        web_username="sub1",
        tariff=operator.tariff,
        email="s@x.example",
        phone="+12015550123",
        country="US",
    )
    tree = [operator, voicenet, callwave, sub]
    shops = [
        Customer.objects.create(
            parent=parent,
            name=f"Shop{n}",
            company=f"Shop{n}",
            web_username=f"shop{n}",
            tariff=operator.tariff,
            email=f"s{n}@x.example",
            phone="+12015550123",
            country="US",
        )
        for n, parent in enumerate(tree)
    ]
    for owner in [*tree, *shops]:
        account = Account.objects.create(customer=owner, name=f"acct-{owner.pk}", sip_password="Main-pass1")
        Cdr.objects.create(
            switch="sw",
            call_id=f"call-{owner.pk}",
            leg="a",
            account=account,
            customer=owner,
            callee="442079460958",
            number="442079460958",
            start_time=datetime(2026, 3, 1, tzinfo=UTC),
            duration=60,
            price=Decimal("0.02"),
        )
    for customer in Customer.objects.all():
        _t, raw = ApiToken.issue(f"t-{customer.pk}", customer=customer)
        response = client.get("/api/v1/cdrs", {"limit": 1000}, HTTP_AUTHORIZATION=f"Bearer {raw}")
        assert response.status_code == 200
        listed = {row["call_id"] for row in json.loads(response.content)}
        assert listed == {f"call-{c.pk}" for c in customer.subtree()}, customer
    assert set(voicenet.subtree()) == {voicenet, sub, shops[1], shops[3]}
    assert set(callwave.subtree()) == {callwave, shops[2]}


def test_a_move_under_ones_own_descendant_is_refused(staff_client, operator) -> None:
    callwave = _reseller(operator, "callwave")
    sub = Customer.objects.create(
        kind="reseller",
        parent=callwave,
        name="Sub",
        company="Sub",
        web_username="sub1",
        tariff=operator.tariff,
        email="s@x.example",
        phone="+12015550123",
        country="US",
    )
    before = {c.pk: c.path for c in Customer.objects.all()}
    url = reverse("admin:customers_customer_change", args=[callwave.pk])
    for target in (sub, callwave):
        response = admin_post(staff_client, url, parent=str(target.pk), web_password="")
        assert response.status_code == 200
        message = " ".join(response.context["adminform"].form.errors["parent"])
        assert f"Parent '{target}' is refused" in message and "own subtree" in message
    # The model refuses it whatever the door, and nothing is half-written.
    callwave.parent = sub
    with pytest.raises(ValidationError) as exc:
        callwave.save()
    assert "own subtree" in str(exc.value)
    assert {c.pk: c.path for c in Customer.objects.all()} == before


# --- issue 11 item 11: currencies -------------------------------------------------------------


@pytest.mark.parametrize(
    ("currency", "words"),
    [
        ("ZZZ", ["Currency 'ZZZ' is refused", "ISO 4217"]),
        ("usd", ["Currency 'usd' is refused", "capitals (USD)"]),
        ("XXX", ["Currency 'XXX' is refused", "ISO 4217"]),
    ],
)
def test_currency_must_be_iso_4217(customer_form_data, currency: str, words: list[str]) -> None:
    from tarifa.customers.forms import CustomerForm

    form = CustomerForm(data=customer_form_data(currency=currency))
    assert not form.is_valid()
    message = " ".join(form.errors["currency"])
    for word in words:
        assert word in message, message


def test_customer_and_tariff_currencies_must_agree(customer_form_data, tariff, operator) -> None:
    from tarifa.customers.forms import CustomerForm
    from tarifa.rating.models import Tariff

    form = CustomerForm(data=customer_form_data(currency="EUR"))
    assert not form.is_valid()
    assert form.errors["currency"] == [
        "Currency 'EUR' is refused: must be the customer tariff's currency: tariff 'Test tariff' is in USD"
    ]
    euro = Tariff.objects.create(name="Euro retail", currency="EUR")
    form = CustomerForm(data=customer_form_data(currency="EUR", tariff=euro.pk))
    assert form.is_valid(), form.errors
    customer = form.save()
    account = Account(customer=customer, name="a", kind="trunk", identifier="tr-eur", tariff=tariff)  # a USD tariff
    errors = refusals(account)
    assert errors["tariff"] == [
        "Tariff 'Test tariff' is refused: must be in the customer's currency EUR (the tariff is in USD)"
    ]
    account.tariff = euro
    assert refusals(account) == {}
    account.save()
    # Switching the customer to USD (with a USD tariff) is refused while an account keeps a EUR tariff.
    customer.currency, customer.tariff = "USD", tariff
    errors = refusals(customer)
    assert "account 'a' has tariff 'Euro retail' in EUR" in " ".join(errors["currency"])


def test_vendor_currency_is_iso_4217() -> None:
    from tarifa.routing.models import Vendor

    assert "Currency 'ZZZ' is refused" in " ".join(refusals(Vendor(name="V", currency="ZZZ"))["currency"])
    assert refusals(Vendor(name="V", currency="GBP")) == {}


def test_the_migration_repairs_paths_left_behind_by_earlier_moves(operator) -> None:
    """Databases where an earlier release moved a reseller keep stale child paths: the customers
    migration recomputes every path from the parent links."""
    import importlib.util
    from pathlib import Path
    from types import SimpleNamespace

    from django.apps import apps
    from django.db import connection

    import tarifa.customers.migrations as migrations

    voicenet, callwave = _reseller(operator, "voicenet"), _reseller(operator, "callwave")
    shop = Customer.objects.create(
        parent=callwave,
        name="Shop",
        company="Shop",
        web_username="shop1",
        tariff=operator.tariff,
        email="s@x.example",
        phone="+12015550123",
        country="US",
    )
    stale = voicenet.path + callwave.account_code + "/" + shop.account_code + "/"
    Customer.objects.filter(pk=shop.pk).update(path=stale)  # what the old single-row move left
    assert shop in voicenet.subtree()
    source = next(p for p in Path(migrations.__file__).parent.glob("0*.py") if "def repair_paths" in p.read_text())
    spec = importlib.util.spec_from_file_location("repair", source)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    module.repair_paths(apps, SimpleNamespace(connection=connection))
    shop.refresh_from_db()
    assert shop.path == callwave.path + shop.account_code + "/"
    assert shop not in voicenet.subtree() and shop in callwave.subtree()


def test_tariff_currency_is_iso_4217_and_follows_its_customers(tariff, operator) -> None:
    from tarifa.rating.models import Tariff
    from tarifa.routing.models import DestinationSet, Vendor

    assert "Currency 'ZZZ' is refused" in " ".join(refusals(Tariff(name="Z", currency="ZZZ"))["currency"])
    set_ = DestinationSet(name="D", vendor=Vendor.objects.create(name="V"), currency="eur")
    assert "Currency 'eur' is refused: must be written in capitals (EUR)" in " ".join(refusals(set_)["currency"])
    tariff.currency = "EUR"  # the operator (USD) sells with it
    assert refusals(tariff)["currency"] == ["Currency 'EUR' is refused: customer 'Operator Co' uses this tariff in USD"]


def _to_euro(customer: Customer) -> dict[str, list[str]]:
    from tarifa.rating.models import Tariff

    euro, _ = Tariff.objects.get_or_create(name=f"Euro {customer.pk}", currency="EUR")
    customer = Customer.objects.get(pk=customer.pk)
    customer.currency, customer.tariff = "EUR", euro
    return refusals(customer)


def test_the_currency_of_a_customer_holding_money_cannot_change(customer_form_data) -> None:
    """User report B: USD 121.31 relabelled EUR 121.31 when the currency changed."""
    from tarifa.billing import ledger
    from tarifa.customers.forms import CustomerForm

    form = CustomerForm(data=customer_form_data())
    customer = form.save() if form.is_valid() else pytest.fail(str(form.errors))
    assert _to_euro(customer) == {}  # nothing held yet: may still change
    ledger.post_one(ledger.Posting(customer_id=customer.pk, amount=Decimal("121.31"), kind="payment", reference="p1"))
    assert _to_euro(customer)["currency"] == [
        (
            "Currency 'EUR' is refused: cannot change while the customer holds money in USD (balance 121.31): "
            "its ledger stays in one currency"
        )
    ]
    ledger.post_one(
        ledger.Posting(
            customer_id=customer.pk,
            amount=Decimal("-121.31"),
            kind="adjustment",
            reference="p2",
            description="back to zero",
        )
    )
    assert Customer.objects.get(pk=customer.pk).balance == 0
    assert "(2 transactions)" in " ".join(_to_euro(customer)["currency"])
    # unchanged currency: other edits of the same customer still pass
    same = Customer.objects.get(pk=customer.pk)
    same.company = "Renamed Ltd"
    assert refusals(same) == {}


def test_an_account_with_its_own_balance_blocks_the_currency_change(customer_form_data) -> None:
    from tarifa.customers.forms import CustomerForm

    form = CustomerForm(data=customer_form_data())
    customer = form.save() if form.is_valid() else pytest.fail(str(form.errors))
    account = Account.objects.create(customer=customer, name="own", balance_mode="own")
    Account.objects.filter(pk=account.pk).update(balance=Decimal(5))
    assert "account 'own' has balance 5" in " ".join(_to_euro(customer)["currency"])
