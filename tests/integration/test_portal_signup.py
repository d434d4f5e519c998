"""Online sign-up on the portal (docs/portal.md): closed by default, the back office's customer rules
with their messages and nothing stored on bad input, numbers reserved then assigned or given back,
the single-use expiring link read from the real SMTP server, the per-address throttle."""

from __future__ import annotations

import html
import re
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from tarifa.billing.models import ServicePlan
from tarifa.customers.models import Account, Customer
from tarifa.dids.models import Did, DidPlan
from tarifa.portal import signup
from tarifa.portal.models import Signup

pytestmark = pytest.mark.django_db

PASSWORD = "Signup-pass1"


def _text(response: Any) -> str:
    return html.unescape(response.content.decode())


def _field_errors(response: Any) -> list[str]:
    found = re.findall(r'<ul class="errors"[^>]*>(.*?)</ul>', _text(response), re.S)
    return [re.sub(r"<[^>]+>", "", e).strip() for block in found for e in re.findall(r"<li>(.*?)</li>", block, re.S)]


@pytest.fixture
def offer(operator: Customer, tariff: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setenv("TARIFA_SIGNUP", "on")
    monkeypatch.setenv("TARIFA_SIGNUP_VERIFY_HOURS", "24")
    plan = ServicePlan.objects.create(
        name="Starter", recurring_fee=Decimal("4.99"), offered_for_signup=True, signup_tariff=tariff
    )
    hidden = ServicePlan.objects.create(name="Internal", recurring_fee=Decimal("1"))
    did_plan = DidPlan.objects.create(name="US local", monthly_fee=Decimal("1.50"), offered_for_signup=True)
    numbers = [Did.objects.create(number=f"1201555{n:04d}") for n in range(2000, 2005)]
    return {"plan": plan, "hidden": hidden, "did_plan": did_plan, "numbers": numbers, "operator": operator}


def _data(offer: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    data = {
        "plan": offer["plan"].pk,
        "name": "Nina New",
        "company": "Newco",
        "web_username": "newco1",
        "web_password": PASSWORD,
        "email": "nina@newco.example",
        "phone": "+12015550177",
        "country": "US",
        "address": "1 Main St",
        "dids": [offer["numbers"][0].pk],
    }
    data.update(overrides)
    return data


def _nothing_stored() -> None:
    assert not Customer.objects.filter(web_username__iexact="newco1").exists()
    assert not get_user_model().objects.filter(username__iexact="newco1").exists()
    assert Signup.objects.count() == 0
    assert not Did.objects.filter(status="reserved").exists()


def test_sign_up_is_closed_unless_the_operator_opens_it(offer: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TARIFA_SIGNUP")
    assert Client().get("/portal/signup/").status_code == 404
    assert Client().post("/portal/signup/", _data(offer)).status_code == 404
    assert "Sign up" not in _text(Client().get("/portal/login/"))
    _nothing_stored()
    monkeypatch.setenv("TARIFA_SIGNUP", "on")
    ServicePlan.objects.update(offered_for_signup=False)
    assert Client().get("/portal/signup/").status_code == 404  # on, but no plan offered


def test_the_page_offers_only_the_marked_plans_and_available_numbers(offer: dict[str, Any]) -> None:
    Did.objects.filter(pk=offer["numbers"][1].pk).update(status="disabled")
    page = _text(Client().get("/portal/signup/"))
    assert "Starter" in page and "Internal" not in page
    assert offer["numbers"][0].number in page and offer["numbers"][1].number not in page
    assert '<label for="id_web_password">' in page  # every field has its label
    assert 'href="/portal/signup/"' in _text(Client().get("/portal/login/"))


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("web_username", "new co", "Web access user name 'new co' is refused"),
        ("web_password", "weakpass", "Web access password"),
        ("email", "not-an-address", "Email address 'not-an-address' is refused"),
        ("company", "", "Company is required"),
        ("country", "XX", "Country 'XX' is refused"),
        ("web_username", "OPERATOR", "Web access user name 'OPERATOR' is refused: already in use"),
        ("plan", "hidden", "Service plan"),
        ("dids", "taken", "Phone number"),
        ("dids", "four", "at most 3"),
    ],
)
def test_bad_input_is_refused_by_field_and_nothing_is_stored(
    offer: dict[str, Any], smtp_server: Any, field: str, value: str, message: str
) -> None:
    if field == "plan":
        value = offer["hidden"].pk
    elif value == "taken":
        taken = offer["numbers"][2]
        Did.objects.filter(pk=taken.pk).update(status="reserved")
        value = taken.pk
    elif value == "four":
        value = [d.pk for d in offer["numbers"][:4]]  # type: ignore[assignment]
    if field == "web_username" and value == "OPERATOR":
        from tarifa.customers.forms import set_web_access

        set_web_access(offer["operator"], "Operator-pass1")
    response = Client().post("/portal/signup/", _data(offer, **{field: value}))
    assert response.status_code == 400
    errors = _field_errors(response)
    assert any(message in e for e in errors), errors
    page = _text(response)
    assert "Nothing was changed" in page and 'aria-invalid="true"' in page
    if field != "company":
        assert 'value="Newco"' in page  # what was typed is kept
    assert PASSWORD not in page  # never the password
    Did.objects.filter(status="reserved").update(status="available")
    _nothing_stored()
    assert smtp_server.messages == []


def test_sign_up_verify_once_and_log_in(offer: dict[str, Any], smtp_server: Any) -> None:
    chosen = offer["numbers"][:2]
    client = Client()
    response = client.post("/portal/signup/", _data(offer, dids=[d.pk for d in chosen]))
    assert response.status_code == 302 and response["Location"] == "/portal/signup/sent/"
    assert "nina@newco.example" in _text(client.get("/portal/signup/sent/"))
    customer = Customer.objects.get(web_username="newco1")
    assert (customer.status, customer.kind, customer.parent_id) == ("inactive", "customer", offer["operator"].pk)
    assert customer.tariff_id == offer["plan"].signup_tariff_id and customer.user is not None
    assert not customer.user.is_active
    assert sorted(Did.objects.filter(pk__in=[d.pk for d in chosen]).values_list("status", flat=True)) == [
        "reserved",
        "reserved",
    ]
    # no log-in before the link
    refused = Client().post("/portal/login/", {"username": "newco1", "password": PASSWORD})
    assert refused.status_code == 200 and "is refused" in _text(refused)

    [mail] = smtp_server.wait_for(1)
    assert mail["To"] == "nina@newco.example"
    link = re.search(r"http://testserver(/portal/signup/verify/\S+/)", mail.get_content())
    assert link is not None, mail.get_content()
    assert "Activate my account" in _text(client.get(link.group(1)))  # a GET activates nothing
    assert not get_user_model().objects.get(username="newco1").is_active
    done = client.post(link.group(1))
    assert done.status_code == 302 and done["Location"] == "/portal/login/"

    customer.refresh_from_db()
    account = Account.objects.get(customer=customer)
    assert customer.status == "active" and account.service_plan_id == offer["plan"].pk
    assert account.activation_date == timezone.now().date()
    for did in Did.objects.filter(pk__in=[d.pk for d in chosen]):
        assert (did.status, did.account_id, did.plan_id) == ("assigned", account.pk, offer["did_plan"].pk)
    logged = Client()
    assert logged.post("/portal/login/", {"username": "newco1", "password": PASSWORD}).status_code == 302
    assert "Newco" in _text(logged.get("/portal/"))

    again = Client().post(link.group(1))  # single use
    assert again.status_code == 400 and "already used" in _text(again)
    forged = Client().post(link.group(1).replace("verify/", "verify/x"))
    assert forged.status_code == 400 and "not valid" in _text(forged)


def _tarifa(*args: str) -> Any:
    """The ``tarifa`` command, in-process."""
    from typer.testing import CliRunner

    from tarifa import cli

    if not any(group.name == "signups" for group in cli.app.registered_groups):
        cli._register_commands()
    return CliRunner().invoke(cli.app, list(args))


def test_an_unverified_sign_up_expires_and_gives_its_numbers_back(offer: dict[str, Any], smtp_server: Any) -> None:
    chosen = offer["numbers"][3]
    assert Client().post("/portal/signup/", _data(offer, dids=[chosen.pk])).status_code == 302
    [mail] = smtp_server.wait_for(1)
    link = re.search(r"http://testserver(/portal/signup/verify/\S+/)", mail.get_content())
    assert link is not None
    assert signup.expire_due() == 0  # not yet
    Signup.objects.update(expires_at=timezone.now() - timedelta(minutes=1))
    result = _tarifa("signups", "expire")
    assert result.exit_code == 0 and "1 sign-up expired" in result.output, result.output
    assert Did.objects.get(pk=chosen.pk).status == "available"
    late = Client().post(link.group(1))
    assert late.status_code == 400 and "expired" in _text(late)
    assert not get_user_model().objects.get(username="newco1").is_active
    assert Signup.objects.get().state == "expired"


def test_following_an_expired_link_gives_the_numbers_back_at_once(offer: dict[str, Any], smtp_server: Any) -> None:
    """Attack finding F6: the refusal used to roll the expiry back, leaving the numbers reserved."""
    chosen = offer["numbers"][3]
    assert Client().post("/portal/signup/", _data(offer, dids=[chosen.pk])).status_code == 302
    [mail] = smtp_server.wait_for(1)
    link = re.search(r"http://testserver(/portal/signup/verify/\S+/)", mail.get_content())
    assert link is not None and Did.objects.get(pk=chosen.pk).status == "reserved"
    Signup.objects.update(expires_at=timezone.now() - timedelta(minutes=1))
    late = Client().post(link.group(1))
    assert late.status_code == 400 and "expired" in _text(late)
    assert Did.objects.get(pk=chosen.pk).status == "available"
    assert Signup.objects.get().state == "expired"


def test_sign_ups_are_throttled_per_address(
    offer: dict[str, Any], smtp_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TARIFA_SIGNUP_PER_ADDRESS", "1")
    first = Client().post("/portal/signup/", _data(offer, dids=[]))
    assert first.status_code == 302
    second = Client().post("/portal/signup/", _data(offer, dids=[], web_username="newco2", email="two@newco.example"))
    assert second.status_code == 400
    assert "Too many sign-ups from address 127.0.0.1" in _text(second)
    assert not Customer.objects.filter(web_username="newco2").exists()
    assert len(smtp_server.wait_for(1)) == 1


def test_a_mail_server_that_does_not_answer_stores_nothing(
    offer: dict[str, Any], settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", 9  # nothing listens there
    response = Client().post("/portal/signup/", _data(offer))
    assert response.status_code == 400 and "could not be sent" in _text(response)
    _nothing_stored()


def test_a_plan_offered_for_sign_up_needs_its_tariff(offer: dict[str, Any]) -> None:
    from django.core.exceptions import ValidationError

    plan = ServicePlan(name="Bad", offered_for_signup=True)
    with pytest.raises(ValidationError) as refused:
        plan.full_clean()
    assert "Sign-up tariff (empty) is refused: a plan offered for sign-up needs the tariff" in str(refused.value)
