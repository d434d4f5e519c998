"""Card payments through the gateway (:mod:`tarifa.billing.gateway`): saving a method, charging
it, posting what the gateway confirmed, and the gateway's callbacks.

Every charge is first written as a ``pending`` :class:`GatewayCharge` (Tarifa's own record: the
customer, the amount, the currency, the idempotency key) and committed; only then is the gateway
called. What the gateway confirms is posted once: the PAYMENT Transaction's reference is
``<gateway>:<charge id>``, unique in the ledger, so the synchronous answer and the callback of the
same charge post one Transaction between them. A callback credits only a charge Tarifa created,
and only the amount and currency of Tarifa's record: an amount sent by a client or altered in a
callback is refused, never posted.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone

from tarifa.billing import allocation, ledger
from tarifa.billing.choices import TransactionKind
from tarifa.billing.gateway import ChargeResult, Event, GatewayError, PaymentGateway
from tarifa.billing.models import GatewayCharge, Invoice, PaymentMethod, Transaction, WebhookEvent
from tarifa.billing.signals import money_added, payment_received
from tarifa.core.payments import MONEY_MAX, Refused
from tarifa.customers.models import Customer

__all__ = [
    "ChargeOutcome",
    "charge_invoice",
    "handle_event",
    "new_charge",
    "post_confirmed",
    "save_method",
    "send_charge",
]

Status = GatewayCharge.Status


def save_method(
    customer: Customer, gateway: PaymentGateway, details_token: str, *, default: bool = True
) -> PaymentMethod:
    """Exchange the browser's card-details token for a saved method (token, brand, last four, expiry)."""
    saved = gateway.save_method(customer.account_code, details_token)
    with transaction.atomic():
        if default:
            PaymentMethod.objects.filter(customer=customer, is_default=True).update(is_default=False)
        return PaymentMethod.objects.create(
            customer=customer,
            gateway=gateway.name,
            token=saved.token,
            brand=saved.brand,
            last4=saved.last4,
            expiry_month=saved.expiry_month,
            expiry_year=saved.expiry_year,
            is_default=default,
        )


def default_method(customer_id: int) -> PaymentMethod | None:
    return PaymentMethod.objects.filter(customer_id=customer_id, active=True).order_by("-is_default", "id").first()


def new_charge(
    customer: Customer, method: PaymentMethod, amount: Decimal, purpose: str, invoice: Invoice | None = None
) -> GatewayCharge:
    """Tarifa's record of a charge about to be sent (committed before the gateway is called)."""
    if not amount.is_finite() or amount <= 0 or amount > MONEY_MAX:
        raise Refused("amount", format(amount, "f"), "a card charge must be greater than 0")
    if method.customer_id != customer.pk or not method.active:
        raise Refused("method", str(method), "must be an active saved method of this customer")
    return GatewayCharge.objects.create(
        customer=customer,
        method=method,
        gateway=method.gateway,
        purpose=purpose,
        invoice=invoice,
        idempotency_key=f"{purpose}-{customer.pk}-{secrets.token_hex(8)}",
        amount=amount,
        currency=customer.currency,
    )


@dataclass(frozen=True, slots=True)
class ChargeOutcome:
    charge: GatewayCharge
    posted: Transaction | None
    message: str = ""


def send_charge(charge: GatewayCharge, gateway: PaymentGateway) -> ChargeOutcome:
    """Send (or send again, with the same idempotency key) a pending charge and record the answer.
    A :class:`GatewayError` leaves the charge pending (it may exist at the gateway) and is returned
    as the outcome's message."""
    method = charge.method
    if method is None:
        GatewayCharge.objects.filter(pk=charge.pk).update(status=Status.FAILED, message="the saved method was removed")
        charge.refresh_from_db()
        return ChargeOutcome(charge, None, charge.message)
    try:
        result = gateway.charge(method.token, charge.amount, charge.currency, charge.idempotency_key)
    except GatewayError as exc:
        GatewayCharge.objects.filter(pk=charge.pk).update(message=str(exc)[:200], updated_at=timezone.now())
        charge.refresh_from_db()
        return ChargeOutcome(charge, None, str(exc))
    return record_result(charge, result)


