"""Card payments through the HTTP gateway adapter against the fake gateway on loopback: saved
methods (tokens only), automatic top-up with its back-off, time-outs retried with the same
idempotency key, and callbacks that post nothing a second time."""

from __future__ import annotations

import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from tarifa.billing import cards
from tarifa.billing.gateway import GatewayError, HttpCardGateway
from tarifa.billing.models import AutoTopUp, GatewayCharge, PaymentMethod, Transaction
from tarifa.billing.signals import payment_received
from tarifa.customers.models import Customer
from tarifa.services.topup import run_topups
from tests.fake_gateway import KEY, SECRET, FakeGateway, running

pytestmark = pytest.mark.django_db
D = Decimal


@pytest.fixture
def fake():  # type: ignore[no-untyped-def]
    with running(FakeGateway()) as gateway:
        yield gateway


@pytest.fixture
def gateway(fake):  # type: ignore[no-untyped-def]
    return HttpCardGateway(fake.url, KEY, SECRET, timeout_seconds=2)


@pytest.fixture
def prepaid(tariff, operator):  # type: ignore[no-untyped-def]
    return Customer.objects.create(
        parent=operator,
        name="Pre Paid",
        company="Prepaid Ltd",
        web_username="prepaid1",
        tariff=tariff,
        email="pre@x.example",
        phone="+12015550123",
        country="US",
        billing_type="prepaid",
    )


@pytest.fixture
def card(prepaid, gateway):  # type: ignore[no-untyped-def]
    return cards.save_method(prepaid, gateway, "tok_visa_4242")


def test_a_saved_method_keeps_the_gateway_token_only(prepaid, card, fake) -> None:
    stored = PaymentMethod.objects.get(customer=prepaid)
    assert (stored.token, stored.brand, stored.last4, stored.expiry_month, stored.expiry_year, stored.is_default) == (
        card.token,
        "visa",
        "4242",
        12,
        2030,
        True,
    )
    assert stored.token.startswith("pm_")
    # what Tarifa sent: the browser's one-time details token, never a card number
    assert fake.bodies == [b'{"customer": "' + prepaid.account_code.encode() + b'", "details_token": "tok_visa_4242"}']


def test_automatic_top_up_charges_once_below_the_threshold(
    prepaid, card, gateway, fake, django_capture_on_commit_callbacks
) -> None:
    AutoTopUp.objects.create(customer=prepaid, threshold=D("5"), amount=D("20"))
    got = []
    payment_received.connect(receiver := lambda sender, transaction, **kw: got.append(transaction.pk))  # type: ignore[misc]
    try:
        with django_capture_on_commit_callbacks(execute=True):
            result = run_topups(gateway=gateway)
    finally:
        payment_received.disconnect(receiver)
    assert (result.charged, result.amount, result.declined, result.failed) == (1, D("20"), 0, [])
    prepaid.refresh_from_db()
    assert prepaid.balance == D("20")
    (charge,) = fake.charges
    posted = Transaction.objects.get(kind="payment")
    assert posted.reference == f"http:{charge['id']}" and posted.method == "card" and got == [posted.pk]
    assert charge["method"] == card.token and charge["key"].startswith(f"topup-{prepaid.pk}-")
    # above the threshold now: the next sweep charges nothing
    assert run_topups(gateway=gateway).charged == 0 and len(fake.charges) == 1


def test_a_decline_waits_before_the_next_attempt_no_charge_storm(prepaid, card, gateway, fake) -> None:
    setting = AutoTopUp.objects.create(customer=prepaid, threshold=D("5"), amount=D("20"))
    fake.decline = True
    now = timezone.now()
    result = run_topups(now=now, gateway=gateway)
    assert result.declined == 1 and result.charged == 0
    setting.refresh_from_db()
    assert setting.declines == 1 and setting.next_attempt_at == now + timedelta(hours=1)
    assert "declined" in setting.last_error
    sent = len(fake.requests)
    for minutes in (1, 10, 59):  # the worker sweeps every minute: the gateway hears nothing
        run_topups(now=now + timedelta(minutes=minutes), gateway=gateway)
    assert len(fake.requests) == sent
    run_topups(now=now + timedelta(minutes=61), gateway=gateway)
    setting.refresh_from_db()
    assert len(fake.requests) == sent + 1 and setting.declines == 2
    assert setting.next_attempt_at == now + timedelta(minutes=61) + timedelta(hours=2)
    fake.decline = False
    assert run_topups(now=now + timedelta(hours=4), gateway=gateway).charged == 1
    setting.refresh_from_db()
    assert setting.declines == 0 and setting.next_attempt_at is None
    assert GatewayCharge.objects.filter(status="declined").count() == 2


def test_a_time_out_is_sent_again_with_the_same_key_and_charged_once(prepaid, card, fake) -> None:
    AutoTopUp.objects.create(customer=prepaid, threshold=D("5"), amount=D("20"))
    impatient = HttpCardGateway(fake.url, KEY, SECRET, timeout_seconds=0.3)  # float-ok: seconds
    fake.delay_seconds = 0.6  # float-ok: seconds
    now = timezone.now()
    result = run_topups(now=now, gateway=impatient)
    assert result.charged == 0 and "did not answer POST /charges within 0.3 s" in result.failed[0][1]
    pending = GatewayCharge.objects.get()
    assert pending.status == "pending" and not Transaction.objects.exists()
    fake.delay_seconds = 0
    for _ in range(100):  # the gateway finishes the charge Tarifa stopped waiting for
        if fake.charges:
            break
        time.sleep(0.05)  # float-ok: seconds
    assert run_topups(now=now + timedelta(hours=2), gateway=impatient).charged == 1
    keys = [headers.get("Idempotency-Key") for _m, path, headers in fake.requests if path == "/v1/charges"]
    assert keys == [pending.idempotency_key, pending.idempotency_key]
    assert len(fake.charges) == 1 and Transaction.objects.filter(kind="payment").count() == 1


def test_a_lying_gateway_amount_is_not_posted(prepaid, card, gateway, fake) -> None:
    fake.confirm_amount = "2000.00"
    charge = cards.new_charge(prepaid, card, D("20"), "topup")
    outcome = cards.send_charge(charge, gateway)
    assert outcome.posted is None and outcome.charge.status == "failed"
    assert "the gateway confirmed 2000.00 USD for a charge of 20" in outcome.message
    assert not Transaction.objects.exists()


def test_errors_are_clear_and_never_show_the_key(fake, card) -> None:
    wrong = HttpCardGateway(fake.url, "sk_wrong_key_value", SECRET)
    with pytest.raises(GatewayError) as refused:
        wrong.charge(card.token, D("1"), "USD", "k-1")
    assert "refused Tarifa's key (HTTP 401)" in str(refused.value) and "sk_wrong" not in str(refused.value)
    assert "sk_wrong" not in repr(wrong)
    nowhere = HttpCardGateway("http://127.0.0.1:9/v1", KEY, SECRET, timeout_seconds=1)
    with pytest.raises(GatewayError, match="the gateway cannot be reached"):
        nowhere.charge(card.token, D("1"), "USD", "k-2")
