"""A realistic invoice for the documentation, the benchmark and the tests: an operator with its
profile and logo, a customer, and an issued invoice with calls to many destinations (enough to
span pages), fees, usage by location, a discount, a penalty and a tax.

Writes to whatever database Django is configured with: ``tarifa invoice-sample`` points it at a
throwaway SQLite file first (:mod:`tarifa.billing.sample_commands`).
"""

from __future__ import annotations

import io
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal

from tarifa.billing.models import Invoice, InvoiceLine
from tarifa.core.invoices import InvoiceKind, InvoiceStatus, LineSection
from tarifa.customers.models import Customer, IssuerProfile
from tarifa.rating.models import Tariff

__all__ = ["DESTINATIONS", "sample_customer", "sample_invoice", "sample_logo", "sample_operator"]

DESTINATIONS = (
    "Germany mobile",
    "Germany fixed",
    "United Kingdom mobile",
    "United Kingdom London",
    "France mobile",
    "France fixed",
    "Spain mobile",
    "Italy mobile",
    "Netherlands mobile",
    "Poland mobile",
    "Russia Moscow",
    "Ukraine mobile",
    "Turkey mobile",
    "United States",
    "Canada",
    "Mexico mobile",
    "Brazil São Paulo",
    "Argentina Buenos Aires",
    "India mobile",
    "Pakistan mobile",
    "Bangladesh mobile",
    "Philippines mobile",
    "Vietnam mobile",
    "China mobile",
    "Japan Tokyo",
    "South Korea mobile",
    "Australia mobile",
    "Nigeria mobile",
    "Kenya mobile",
    "South Africa mobile",
    "Egypt mobile",
    "Morocco mobile",
)


