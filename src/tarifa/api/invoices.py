"""Invoices in the API: run the invoices of ended periods (operator only), list and read the
invoices of the token's customer subtree (another customer's invoice is a 404, never a 403), and
download one as PDF or CSV (the renderer of :mod:`tarifa.billing.render`, loaded when asked)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import Query, Router, Schema

from tarifa.api.auth import CustomerToken
from tarifa.api.problems import Problem

router = Router(tags=["invoices"])
MAX_PAGE = 500


class RunBody(Schema):
    period: str | None = None  # YYYY-MM or YYYY-MM-DD..YYYY-MM-DD; none: each customer's last ended period
    customer: str | None = None  # account code or web user name


class RunResultOut(Schema):
    issued: list[str]
    already_invoiced: int
    without_charges: int
    customer_periods: int
    totals: dict[str, str]
    summary: str


class LineOut(Schema):
    section: str
    description: str
    calls: int | None
    seconds: int | None
    location: str
    quantity: Decimal
    unit_price: Decimal
    amount: Decimal


class InvoiceOut(Schema):
    number: str
    kind: str
    customer: str  # account code
    issuer: str | None  # the reseller's account code; none: the operator
    credited_invoice: str | None
    period_start: date
    period_end: date
    issued_at: datetime | None
    due_date: date | None
    status: str
    currency: str
    subtotal: Decimal
    discount: Decimal
    penalty: Decimal
    tax: Decimal
    total: Decimal


class InvoiceDetail(InvoiceOut):
    lines: list[LineOut]


class ListFilter(Schema):
    limit: int = 100
    offset: int = 0


def _out(inv: Any) -> dict[str, Any]:
    return {
        "number": inv.number,
        "kind": inv.kind,
        "customer": inv.customer.account_code,
        "issuer": inv.issuer.account_code if inv.issuer_id else None,
        "credited_invoice": inv.credited_invoice.number if inv.credited_invoice_id else None,
        **{
            f: getattr(inv, f)
            for f in (
                "period_start",
                "period_end",
                "issued_at",
                "due_date",
                "status",
                "currency",
                "subtotal",
                "discount",
                "penalty",
                "tax",
                "total",
            )
        },
    }


def _visible(request: HttpRequest) -> Any:
    from tarifa.billing.models import Invoice

    customer = request.auth.customer  # type: ignore[attr-defined]
    return Invoice.objects.filter(customer.in_subtree("customer")).select_related(
        "customer", "issuer", "credited_invoice"
    )


def _one(request: HttpRequest, number: str) -> Any:
    found = _visible(request).filter(number=number).first()
    if found is None:
        raise Problem(404, "Not found", f"No invoice {number!r} among this token's customers")
    return found


@router.post("/invoices/run", auth=CustomerToken(), response=RunResultOut, summary="Run the invoices of ended periods")
def run(request: HttpRequest, body: RunBody) -> dict[str, Any]:
    """Issue one invoice per customer and ended period that has none yet (as ``tarifa invoice run``).
    Only the operator's token may; a period that has not ended is refused (422) and nothing is issued."""
    from tarifa.core.invoicing import parse_period
    from tarifa.customers.choices import CustomerKind
    from tarifa.services.invoicing import run_invoices

    if request.auth.customer.kind != CustomerKind.OPERATOR:  # type: ignore[attr-defined]
        raise Problem(403, "Forbidden", "Only the operator's token runs invoices")
    try:
        wanted = parse_period(body.period) if body.period else None
        result = run_invoices(period=wanted, customer=body.customer or None)
    except ValueError as exc:
        field = "period" if "Period" in str(exc) else "customer"
        raise Problem(422, "Unprocessable", str(exc), errors=[{"field": field, "detail": str(exc)}]) from None
    return {
        "issued": result.issued,
        "already_invoiced": result.already,
        "without_charges": result.empty,
        "customer_periods": result.customers,
        "totals": {cur: str(t) for cur, t in result.totals.items()},
        "summary": result.summary(),
    }


@router.get("/invoices", auth=CustomerToken(), response=list[InvoiceOut], summary="List invoices")
def list_invoices(request: HttpRequest, page: Query[ListFilter]) -> list[dict[str, Any]]:
    """The invoices and credit notes of the token's customer and those below it, newest period first."""
    if not 1 <= page.limit <= MAX_PAGE or page.offset < 0:
        raise Problem(
            422,
            "Unprocessable",
            f"limit {page.limit} / offset {page.offset} is refused: limit 1-{MAX_PAGE}, offset >= 0",
        )
    rows = _visible(request).order_by("-period_start", "number")[page.offset : page.offset + page.limit]
    return [_out(inv) for inv in rows]


@router.get("/invoices/{number}", auth=CustomerToken(), response=InvoiceDetail, summary="Read an invoice")
def get_invoice(request: HttpRequest, number: str) -> dict[str, Any]:
    inv = _one(request, number)
    lines = [{f: getattr(line, f) for f in LineOut.model_fields} for line in inv.lines.order_by("id")]
    return _out(inv) | {"lines": lines}


def _download(request: HttpRequest, number: str, fmt: str) -> HttpResponse:
    """The invoice as ``fmt``: the stored PDF (rendered and stored on first need), or CSV rendered
    on demand (the renderer and reportlab are imported on the first download, not when the API starts)."""
    from tarifa.billing.pdfs import stored_pdf
    from tarifa.billing.render import invoice_csv

    render, content_type = {
        "pdf": (stored_pdf, "application/pdf"),
        "csv": (invoice_csv, "text/csv; charset=utf-8"),
    }[fmt]
    inv = _one(request, number)
    response = HttpResponse(render(inv), content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{inv.number}.{fmt}"'
    return response


@router.get("/invoices/{number}/pdf", auth=CustomerToken(), summary="Download an invoice as PDF")
def invoice_pdf(request: HttpRequest, number: str) -> HttpResponse:
    return _download(request, number, "pdf")


@router.get("/invoices/{number}/csv", auth=CustomerToken(), summary="Download an invoice as CSV")
def invoice_csv(request: HttpRequest, number: str) -> HttpResponse:
    return _download(request, number, "csv")