def record_result(charge: GatewayCharge, result: ChargeResult) -> ChargeOutcome:
    if result.amount != charge.amount or result.currency != charge.currency:
        message = (
            f"the gateway confirmed {result.amount} {result.currency} for a charge of {charge.amount} "
            f"{charge.currency}: not posted, check it at the gateway"
        )
        _update(charge, status=Status.FAILED, charge_id=result.charge_id, message=message[:200])
        return ChargeOutcome(charge, None, message)
    if not result.succeeded:
        _update(charge, status=Status.DECLINED, charge_id=result.charge_id, message=result.message[:200] or "declined")
        return ChargeOutcome(charge, None, charge.message)
    posted = post_confirmed(charge, result.charge_id)
    return ChargeOutcome(charge, posted)


def _update(charge: GatewayCharge, **values: object) -> None:
    try:
        GatewayCharge.objects.filter(pk=charge.pk).update(updated_at=timezone.now(), **values)
    except IntegrityError:  # the charge id already names another record: keep this one's own
        values.pop("charge_id", None)
        GatewayCharge.objects.filter(pk=charge.pk).update(updated_at=timezone.now(), **values)
    charge.refresh_from_db()


def reference_of(charge: GatewayCharge, charge_id: str) -> str:
    return f"{charge.gateway}:{charge_id}"[:100]


def post_confirmed(charge: GatewayCharge, charge_id: str) -> Transaction | None:
    """Post the PAYMENT of a charge the gateway confirmed: Tarifa's amount, once (None when it was
    posted already, by the answer or by a callback)."""
    reference = reference_of(charge, charge_id)
    posted: Transaction | None = None
    try:
        with transaction.atomic():
            locked = GatewayCharge.objects.select_for_update().get(pk=charge.pk)
            if locked.transaction_id is None and not Transaction.objects.filter(reference=reference).exists():
                ledger.post(
                    [
                        ledger.Posting(
                            customer_id=locked.customer_id,
                            amount=locked.amount,
                            kind=TransactionKind.PAYMENT,
                            reference=reference,
                            description=f"Card payment ({locked.purpose})",
                            actor=f"gateway:{locked.gateway}"[:150],
                            method="card",
                        )
                    ]
                )
                posted = Transaction.objects.get(reference=reference)
                allocation.allocate_new_money(locked.customer_id, locked.invoice_id)
                done = posted
                transaction.on_commit(lambda: payment_received.send(sender=Transaction, transaction=done))
            GatewayCharge.objects.filter(pk=charge.pk).update(
                status=Status.SUCCEEDED,
                charge_id=charge_id,
                transaction=posted or locked.transaction or Transaction.objects.filter(reference=reference).first(),
                message="",
                updated_at=timezone.now(),
            )
    except IntegrityError:  # the same reference posted at the same moment by the callback
        posted = None
    charge.refresh_from_db()
    if posted is not None:
        money_added.send(sender=Transaction, customer_id=charge.customer_id)
    return posted


def charge_invoice(
    customer: Customer,
    invoice_id: int,
    method: PaymentMethod,
    gateway: PaymentGateway,
    claimed_amount: Decimal | None = None,
) -> ChargeOutcome:
    """Pay an issued invoice by card: the amount is the invoice's unpaid amount, read here. An
    amount sent by the client (the portal's or the API's request) that differs is refused, never
    charged (FOSSBilling CVE-2023-3228 trusted a client's price).

    Exactly once: under the invoice's row lock, a charge of this invoice still ``pending`` (sent
    earlier, its answer lost to a time-out, or in flight in a parallel request) is sent again with
    its own idempotency key instead of a new charge, so the gateway charges the card once and the
    payment is posted once."""
    with transaction.atomic():
        invoice = (
            Invoice.objects.select_for_update()
            .filter(pk=invoice_id, customer=customer, kind="invoice", status="issued")
            .first()
        )
        if invoice is None:
            raise Refused("invoice", str(invoice_id), "must be an issued, unpaid invoice of this customer")
        pending = (
            GatewayCharge.objects.filter(invoice=invoice, purpose="invoice", status=Status.PENDING)
            .order_by("pk")
            .first()
        )
        if pending is None:
            unpaid = invoice.total - allocation.allocated_by_invoice([invoice.pk]).get(invoice.pk, Decimal(0))
            if unpaid <= 0:
                raise Refused("invoice", invoice.number, "has nothing left to pay")
        else:
            unpaid = pending.amount
        if claimed_amount is not None and claimed_amount != unpaid:
            raise Refused(
                "amount",
                format(claimed_amount, "f"),
                f"must be the invoice's unpaid amount {unpaid} "
                "(the server's figure; a different price is never charged)",
            )
        charge = pending if pending is not None else new_charge(customer, method, unpaid, "invoice", invoice)
    outcome = send_charge(charge, gateway)
    if outcome.charge.status == Status.PENDING:
        return ChargeOutcome(
            outcome.charge,
            None,
            f"the charge is pending: {outcome.message} -- paying again sends the same charge, "
            "the card is charged at most once",
        )
    return outcome