def sample_logo(width: int = 360, height: int = 110) -> bytes:
    """A small PNG logo drawn with Pillow (reportlab's own dependency): deterministic bytes."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    h = height
    draw.rounded_rectangle((4, 4, h - 4, h - 4), radius=h // 6, fill=(20, 84, 160))
    for n in range(3):
        inset = h * (20 + n * 13) // 110
        draw.arc((inset, inset, h - inset, h - inset), 200, 340, fill="white", width=max(2, h // 18))
    draw.rectangle((h + 12, h * 30 // 110, width - 10, h * 44 // 110), fill=(20, 84, 160))
    draw.rectangle((h + 12, h * 58 // 110, width - width // 5, h * 70 // 110), fill=(120, 140, 170))
    out = io.BytesIO()
    image.save(out, "PNG", optimize=True)
    return out.getvalue()


def sample_operator(tariff: Tariff | None = None) -> Customer:
    """The operator customer and its issuer profile (with a logo)."""
    tariff = tariff or Tariff.objects.create(name="Sample retail")
    operator = Customer.objects.create(
        kind="operator",
        name="Billing desk",
        company="Nordlicht Telecom",
        web_username="nordlicht",
        tariff=tariff,
        email="billing@nordlicht.example",
        phone="+4930901820",
        country="DE",
        address="Friedrichstraße 68\n10117 Berlin\nGermany",
    )
    IssuerProfile.objects.update_or_create(
        pk=1,
        defaults={
            "name": "Nordlicht Telecom GmbH",
            "address": "Friedrichstraße 68\n10117 Berlin\nGermany",
            "tax_id": "DE 123 456 789",
            "email": "billing@nordlicht.example",
            "phone": "+49 30 901820",
            "website": "www.nordlicht.example",
            "payment_instructions": "Bank transfer to Nordlicht Telecom GmbH, IBAN DE89 3704 0044 0532 0130 00, "
            "BIC COBADEFFXXX. Card payments: customer portal, Invoices.",
            "logo": sample_logo(),
            "logo_type": "image/png",
        },
    )
    return operator


def sample_customer(
    parent: Customer, company: str = "Café Łódź Callcenter Sp. z o.o.", account_code: str = ""
) -> Customer:
    """A Polish customer of ``parent`` (account code generated unless given: the docs' sample fixes it)."""
    return Customer.objects.create(
        account_code=account_code,
        name="Zofia Wiśniewska",
        company=company,
        web_username=f"sample{Customer.objects.count()}",
        parent=parent,
        tariff=parent.tariff,
        currency="EUR",
        billing_decimals=2,  # the sample's amounts are in cents: shown as the customer is billed
        billing_type="postpaid",
        email="zofia@lodz.example",
        phone="+48422000000",
        country="PL",
        address="ul. Piotrkowska 104\n90-926 Łódź",
        pin="90-926",
    )


def _cents(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def sample_invoice(
    customer: Customer,
    number: str = "NT-2026-000123",
    destinations: int = 48,
    issuer: Customer | None = None,
    period: tuple[date, date] = (date(2026, 11, 1), date(2026, 11, 30)),
) -> Invoice:
    """An issued invoice with ``destinations`` calls lines (48 make the table span two pages)."""
    invoice = Invoice.objects.create(
        customer=customer,
        issuer=issuer,
        number=number,
        period_start=period[0],
        period_end=period[1],
        issued_at=datetime(period[1].year, period[1].month, period[1].day, 23, 0, tzinfo=UTC),
        due_date=date(2026, 12, 30),
        currency=customer.currency,
        status=InvoiceStatus.DRAFT,
    )
    lines: list[InvoiceLine] = []
    for n in range(destinations):
        name = DESTINATIONS[n % len(DESTINATIONS)]
        if n >= len(DESTINATIONS):
            name = f"{name} (premium {n // len(DESTINATIONS)})"
        calls = 7 + (n * 37) % 400
        seconds = calls * (45 + (n * 13) % 180)
        price = Decimal("0.0095") + Decimal(n % 9) * Decimal("0.0125")
        amount = _cents(Decimal(seconds) / 60 * price)
        lines.append(
            InvoiceLine(
                section=LineSection.CALLS,
                description=name,
                calls=calls,
                seconds=seconds,
                quantity=Decimal(1),
                unit_price=amount,
                amount=amount,
            )
        )
    fees = [
        ("SIP trunk, 30 channels — monthly fee", Decimal(1), Decimal("149.00")),
        ("DID numbers +48 42 …, monthly rental", Decimal(12), Decimal("1.50")),
        ("Number porting, one-time fee", Decimal(1), Decimal("25.00")),
    ]
    for description, quantity, unit in fees:
        lines.append(
            InvoiceLine(
                section=LineSection.SERVICES,
                description=description,
                quantity=quantity,
                unit_price=unit,
                amount=quantity * unit,
            )
        )
    usage = (("Łódź office", 5120, 812_400, Decimal("312.40")), ("Warsaw desk", 880, 91_260, Decimal("41.10")))
    for location, calls, seconds, amount in usage:
        lines.append(
            InvoiceLine(
                section=LineSection.USAGE,
                description="Usage",
                location=location,
                calls=calls,
                seconds=seconds,
                quantity=Decimal(1),
                unit_price=amount,
                amount=amount,
            )
        )
    subtotal = sum((line.amount for line in lines if line.section != LineSection.USAGE), Decimal(0))
    discount = _cents(subtotal * Decimal("0.05"))
    penalty = Decimal("7.50")
    lines.append(
        InvoiceLine(
            section=LineSection.DISCOUNT,
            description="Volume discount 5 %",
            quantity=Decimal(1),
            unit_price=-discount,
            amount=-discount,
        )
    )
    lines.append(
        InvoiceLine(
            section=LineSection.PENALTY,
            description="Late payment fee, invoice NT-2026-000098",
            quantity=Decimal(1),
            unit_price=penalty,
            amount=penalty,
        )
    )
    base = subtotal - discount + penalty
    tax = _cents(base * Decimal("0.23"))
    lines.append(
        InvoiceLine(
            section=LineSection.TAX,
            description="VAT",
            quantity=Decimal(1),
            unit_price=tax,
            amount=tax,
            tax_rate=Decimal(23),
            tax_base=base,
        )
    )
    for line in lines:
        line.invoice = invoice
    InvoiceLine.objects.bulk_create(lines)
    Invoice.objects.filter(pk=invoice.pk).update(
        subtotal=subtotal,
        discount=discount,
        penalty=penalty,
        tax=tax,
        total=subtotal - discount + penalty + tax,
        status=InvoiceStatus.ISSUED,
    )
    invoice.refresh_from_db()
    return invoice


def sample_credit_note(invoice: Invoice, number: str = "NT-2026-CN-0007") -> Invoice:
    """A credit note correcting ``invoice``: one adjustment line."""
    amount = Decimal("40.00")
    note = Invoice.objects.create(
        customer=invoice.customer,
        issuer=invoice.issuer,
        kind=InvoiceKind.CREDIT_NOTE,
        credited_invoice=invoice,
        number=number,
        period_start=invoice.period_start,
        period_end=invoice.period_end,
        issued_at=invoice.issued_at,
        currency=invoice.currency,
        subtotal=amount,
        total=amount,
    )
    InvoiceLine.objects.create(
        invoice=note,
        section=LineSection.ADJUSTMENT,
        description="Calls to Germany mobile charged twice on 12 November",
        quantity=Decimal(1),
        unit_price=amount,
        amount=amount,
    )
    Invoice.objects.filter(pk=note.pk).update(status=InvoiceStatus.ISSUED)
    note.refresh_from_db()
    return note
