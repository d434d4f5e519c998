"""Payments in the API: the card gateway's callbacks (webhooks) and the minimal operations on a
customer's money -- add a payment or credit, list its payments and Transactions, its statement
and the aged receivables (docs/payments.md "API").

Who may do what: a token of an operator or a reseller acts on the customers of its subtree (not on
itself); a customer's token reads its own statement and Transactions and pays its own invoices.
A customer outside the token's subtree is 404, as if it did not exist.

The callback endpoint has no token: it is authenticated by the gateway's HMAC signature with a
timestamp tolerance (``core.webhooks``), rate-limited per address in the database, idempotent by
event id, and its values are checked against strict patterns and used only as data (ORM
parameters): nothing in a callback reaches a shell, a template or SQL text.
"""

from __future__ import annotations

import time
from datetime import date
from decimal import Decimal
from typing import Any

from django.http import HttpRequest
from ninja import Query, Router, Schema, Status
from pydantic import field_validator

from tarifa.api.auth import CustomerToken
from tarifa.api.problems import Problem
from tarifa.core.payments import Refused

router = Router(tags=["payments"])

MAX_WEBHOOK_BYTES = 64 * 1024


def _refused(exc: Refused) -> Problem:
    return Problem(
        422, "Unprocessable request", "Some fields were refused.", [{"field": exc.field, "reason": str(exc)}]
    )


# --- callbacks ---------------------------------------------------------------------------------------


class WebhookOut(Schema):
    event: str
    outcome: str
    duplicate: bool


@router.post(
    "/payments/webhooks/{gateway}",
    response={200: WebhookOut},
    summary="A payment gateway's signed callback",
    auth=None,
)
def webhook(request: HttpRequest, gateway: str) -> Any:
    """Signed with ``Tarifa-Signature: t=<unix seconds>,v1=<HMAC-SHA256>`` (docs/payments.md). A wrong
    or stale signature is 401 and nothing is stored; the same event id again is answered 200 with
    ``duplicate: true`` and posts nothing; an amount that differs from Tarifa's record of the charge
    is 422 and nothing is posted."""
    from tarifa.billing.cards import admit_webhook, handle_event
    from tarifa.billing.gateway import WebhookRefused, configured_gateway
    from tarifa.throttle.service import client_address

    address = client_address(request)
    wait = admit_webhook(address)
    if wait:
        raise Problem(429, "Too many requests", f"at most a few callbacks a second per address; retry in {wait} s")
    configured = configured_gateway()
    if configured is None or gateway != configured.name:
        raise Problem(404, "Not found", "No payment gateway of this name is configured")
    declared = request.META.get("CONTENT_LENGTH") or "0"
    if not declared.isdigit() or int(declared) > MAX_WEBHOOK_BYTES:
        raise Problem(413, "Body too large", f"a callback is at most {MAX_WEBHOOK_BYTES} bytes")
    body = request.body
    try:
        event = configured.verify_webhook(request.headers, body, int(time.time()))
    except WebhookRefused as exc:
        raise Problem(exc.status, "Callback refused", str(exc)) from None
    row, duplicate = handle_event(configured.name, event, address)
    if row.outcome == "refused" and not duplicate:
        raise Problem(422, "Callback refused", row.detail)
    return {"event": row.event_id, "outcome": row.outcome, "duplicate": duplicate}


# --- a customer's money ------------------------------------------------------------------------------


def _target(request: HttpRequest, code: str, *, manage: bool) -> Any:
    """The customer ``code`` if the token may see it (404 otherwise); ``manage``: the token must be
    an operator's or a reseller's, acting on a customer below it."""
    from tarifa.customers.choices import CustomerKind
    from tarifa.customers.models import Customer

    viewer = request.auth.customer  # type: ignore[attr-defined]
    # no account code holds a NUL (and PostgreSQL cannot compare text with one): not found
    found = None if "\x00" in code else Customer.objects.filter(viewer.in_subtree(), account_code=code).first()
    if found is None or (manage and found.pk == viewer.pk):
        raise Problem(404, "Not found", f"No customer {code} in this token's view")
    if manage and viewer.kind not in (CustomerKind.OPERATOR, CustomerKind.RESELLER):
        raise Problem(403, "Forbidden", "Adding money needs the token of an operator or a reseller")
    return found


