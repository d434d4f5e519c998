"""Payment-gateway callbacks and payment requests under attack (issue 15 "Checks"):

* MagnusBilling CVE-2023-30258: shell metacharacters in every field of a callback -> refused (or
  stored as inert data), no command run, no file created;
* FOSSBilling CVE-2023-3228: a client-sent or callback-sent price -> the server's amount is used or
  the request refused;
* a wrong or stale signature -> 401 and nothing stored; the same event twice -> posted once;
  too many callbacks from one address -> 429; malformed or negative amounts in the manual
  payment API -> 422 naming the field, nothing posted.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from django.test import Client

from tarifa.api.models import ApiToken
from tarifa.billing import cards
from tarifa.billing.gateway import HttpCardGateway
from tarifa.billing.models import GatewayCharge, Invoice, PaymentMethod, Transaction, WebhookEvent, WebhookHit
from tarifa.customers.models import Customer
from tests.fake_gateway import KEY, SECRET, FakeGateway, running
from tests.integration.payments_world import issued, make_payer

pytestmark = pytest.mark.django_db


@pytest.fixture
def payer(tariff, operator):  # type: ignore[no-untyped-def]
    return make_payer(tariff, operator)


D = Decimal
HOOK = "/api/v1/payments/webhooks/http"


@pytest.fixture
def fake(monkeypatch):  # type: ignore[no-untyped-def]
    with running(FakeGateway()) as gateway:
        monkeypatch.setenv("TARIFA_GATEWAY_URL", gateway.url)
        monkeypatch.setenv("TARIFA_GATEWAY_KEY", KEY)
        monkeypatch.setenv("TARIFA_GATEWAY_WEBHOOK_SECRET", SECRET)
        yield gateway


@pytest.fixture
def charge(payer, fake):  # type: ignore[no-untyped-def]
    """A charge Tarifa created and the gateway has named (its answer not yet posted)."""
    method = PaymentMethod.objects.create(customer=payer, gateway="http", token="pm_1", last4="4242", is_default=True)
    made = cards.new_charge(payer, method, D("25"), "topup")
    GatewayCharge.objects.filter(pk=made.pk).update(charge_id="ch_900")
    made.refresh_from_db()
    return made


def _post(body: bytes, headers: dict[str, str], path: str = HOOK, address: str = "203.0.113.9"):  # type: ignore[no-untyped-def]
    return Client().generic("POST", path, body, content_type="application/json", headers=headers, REMOTE_ADDR=address)


def test_a_signed_callback_posts_the_charge_once_even_replayed(charge, fake, payer) -> None:
    body, headers = fake.event("ch_900", "25.00", event_id="evt_1")
    first = _post(body, headers)
    assert first.status_code == 200 and first.json() == {"event": "evt_1", "outcome": "posted", "duplicate": False}
    again = _post(body, headers)  # the same delivery replayed within the tolerance
    assert again.status_code == 200 and again.json()["duplicate"] is True
    later = fake.event("ch_900", "25.00", event_id="evt_2")  # another event about the same charge
    assert _post(*later).json()["outcome"] == "already posted"
    assert Transaction.objects.filter(kind="payment").count() == 1
    payer.refresh_from_db()
    assert payer.balance == D("25") and WebhookEvent.objects.count() == 2


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Tarifa-Signature": "t=1,v1=00"},
        "wrong secret",
        "stale",
    ],
    ids=["none", "garbage", "wrong-secret", "stale"],
)
def test_a_wrong_or_stale_signature_is_401_and_nothing_is_stored(charge, fake, headers) -> None:  # type: ignore[no-untyped-def]
    body, _good = fake.event("ch_900", "25.00")
    if headers == "wrong secret":
        headers = fake.headers(body, secret="not-the-gateway-secret")
    elif headers == "stale":
        headers = fake.headers(body, at=int(time.time()) - 3600)  # a callback captured an hour ago
    answer = _post(body, headers)
    assert answer.status_code == 401 and answer["Content-Type"] == "application/problem+json"
    assert not WebhookEvent.objects.exists() and not Transaction.objects.exists()


INJECTIONS = ["x;touch {f}", "$(touch {f})", "`touch {f}`", "x|touch {f}", "x && touch {f}", "{{{{7*7}}}}' OR 1=1--"]


@pytest.mark.parametrize("payload", INJECTIONS)
def test_shell_metacharacters_in_every_field_run_nothing(charge, fake, payload: str, tmp_path: Path) -> None:
    """CVE-2023-30258 (MagnusBilling): the callback's fields went to a shell. Signed or not, every
    field carrying metacharacters is refused; no file appears, nothing is posted or stored."""
    marker = tmp_path / f"pwned-{uuid.uuid4().hex}"
    evil = payload.format(f=marker)
    doc = {"id": evil, "type": evil, "data": {"charge": evil, "amount": evil, "currency": evil}}
    body = json.dumps(doc).encode()
    unsigned = _post(body, {"Tarifa-Signature": evil, "X-Forwarded-For": evil, "User-Agent": evil})
    assert unsigned.status_code == 401
    signed = _post(body, fake.headers(body))  # even a correctly signed one (a leaked secret)
    assert signed.status_code == 422 and "the callback's event id" in signed.json()["detail"]
    for field in ("charge", "amount", "currency"):  # each field alone
        good = {
            "id": f"evt_{field}",
            "type": "charge.succeeded",
            "data": {"charge": "ch_900", "amount": "25.00", "currency": "USD"},
        }
        good["data"][field] = evil
        body = json.dumps(good).encode()
        assert _post(body, fake.headers(body)).status_code == 422
    bad_path = _post(body, fake.headers(body), path=HOOK.replace("http", "x%3Btouch%20" + marker.name))
    assert bad_path.status_code == 404
    assert not marker.exists() and not list(tmp_path.iterdir())
    assert not WebhookEvent.objects.exists() and not Transaction.objects.exists()


def test_a_callback_with_another_amount_posts_nothing(charge, fake) -> None:
    """CVE-2023-3228 (FOSSBilling) in a callback: Tarifa credits its own record's amount or nothing."""
    body, headers = fake.event("ch_900", "2500.00", event_id="evt_big")
    answer = _post(body, headers)
    assert answer.status_code == 422 and "states 2500.00 USD for a charge of 25" in answer.json()["detail"]
    assert not Transaction.objects.exists()
    assert WebhookEvent.objects.get().outcome == "refused"  # kept as data, so a replay is answered alike
    body, headers = fake.event("ch_unknown", "25.00", event_id="evt_unknown")  # a charge Tarifa never made
    assert _post(body, headers).json()["outcome"] == "ignored" and not Transaction.objects.exists()