def handle_event(gateway_name: str, event: Event, source_address: str) -> tuple[WebhookEvent, bool]:
    """A verified callback, stored once per event id (its ``outcome`` says what it did), and
    whether it is a repeat: the same event again returns the stored row and posts nothing."""
    try:
        # One transaction: the row, the posting and the outcome together; a failure leaves no row,
        # so the gateway's next delivery of the event tries again.
        with transaction.atomic():
            row = WebhookEvent.objects.create(
                gateway=gateway_name,
                event_id=event.id,
                kind=event.kind,
                charge_id=event.charge_id,
                outcome="received",
                source_address=source_address[:150],
            )
            outcome, detail = _apply(gateway_name, event)
            WebhookEvent.objects.filter(pk=row.pk).update(outcome=outcome, detail=detail[:300])
    except IntegrityError:
        stored = WebhookEvent.objects.filter(gateway=gateway_name, event_id=event.id).first()
        if stored is None:
            raise
        return stored, True
    row.refresh_from_db()
    return row, False


def _apply(gateway_name: str, event: Event) -> tuple[str, str]:
    charge = GatewayCharge.objects.filter(gateway=gateway_name, charge_id=event.charge_id).first()
    if charge is None:
        return "ignored", "no charge Tarifa created has this charge id; nothing posted"
    if event.amount != charge.amount or event.currency != charge.currency:
        return "refused", (
            f"the callback states {event.amount} {event.currency} for a charge of {charge.amount} {charge.currency}; "
            "nothing posted (Tarifa credits only its own record's amount)"
        )
    if event.kind == "charge.succeeded":
        posted = post_confirmed(charge, event.charge_id)
        return ("posted", f"transaction {posted.pk}") if posted else ("already posted", "")
    if event.kind == "charge.failed":
        if charge.status == Status.PENDING:
            _update(charge, status=Status.DECLINED, message="declined (callback)")
        return "noted", "charge declined"
    return "ignored", f"event type {event.kind} needs no action"


#: callbacks one address may send in a window (the gateway sends a few per payment)
WEBHOOKS_PER_WINDOW = 120
WEBHOOK_WINDOW_SECONDS = 60


def admit_webhook(address: str) -> int:
    """Count a callback request from ``address`` (in the database: every process shares the count)
    and return 0 when it may go on, or the seconds to wait when the address sent more than
    :data:`WEBHOOKS_PER_WINDOW` in the last :data:`WEBHOOK_WINDOW_SECONDS` (answered 429)."""
    from datetime import timedelta

    from tarifa.billing.models import WebhookHit

    now = timezone.now()
    since = now - timedelta(seconds=WEBHOOK_WINDOW_SECONDS)
    with transaction.atomic():
        WebhookHit.objects.filter(at__lte=since).delete()
        recent = WebhookHit.objects.filter(address=address[:150], at__gt=since).count()
        if recent >= WEBHOOKS_PER_WINDOW:
            return WEBHOOK_WINDOW_SECONDS
        WebhookHit.objects.create(address=address[:150], at=now)
    return 0