class MoneyIn(Schema):
    kind: str = "payment"
    amount: str
    reference: str
    reason: str = ""
    method: str = ""
    invoice: str | None = None  # an invoice number to allocate to

    @field_validator("kind", "amount", "reference", "reason", "method", "invoice")
    @classmethod
    def _no_nul(cls, value: str | None) -> str | None:
        if value is not None and "\x00" in value:
            raise ValueError("must not contain a NUL character")  # no database text column can hold one
        return value


class TransactionOut(Schema):
    id: int
    created_at: Any
    kind: str
    amount: str
    balance_after: str
    currency: str
    method: str
    reference: str | None
    description: str


def _tx(t: Any) -> dict[str, Any]:
    return {
        "id": t.pk,
        "created_at": t.created_at,
        "kind": t.kind,
        "amount": str(t.amount),
        "balance_after": str(t.balance_after),
        "currency": t.currency,
        "method": t.method,
        "reference": t.reference,
        "description": t.description,
    }


@router.post(
    "/customers/{code}/payments",
    auth=CustomerToken(),
    response={201: TransactionOut},
    summary="Add a payment, credit or refund",
)
def add_payment(request: HttpRequest, code: str, body: MoneyIn) -> Any:
    """Amount as a decimal string (``"25.00"``); refused values are named with their rule (422)."""
    from tarifa.billing.payments import add_money, find_invoice
    from tarifa.core.payments import MoneyRequest, parse_amount

    target = _target(request, code, manage=True)
    if body.kind not in ("payment", "credit", "refund"):
        raise _refused(Refused("kind", body.kind, "must be one of payment, credit, refund"))
    try:
        chosen = find_invoice(target, body.invoice) if body.invoice is not None else None
        request_ = MoneyRequest(
            kind=body.kind,
            amount=parse_amount(body.amount),
            reference=body.reference,
            reason=body.reason,
            method=body.method,
        )
        posted = add_money(target, request_, actor=f"api:{request.auth.name}"[:150], invoice=chosen)  # type: ignore[attr-defined]
    except Refused as exc:
        raise _refused(exc) from None
    return Status(201, _tx(posted))


class Page(Schema):
    limit: int = 100


@router.get(
    "/customers/{code}/transactions", auth=CustomerToken(), response=list[TransactionOut], summary="Transactions"
)
def transactions(request: HttpRequest, code: str, page: Query[Page]) -> Any:
    from tarifa.billing.models import Transaction

    if not 1 <= page.limit <= 1000:
        raise Problem(422, "Unprocessable request", f"limit {page.limit} is refused: must be between 1 and 1000")
    target = _target(request, code, manage=False)
    return [_tx(t) for t in Transaction.objects.filter(customer=target).order_by("-created_at", "-id")[: page.limit]]


class AllocationOut(Schema):
    invoice: str
    amount: str


class PaymentOut(TransactionOut):
    allocations: list[AllocationOut]


@router.get("/customers/{code}/payments", auth=CustomerToken(), response=list[PaymentOut], summary="Payments")
def payments(request: HttpRequest, code: str, page: Query[Page]) -> Any:
    """Payments, credits and refunds, newest first, each with the invoices it was allocated to."""
    from tarifa.billing.models import Transaction

    if not 1 <= page.limit <= 1000:
        raise Problem(422, "Unprocessable request", f"limit {page.limit} is refused: must be between 1 and 1000")
    target = _target(request, code, manage=False)
    rows = (
        Transaction.objects.filter(customer=target, kind__in=("payment", "credit", "refund"))
        .prefetch_related("allocations__invoice")
        .order_by("-created_at", "-id")[: page.limit]
    )
    return [
        {
            **_tx(t),
            "allocations": [{"invoice": a.invoice.number, "amount": str(a.amount)} for a in t.allocations.all()],
        }
        for t in rows
    ]


class StatementFilter(Schema):
    start: date | None = None
    end: date | None = None


class StatementLineOut(Schema):
    id: int
    at: Any
    kind: str
    description: str
    reference: str
    amount: str
    balance: str