def test_too_many_callbacks_from_one_address_are_429(fake, monkeypatch) -> None:
    monkeypatch.setattr(cards, "WEBHOOKS_PER_WINDOW", 3)
    answers = [_post(b"{}", {}, address="198.51.100.7").status_code for _ in range(5)]
    assert answers == [401, 401, 401, 429, 429]
    assert _post(b"{}", {}, address="198.51.100.8").status_code == 401  # another address is not held up
    assert WebhookHit.objects.filter(address="198.51.100.7").count() == 3


# --- the API's payment operations --------------------------------------------------------------------


def _bearer(customer: Customer) -> dict[str, str]:
    _t, raw = ApiToken.issue(f"t-{customer.pk}", customer=customer)
    return {"Authorization": f"Bearer {raw}"}


@pytest.mark.parametrize(
    ("amount", "reason"),
    [
        ("-10", "amount '-10' is refused: a payment must be greater than 0"),
        ("ten", "amount 'ten' is refused: must be a decimal number in plain notation"),
        ("1e9", "amount '1e9' is refused"),
        ("NaN", "amount 'NaN' is refused"),
        ("", "amount (empty) is refused: required"),
    ],
)
def test_the_manual_payment_api_refuses_bad_amounts_by_name(payer, operator, amount: str, reason: str) -> None:
    answer = Client().post(
        f"/api/v1/customers/{payer.account_code}/payments",
        {"amount": amount, "reference": "API-1"},
        content_type="application/json",
        headers=_bearer(operator),
    )
    assert answer.status_code == 422
    (error,) = answer.json()["errors"]
    assert error["field"] == "amount" and reason.lower() in error["reason"].lower()
    assert not Transaction.objects.exists()


