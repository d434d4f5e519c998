"""Every seed rule: one accepted and one refused value, and the refusal names field, value and rule."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.core.exceptions import ValidationError

from tarifa.customers.forms import CustomerForm
from tarifa.customers.models import Account, Customer

pytestmark = pytest.mark.django_db


def form_errors(data: dict[str, Any], instance: Customer | None = None) -> dict[str, list[str]]:
    form = CustomerForm(data=data, instance=instance)
    form.is_valid()
    return {k: [str(m) for m in v] for k, v in form.errors.items()}


# --- seed 003: add customer -------------------------------------------------------------------

CUSTOMER_RULES = [
    # field, accepted, refused, words the refusal must contain
    ("customer_type", "DEMO", "TRIAL", ["Customer type", "'TRIAL'", "LIVE, DEMO"]),
    ("web_username", "abc123XYZ", "jane_doe", ["Web access user name", "'jane_doe'", "letters A-Z, a-z and digits"]),
    ("web_username", "a" * 30, "a" * 31, ["Web access user name", "'" + "a" * 31 + "'", "at most 30 characters"]),
    ("billing_type", "postpaid", "credit", ["Billing type", "'credit'", "prepaid, postpaid"]),
    ("payment_term_days", "1", "0", ["Payment term", "0", "between 1 and 30 days"]),
    ("payment_term_days", "30", "31", ["Payment term", "31", "between 1 and 30 days"]),
    ("credit_limit", "0", "-5", ["Max credit limit", "-5", "at least 0"]),
    ("credit_limit", "1500.50", "lots", ["Max credit limit", "'lots'", "must be a number"]),
    ("billing_decimals", "6", "7", ["Billing decimals", "7", "between 0 and 6"]),
    ("billing_decimals", "0", "-1", ["Billing decimals", "-1", "between 0 and 6"]),
    ("tax_flag", "VAT", "GST", ["VAT/Tax flag", "'GST'", "NONE, VAT, TAX"]),
    ("max_call_sessions", "1", "0", ["Maximum call sessions", "0", "at least 1"]),
    ("calls_per_second", "1", "0", ["Call sessions per second", "0", "at least 1"]),
    ("email", "a@b.co", "not-an-email", ["Email address", "'not-an-email'", "valid e-mail"]),
    ("email", "x" * 20 + "@abc.co.uk", "x" * 21 + "@abcd.co.uk", ["Email address", "at most 30 characters"]),
    ("address", "a" * 200, "a" * 201, ["Address", "at most 200 characters"]),
    ("phone", "+44 20 7946 0958", "12345", ["Phone number", "'12345'", "valid phone number"]),
    ("country", "DE", "XX", ["Country", "'XX'", "available choices"]),
    ("status", "inactive", "paused", ["Status", "'paused'", "active, inactive"]),
    ("pin", "10115", "!!", ["PIN / postal code", "'!!'", "letters, digits"]),
    ("time_zone", "America/New_York", "Mars/Olympus", ["Time zone", "'Mars/Olympus'", "IANA time zone"]),
    ("name", "Jo", "", ["Name is required"]),
    ("company", "Jo Ltd", "", ["Company is required"]),
]


@pytest.mark.parametrize(
    ("field", "good", "bad", "words"), CUSTOMER_RULES, ids=[f"{r[0]}-{r[2][:12]}" for r in CUSTOMER_RULES]
)
def test_customer_rule(customer_form_data, field: str, good: str, bad: str, words: list[str]) -> None:
    data = customer_form_data(**{field: good})
    if field == "country":
        data["phone"] = "+44 20 7946 0958"
    assert form_errors(data) == {}
    errors = form_errors(customer_form_data(**{field: bad}))
    assert field in errors, errors
    message = " ".join(errors[field])
    for word in words:
        assert word in message, (word, message)


def test_tariff_is_required(customer_form_data) -> None:
    errors = form_errors(customer_form_data(tariff=""))
    assert "tariff" in errors and "required" in errors["tariff"][0]


def test_web_username_is_unique(customer_form_data) -> None:
    form = CustomerForm(data=customer_form_data())
    assert form.is_valid(), form.errors
    form.save()
    errors = form_errors(customer_form_data(email="other@doe.example"))
    assert errors["web_username"] == ["Web access user name 'janedoe1' is refused: already in use"]


@pytest.mark.parametrize(
    ("password", "rule"),
    [
        ("Short1!", "8 to 30 characters"),
        ("Aa1!" + "x" * 27, "8 to 30 characters"),
        ("lowercase1!", "one capital letter"),
        ("NoDigits!!", "one digit"),
        ("NoSpecial12", "one special character"),
    ],
)
def test_web_password_rules(customer_form_data, password: str, rule: str) -> None:
    errors = form_errors(customer_form_data(web_password=password))
    message = errors["web_password"][0]
    assert message.startswith("Web access password ") and rule in message
    assert password not in message  # the value is shown masked, never in clear


@pytest.mark.real_password_hasher
def test_web_password_accepted_and_hashed(customer_form_data) -> None:
    form = CustomerForm(data=customer_form_data(web_password="Aa1!" + "x" * 26))
    assert form.is_valid(), form.errors
    customer = form.save()
    assert customer.user is not None and customer.user.username == "janedoe1"
    assert customer.user.password.startswith("argon2")
    assert customer.user.check_password("Aa1!" + "x" * 26)


def test_web_password_required_for_new_customer(customer_form_data) -> None:
    errors = form_errors(customer_form_data(web_password=""))
    assert "required" in errors["web_password"][0]


def test_phone_checked_against_country(customer_form_data) -> None:
    # A valid UK national number is not a valid German one.
    errors = form_errors(customer_form_data(country="DE", phone="020 7946 0958"))
    assert "for country DE" in errors["phone"][0]


def test_customer_tree_rules(tariff, operator) -> None:
    reseller = Customer(
        kind="reseller",
        parent=operator,
        name="R",
        company="R",
        web_username="res1",
        tariff=tariff,
        email="r@r.example",
        phone="+12015550123",
        country="US",
    )
    reseller.full_clean()
    reseller.save()
    assert reseller.path.startswith(operator.path) and reseller.subtree().count() == 1
    orphan = Customer(
        kind="customer",
        name="O",
        company="O",
        web_username="orph",
        tariff=tariff,
        email="o@o.example",
        phone="+12015550123",
        country="US",
    )
    with pytest.raises(ValidationError) as exc:
        orphan.full_clean()
    assert "must belong to an operator or a reseller" in str(exc.value.message_dict["parent"])
    child = Customer.objects.create(
        kind="customer",
        parent=reseller,
        name="C",
        company="C",
        web_username="c1",
        tariff=tariff,
        email="c@c.example",
        phone="+12015550123",
        country="US",
    )
    reseller.parent = child
    with pytest.raises(ValidationError) as exc:
        reseller.full_clean()
    assert "Parent" in str(exc.value)


# --- seed 001: account settings -----------------------------------------------------------------


@pytest.fixture
def account(operator):  # type: ignore[no-untyped-def]
    return Account.objects.create(customer=operator, name="main", sip_password="Main-pass1")


def account_errors(account: Account, **fields: Any) -> dict[str, list[str]]:
    for name, value in fields.items():
        setattr(account, name, value)
    try:
        account.full_clean()
    except ValidationError as exc:
        return exc.message_dict
    return {}


def test_account_defaults(account) -> None:
    assert account.max_expiry == 3600
    assert account.rtp_timeout == 60
    assert account.rtp_hold_timeout == 600
    assert account.allow_international is False
    assert account.dialing_mode == "nanp"
    assert account.balance_threshold is None
    assert account_errors(account) == {}


ACCOUNT_RULES = [
    ("max_expiry", 60, 59, ["Max expiry", "59", "between 60 and 3600 seconds"]),
    ("max_expiry", 3600, 3601, ["Max expiry", "3601", "between 60 and 3600 seconds"]),
    ("rtp_timeout", 1, 0, ["RTP time-out", "0", "between 1 and 3600"]),
    ("rtp_hold_timeout", 3600, 3601, ["RTP hold time-out", "3601", "between 1 and 3600"]),
    ("balance_threshold", Decimal("1"), Decimal("0.5"), ["Balance threshold", "0.5", "between 1 and 200"]),
    ("balance_threshold", Decimal("200"), Decimal("201"), ["Balance threshold", "201", "between 1 and 200"]),
    ("balance_threshold", None, Decimal("-3"), ["Balance threshold", "-3", "between 1 and 200"]),
    ("dialing_mode", "e164", "europe", ["Dialing mode", "'europe'", "nanp, e164"]),
    ("dtmf_mode", "inband", "loud", ["DTMF mode", "'loud'", "auto, rfc2833, inband, info"]),
    ("allowed_codecs", ["PCMU", "G722"], ["PCMU", "MP3"], ["Allowed codecs", "'MP3'", "must be one of"]),
    ("max_call_time_domestic", 7200, 0, ["Max call time for domestic calls", "0", "between 1 and 86400 seconds"]),
    (
        "max_call_time_international",
        600,
        90000,
        ["Max call time for international calls", "90000", "between 1 and 86400"],
    ),
    (
        "international_rate_cap",
        Decimal("0.150"),
        Decimal("-0.1"),
        ["International per-minute rate cap", "-0.1", "at least 0"],
    ),
    ("allowed_countries", ["GB", "DE"], ["GB", "UK"], ["Allowed countries", "'UK'", "ISO 3166"]),
    ("ip_restriction", ["192.0.2.0/24", "2001:db8::1"], ["192.0.2.300"], ["IP restriction", "'192.0.2.300'", "CIDR"]),
    (
        "notification_emails",
        "a@b.example, c@d.example",
        "a@b.example, nope",
        ["Notification e-mails", "'nope'", "valid e-mail"],
    ),
    ("e911_caller_id", "12015550123", "911-CALL", ["e911 default caller ID", "'911-CALL'", "digits"]),
]


@pytest.mark.parametrize(
    ("field", "good", "bad", "words"), ACCOUNT_RULES, ids=[f"{r[0]}-{r[2]}" for r in ACCOUNT_RULES]
)
def test_account_rule(account, field: str, good: Any, bad: Any, words: list[str]) -> None:
    assert account_errors(account, **{field: good}) == {}
    errors = account_errors(account, **{field: bad})
    message = " ".join(errors.get(field, []))
    assert message, errors
    for word in words:
        assert word in message, (word, message)


def test_rtp_timeout_not_above_hold_timeout(account) -> None:
    assert account_errors(account, rtp_timeout=600, rtp_hold_timeout=600) == {}
    errors = account_errors(account, rtp_timeout=700, rtp_hold_timeout=600)
    assert errors["rtp_timeout"] == [
        "RTP time-out 700 is refused: must be equal to or lower than the RTP hold time-out (600)"
    ]


def test_int_field_rejects_text(account) -> None:
    errors = account_errors(account, max_expiry="soon")
    assert (
        "Max expiry 'soon' is refused: must be a whole number" in errors["max_expiry"][0]
        or "soon" in errors["max_expiry"][0]
    )


# --- rates ----------------------------------------------------------------------------------


def test_rate_rules(tariff) -> None:
    from datetime import UTC, datetime

    from tarifa.rating.models import Rate

    good = Rate(
        tariff=tariff, prefix="4420", price_1=Decimal("0.01"), price_n=Decimal("0.01"), period="mon-fri 08:00-18:00"
    )
    good.full_clean()
    bad = Rate(
        tariff=tariff,
        prefix="44a",
        price_1=Decimal("-1"),
        price_n=Decimal("0.01"),
        interval_1=0,
        effective_from=datetime(2026, 2, 1, tzinfo=UTC),
        effective_to=datetime(2026, 1, 1, tzinfo=UTC),
        period="someday",
    )
    with pytest.raises(ValidationError) as exc:
        bad.full_clean()
    errors = exc.value.message_dict
    assert "Prefix '44a' is refused: must be 1 to 15 digits 0-9" in errors["prefix"]
    assert any("must be between 0 and 9223372036854.775807" in m for m in errors["price_1"])
    assert any("First interval 0 is refused" in m for m in errors["interval_1"])
    assert any("Time period 'someday'" in m for m in errors["period"])
    assert any("must be later than effective from" in m for m in errors["effective_to"])


# --- issue 11 item 14: every form message names the field (and the value) -----------------------


@pytest.mark.parametrize(
    ("field", "bad", "expected"),
    [
        ("max_call_sessions", "abc", "Maximum call sessions 'abc' is refused: must be a whole number"),
        ("credit_limit", "1e", "Max credit limit '1e' is refused: must be a number"),
        ("name", "", "Name is required"),
        ("tariff", "999999", "Customer tariff '999999' is refused: must be one of the available choices"),
        ("codecs", ["PCMU", "MP3"], "Codec list 'MP3' is refused: must be one of PCMU, PCMA"),
    ],
)
def test_generic_messages_name_field_and_value(customer_form_data, field: str, bad: Any, expected: str) -> None:
    errors = form_errors(customer_form_data(**{field: bad}))
    assert any(message.startswith(expected) for message in errors[field]), errors[field]


def test_unicode_capital_counts(customer_form_data) -> None:
    assert form_errors(customer_form_data(web_password="Ábcdefg1!")) == {}
    errors = form_errors(customer_form_data(web_password="ábcdefg1!"))
    assert "must contain one capital letter" in errors["web_password"][0]


def test_admin_forms_of_every_app_name_field_and_value(client, operator) -> None:
    """The mechanism is the admin's (tarifa.forms via TarifaAdmin), not one model's."""
    import html

    from django.contrib.auth import get_user_model
    from django.urls import reverse

    from tarifa.billing.models import ServicePlan

    client.force_login(get_user_model().objects.create_superuser("boss", "b@example.com", "Boss-pass1"))
    plan = ServicePlan.objects.create(name="Plan")
    response = client.post(
        reverse("admin:billing_includedminutes_add"), {"plan": plan.pk, "name": "UK", "prefixes": "GB", "minutes": "x"}
    )
    page = html.unescape(response.content.decode())
    assert response.status_code == 200
    assert "Prefix 'GB' is refused: must be 1 to 15 digits 0-9" in page  # one per line since the list widget
    assert "Minutes per period 'x' is refused: must be a whole number" in page
    account = Account.objects.create(customer=operator, name="pbx", kind="ip")
    response = client.post(
        reverse("admin:customers_ipdevice_add"), {"account": account.pk, "address": "999.1.1.1", "status": "active"}
    )
    page = html.unescape(response.content.decode())
    assert "IP address '999.1.1.1' is refused: must be an IPv4 or IPv6 address" in page
    assert "Enter a valid" not in page and "This field is required" not in page


# --- issue 11 items 14 and 15: the account form (seed 001) ------------------------------------------


def account_form(account: Account, **changes: Any):  # type: ignore[no-untyped-def]
    from tarifa.customers.forms import AccountForm
    from tests.factories import page_values

    data = page_values(AccountForm(instance=account))
    data.update(changes)
    return AccountForm(data=data, instance=account)


def test_empty_rtp_time_outs_take_the_seed_defaults(account) -> None:
    account.rtp_timeout, account.rtp_hold_timeout, account.max_expiry = 30, 300, 600
    account.save()
    form = account_form(account, rtp_timeout="", rtp_hold_timeout="", max_expiry="")
    assert form.is_valid(), form.errors
    saved = form.save()
    assert (saved.rtp_timeout, saved.rtp_hold_timeout, saved.max_expiry) == (60, 600, 3600)
    form = account_form(account, rtp_timeout="soon")
    assert not form.is_valid()
    assert form.errors["rtp_timeout"] == ["RTP time-out 'soon' is refused: must be a whole number"]


def test_allowed_countries_picker(account) -> None:
    form = account_form(account, allowed_countries=["GB", "DE"])
    assert form.is_valid(), form.errors
    assert form.save().allowed_countries == ["DE", "GB"]
    form = account_form(account, allowed_countries=["GB", "UK"])
    assert not form.is_valid()
    assert form.errors["allowed_countries"] == [
        "Allowed countries 'UK' is refused: must be an ISO 3166 alpha-2 country code such as GB"
    ]
    html = str(account_form(account)["allowed_countries"])
    assert "data-country-search" in html and "data-select-all" in html
    for region in ("Africa", "Americas", "Asia", "Europe", "Oceania"):
        assert f"{region}</label>" in html, region


def test_every_country_has_a_region() -> None:
    from django_countries import countries

    from tarifa.customers.widgets import countries_by_region, country_regions

    regions = country_regions()
    assert (regions["GB"], regions["US"], regions["JP"], regions["AU"], regions["ZA"], regions["BR"]) == (
        "Europe",
        "Americas",
        "Asia",
        "Oceania",
        "Africa",
        "Americas",
    )
    grouped = [code for _region, items in countries_by_region() for code, _name in items]
    assert sorted(grouped) == sorted(code for code, _name in countries)


def test_ip_restriction_one_per_line(account) -> None:
    form = account_form(account, ip_restriction="192.0.2.0/24\r\n2001:db8::1\n")
    assert form.is_valid(), form.errors
    assert form.save().ip_restriction == ["192.0.2.0/24", "2001:db8::1"]
    assert "192.0.2.0/24\n2001:db8::1" in str(account_form(account)["ip_restriction"])
    form = account_form(account, ip_restriction="192.0.2.0/24\nGB")
    assert not form.is_valid()
    assert form.errors["ip_restriction"] == [
        "IP restriction 'GB' is refused: must be an IP address or CIDR range such as 192.0.2.0/24"
    ]


def test_allowed_codecs_as_check_boxes(account) -> None:
    form = account_form(account, allowed_codecs=["G722", "PCMU"])
    assert form.is_valid(), form.errors
    assert form.save().allowed_codecs == ["PCMU", "G722"]
    form = account_form(account, allowed_codecs=["PCMU", "MP3"])
    assert not form.is_valid()
    assert form.errors["allowed_codecs"][0].startswith("Allowed codecs 'MP3' is refused: must be one of PCMU")


def test_back_office_plain_forms_name_field_and_value() -> None:
    from tarifa.calls.admin_simulate import SimulateForm
    from tarifa.rating.admin_decks import DeckUploadForm

    form = SimulateForm(data={"callee": "", "source_ip": "10.0.0.300"})
    assert not form.is_valid()
    assert form.errors["callee"] == ["Number dialled is required"]
    assert form.errors["source_ip"] == ["Source IP '10.0.0.300' is refused: must be an IPv4 or IPv6 address"]
    form = DeckUploadForm(data={"mode": "merge"})
    assert not form.is_valid()
    assert form.errors["mode"][0].startswith("Mode 'merge' is refused: must be one of add, replace")


def test_unique_refusal_from_any_model_names_field_and_value(operator) -> None:
    from tarifa.customers.models import IpDevice
    from tarifa.forms import LabeledModelForm, labelled

    account = Account.objects.create(customer=operator, name="pbx", kind="ip")
    IpDevice.objects.create(account=account, address="192.0.2.1")

    class IpDeviceForm(LabeledModelForm):
        class Meta:
            model = IpDevice
            fields = ["account", "address", "status"]

    form = IpDeviceForm(data={"account": account.pk, "address": "192.0.2.1", "status": "active"})
    assert not form.is_valid()
    assert form.errors["address"] == ["IP address '192.0.2.1' is refused: already in use"]
    assert labelled(IpDeviceForm) is IpDeviceForm