class StatementOut(Schema):
    customer: str
    currency: str
    start: date | None
    end: date | None
    opening_balance: str
    lines: list[StatementLineOut]
    closing_balance: str


@router.get("/customers/{code}/statement", auth=CustomerToken(), response=StatementOut, summary="Statement of account")
def statement(request: HttpRequest, code: str, filters: Query[StatementFilter]) -> Any:
    """``start`` and ``end`` are days (YYYY-MM-DD, UTC), both included."""
    from tarifa.billing.statement import statement as read

    target = _target(request, code, manage=False)
    try:
        st = read(target, filters.start, filters.end, fields=("start", "end"))
    except Refused as exc:
        raise _refused(exc) from None
    return {
        "customer": target.account_code,
        "currency": st.currency,
        "start": st.start,
        "end": st.end,
        "opening_balance": str(st.opening),
        "lines": [
            {
                "id": line.row.id,
                "at": line.row.at,
                "kind": line.row.kind,
                "description": line.row.description,
                "reference": line.row.reference,
                "amount": str(line.row.amount),
                "balance": str(line.balance),
            }
            for line in st.lines
        ],
        "closing_balance": str(st.closing),
    }


class AgingOut(Schema):
    customer: str
    company: str
    currency: str
    current: str
    buckets: dict[str, str]
    total: str


class AsOf(Schema):
    as_of: date | None = None


@router.get("/receivables", auth=CustomerToken(), response=list[AgingOut], summary="Aged receivables")
def receivables(request: HttpRequest, filters: Query[AsOf]) -> Any:
    """Unpaid issued invoices of the token's subtree by days past due (0-30, 31-60, 61-90, 90+)."""
    from tarifa.billing.statement import receivables as read
    from tarifa.customers.models import Customer

    viewer = request.auth.customer  # type: ignore[attr-defined]
    rows = read(Customer.objects.filter(viewer.in_subtree()), filters.as_of)
    return [
        {
            "customer": c.account_code,
            "company": c.company,
            "currency": c.currency,
            "current": str(a.current),
            "buckets": {k: str(v) for k, v in a.buckets.items()},
            "total": str(a.total),
        }
        for c, a in rows
    ]


class PayIn(Schema):
    method: int  # a saved method's id
    amount: str | None = None  # optional: checked against the server's figure, never used as the price


class ChargeOut(Schema):
    status: str
    amount: str
    currency: str
    transaction: int | None
    message: str


@router.post(
    "/customers/{code}/invoices/{number}/pay",
    auth=CustomerToken(),
    response={200: ChargeOut, 402: ChargeOut},
    summary="Pay an invoice by card",
)
def pay_invoice(request: HttpRequest, code: str, number: str, body: PayIn) -> Any:
    """Charges the invoice's unpaid amount (read on the server) to a saved method of the customer.
    An ``amount`` that differs from it is refused (422): a client never sets the price."""
    from tarifa.billing.cards import charge_invoice
    from tarifa.billing.gateway import configured_gateway
    from tarifa.billing.models import Invoice, PaymentMethod
    from tarifa.core.payments import parse_amount

    target = _target(request, code, manage=False)
    gateway = configured_gateway()
    if gateway is None:
        raise Problem(503, "No payment gateway", "Card payments are not configured (TARIFA_GATEWAY_URL)")
    try:
        claimed: Decimal | None = parse_amount(body.amount) if body.amount is not None else None
        invoice = (
            None
            if "\x00" in number  # no number holds one; PostgreSQL cannot compare text with it
            else Invoice.objects.filter(customer=target, number=number).values_list("pk", flat=True).first()
        )
        if invoice is None:
            raise Problem(404, "Not found", f"No invoice {number} of {target.account_code}")
        method = PaymentMethod.objects.filter(pk=body.method, customer=target, active=True).first()
        if method is None:
            raise Refused("method", str(body.method), "must be an active saved method of this customer")
        outcome = charge_invoice(target, invoice, method, gateway, claimed)
    except Refused as exc:
        raise _refused(exc) from None
    charge = outcome.charge
    answer = {
        "status": charge.status,
        "amount": str(charge.amount),
        "currency": charge.currency,
        "transaction": charge.transaction_id,
        "message": outcome.message,
    }
    return Status(200 if charge.status == "succeeded" else 402, answer)