def test_the_payment_api_is_for_the_operator_or_reseller_above_the_customer(payer, operator, tariff) -> None:
    url = f"/api/v1/customers/{payer.account_code}/payments"
    body = {"amount": "12.50", "reference": "API-1", "method": "bank"}
    ok = Client().post(url, body, content_type="application/json", headers=_bearer(operator))
    assert ok.status_code == 201 and ok.json()["amount"] == "12.500000" and ok.json()["method"] == "bank"
    # the customer itself may read but not add money
    own = Client().post(url, {**body, "reference": "API-2"}, content_type="application/json", headers=_bearer(payer))
    assert own.status_code == 404
    other = Customer.objects.create(
        parent=operator,
        kind="reseller",
        name="R",
        company="Other reseller",
        web_username="other1",
        tariff=tariff,
        email="r@x.example",
        phone="+12015550123",
        country="US",
    )
    elsewhere = Client().post(
        url, {**body, "reference": "API-3"}, content_type="application/json", headers=_bearer(other)
    )
    assert elsewhere.status_code == 404
    assert Client().get(f"/api/v1/customers/{payer.account_code}/statement", headers=_bearer(other)).status_code == 404
    mine = Client().get(f"/api/v1/customers/{payer.account_code}/statement", headers=_bearer(payer))
    assert mine.status_code == 200 and mine.json()["closing_balance"] == "12.500000"
    assert Transaction.objects.count() == 1


def test_a_far_future_statement_day_is_refused_by_name_not_a_500(payer) -> None:
    """Attack finding 6: ``end=9999-12-31`` overflowed when a day was added (HTTP 500)."""
    url = f"/api/v1/customers/{payer.account_code}/statement"
    response = Client().get(url, {"start": "0001-01-01", "end": "9999-12-31"}, headers=_bearer(payer))
    assert response.status_code == 422
    reasons = [e["reason"] for e in response.json()["errors"]]
    assert reasons == ["Start '0001-01-01' is refused: must be between 2000-01-01 and 2999-12-31"]
    response = Client().get(url, {"end": "9999-12-31"}, headers=_bearer(payer))
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "end"


def test_a_client_sent_price_for_an_invoice_is_refused_and_the_server_amount_is_charged(payer, fake) -> None:
    """CVE-2023-3228 (FOSSBilling): the portal/API payment request carried the price. Here the
    invoice's unpaid amount is read on the server; a different amount is refused, nothing charged."""
    invoice = issued(payer, "INV-9", "40", date(2026, 2, 1))
    method = cards.save_method(payer, HttpCardGateway(fake.url, KEY, SECRET), "tok_visa_4242")
    url = f"/api/v1/customers/{payer.account_code}/invoices/INV-9/pay"
    auth = _bearer(payer)
    for tampered in ("0.01", "-40", "40;touch /tmp/x"):
        answer = Client().post(
            url, {"method": method.pk, "amount": tampered}, content_type="application/json", headers=auth
        )
        assert answer.status_code == 422 and answer.json()["errors"][0]["field"] == "amount"
    assert fake.charges == [] and not Transaction.objects.exists()
    paid = Client().post(url, {"method": method.pk}, content_type="application/json", headers=auth)
    assert paid.status_code == 200 and paid.json()["status"] == "succeeded"
    assert [c["amount"] for c in fake.charges] == ["40.000000"]
    invoice.refresh_from_db()
    assert invoice.status == "paid"
    assert Invoice.objects.get(pk=invoice.pk).allocations.get().amount == D("40")


