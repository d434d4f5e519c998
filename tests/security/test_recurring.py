"""Bad input to service plans and service charges: refused naming the field, the value and the
rule, with nothing stored or posted."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from tarifa.billing.models import IncludedMinutes, ServiceCharge, ServicePlan, Transaction
from tarifa.customers.models import Account, Customer
from tarifa.services.recurring import post_cancellation_charge, run_charges

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("billing_day", 32, "Billing day of month 32 is refused: must be between 1 and 31"),
        ("billing_day", 0, "Billing day of month 0 is refused: must be between 1 and 31"),
        ("weekday", 7, "Weekly billing day 7 is refused: must be between 0 and 6"),
        ("recurring_fee", Decimal("-1"), "Recurring fee -1 is refused: must be between 0 and 1000000.00"),
        ("minimum_amount", Decimal("-0.01"), "Minimum billing amount per period -0.01 is refused: must be between 0"),
        ("unpaid_action", "ignore", "When a charge cannot be paid 'ignore' is refused: must be one of allow, block"),
    ],
)
def test_plan_terms_out_of_range_are_refused_by_name(field: str, value: object, message: str) -> None:
    plan = ServicePlan(name="Bad", **{field: value})
    with pytest.raises(ValidationError) as caught:
        plan.full_clean()
    assert message in " ".join(caught.value.message_dict[field])
    assert not ServicePlan.objects.exists()


def test_a_negative_rollover_cap_is_refused() -> None:
    plan = ServicePlan.objects.create(name="P")
    pool = IncludedMinutes(plan=plan, name="US", prefixes=["1"], minutes=10, rollover_cap=-5)
    with pytest.raises(ValidationError) as caught:
        pool.full_clean()
    assert "Rollover cap (minutes) -5 is refused: must be at least 0" in " ".join(
        caught.value.message_dict["rollover_cap"]
    )


def test_an_unknown_service_kind_is_refused_and_posts_nothing(tariff, operator) -> None:
    customer = Customer.objects.create(
        parent=operator,
        name="S",
        company="S",
        web_username="sec1",
        tariff=tariff,
        email="s@s.example",
        phone="+12015550123",
        country="US",
    )
    plan = ServicePlan.objects.create(name="P", recurring_fee=Decimal("5"))
    account = Account.objects.create(customer=customer, name="a", service_plan=plan, activation_date=date(2026, 1, 1))
    with pytest.raises(ValueError, match="Service kind 'invoice' is refused: must be one of account, did"):
        post_cancellation_charge("invoice", account, date(2026, 2, 1))
    assert not ServiceCharge.objects.exists() and not Transaction.objects.exists()


def test_a_service_of_another_customer_is_charged_to_its_own_customer_only(tariff, operator) -> None:
    """A charge goes to the balance of the customer whose account carries the service, never to
    another's, whatever the order the services are handled in."""
    a = Customer.objects.create(
        parent=operator,
        name="A",
        company="A",
        web_username="seca",
        tariff=tariff,
        email="a@a.example",
        phone="+12015550123",
        country="US",
    )
    b = Customer.objects.create(
        parent=operator,
        name="B",
        company="B",
        web_username="secb",
        tariff=tariff,
        email="b@b.example",
        phone="+12015550123",
        country="US",
    )
    plan = ServicePlan.objects.create(name="P", recurring_fee=Decimal("5"))
    Account.objects.create(customer=a, name="a", service_plan=plan, activation_date=date(2026, 1, 1))
    run_charges(date(2026, 2, 1))
    a.refresh_from_db()
    b.refresh_from_db()
    assert (a.balance, b.balance) == (Decimal("-5.00"), 0)
    assert not Transaction.objects.filter(customer=b).exists()


HUGE = Decimal("999999999999.999999")  # the attacker's fee: accepted once, refused by the ledger on every run


@pytest.mark.parametrize(
    ("model", "field", "label"),
    [
        ("billing.ServicePlan", "recurring_fee", "Recurring fee"),
        ("billing.ServicePlan", "setup_fee", "One-time setup fee"),
        ("billing.ServicePlan", "activation_fee", "One-time activation fee"),
        ("billing.ServicePlan", "minimum_amount", "Minimum billing amount per period"),
        ("dids.DidPlan", "monthly_fee", "Monthly fee"),
        ("dids.DidPlan", "setup_fee", "Setup fee"),
    ],
)
def test_a_fee_beyond_the_maximum_is_refused_with_field_value_and_limit(model: str, field: str, label: str) -> None:
    """Attack item 2: a fee the ledger cannot post is refused when the plan is saved (the admin's
    form runs the same model validation), naming the field, the value and the limit; the maximum
    itself is accepted."""
    from django.apps import apps
    from django.contrib import admin

    from tarifa.core.recurring import FEE_MAX

    cls = apps.get_model(model)
    plan = cls(name="Bad", **{field: HUGE})
    with pytest.raises(ValidationError) as caught:
        plan.full_clean()
    assert f"{label} {HUGE} is refused: must be between 0 and {FEE_MAX}" in " ".join(caught.value.message_dict[field])
    cls(name="Max", **{field: FEE_MAX}).full_clean()
    from django.contrib.auth import get_user_model
    from django.test import RequestFactory

    request = RequestFactory().get("/admin/")
    request.user = get_user_model()(username="boss", is_superuser=True, is_staff=True, is_active=True)
    form_class = admin.site._registry[cls].get_form(request)
    form = form_class(data={"name": "Bad", field: str(HUGE)})
    assert not form.is_valid() and f"{label} {HUGE} is refused" in " ".join(form.errors.get(field, [])), form.errors
    assert not cls.objects.filter(name="Bad").exists()


def test_a_virtual_numbers_additional_charge_beyond_the_maximum_is_refused() -> None:
    from tarifa.core.recurring import FEE_MAX
    from tarifa.dids.models import VirtualNumber

    with pytest.raises(ValidationError) as caught:
        VirtualNumber(number="5550100", additional_charge=HUGE).full_clean()
    assert f"Additional monthly charge {HUGE} is refused: must be between 0 and {FEE_MAX}" in " ".join(
        caught.value.message_dict["additional_charge"]
    )