def test_the_server_front_admits_a_slow_callback_body_by_address_with_a_small_limit() -> None:
    """Under ``tarifa serve`` a body that comes late is admitted before it is read: a callback has no
    token, so it is counted under its address with the callbacks' own size limit (not refused 401)."""
    from tarifa.api.switch_endpoints import admit

    answer, key, limit = admit({"REQUEST_METHOD": "POST", "REMOTE_ADDR": "203.0.113.5"}, HOOK, 64 * 2**20)
    assert (answer, key, limit) == (None, "address 203.0.113.5", 64 * 1024)
    refused, _key, _limit = admit({"REQUEST_METHOD": "POST", "REMOTE_ADDR": "203.0.113.5"}, "/api/v1/receivables", 10)
    assert refused is not None  # the other payment operations still need a token first


def test_paying_an_invoice_again_after_a_time_out_charges_the_card_once(payer, fake) -> None:
    """attack-findings #1: the answer of the first charge is lost to a time-out; paying again (a
    retry, or a second request in parallel) sends the same pending charge with its idempotency key:
    one charge at the gateway, one payment posted, and the first answer says the charge is pending."""
    invoice = issued(payer, "INV-7", "30", date(2026, 2, 1))
    slow = HttpCardGateway(fake.url, KEY, SECRET, timeout_seconds=0.2)  # float-ok: seconds
    method = cards.save_method(payer, slow, "tok_visa_4242")
    fake.delay_seconds = 0.6  # float-ok: seconds; longer than the client's time-out
    first = cards.charge_invoice(payer, invoice.pk, method, slow)
    assert first.charge.status == "pending" and first.posted is None
    fake.delay_seconds = 0
    again = cards.charge_invoice(payer, invoice.pk, method, HttpCardGateway(fake.url, KEY, SECRET))
    assert again.charge.pk == first.charge.pk and again.charge.status == "succeeded"
    assert len(fake.charges) == 1 and GatewayCharge.objects.filter(invoice=invoice).count() == 1
    assert Transaction.objects.filter(kind="payment").count() == 1
    invoice.refresh_from_db()
    assert invoice.status == "paid"
    with pytest.raises(cards.Refused):
        cards.charge_invoice(payer, invoice.pk, method, HttpCardGateway(fake.url, KEY, SECRET))
    assert len(fake.charges) == 1
    assert "the charge is pending" in first.message


@pytest.mark.parametrize("field", ["reason", "invoice", "reference"])
def test_a_nul_character_in_a_payment_body_is_refused_by_name_not_a_500(payer, operator, field: str) -> None:
    """PostgreSQL cannot hold or compare text with a NUL: a reason or invoice number carrying one
    reached the database and became a 500 (the reference was refused as not printable)."""
    body = {"kind": "credit", "amount": "5", "reference": "API-NUL", "reason": "goodwill", field: "a\x00b"}
    answer = Client().post(
        f"/api/v1/customers/{payer.account_code}/payments",
        body,
        content_type="application/json",
        headers=_bearer(operator),
    )
    assert answer.status_code == 422
    (error,) = answer.json()["errors"]
    assert error["field"] == field and "NUL" in error["reason"]
    assert not Transaction.objects.exists()


@pytest.mark.parametrize("path", ["statement", "payments", "transactions"])
def test_a_nul_character_in_a_customer_code_is_404_not_a_500(payer, path: str) -> None:
    answer = Client().get(f"/api/v1/customers/{payer.account_code}%00/{path}", headers=_bearer(payer))
    assert answer.status_code == 404


def test_a_nul_character_in_an_invoice_number_to_pay_is_404_not_a_500(payer, fake) -> None:
    method = cards.save_method(payer, HttpCardGateway(fake.url, KEY, SECRET), "tok_visa_4242")
    url = f"/api/v1/customers/{payer.account_code}/invoices/INV%00/pay"
    answer = Client().post(url, {"method": method.pk}, content_type="application/json", headers=_bearer(payer))
    assert answer.status_code == 404 and fake.charges == []
