"""Shared set-up of the payment tests: a postpaid customer and issued invoices."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from tarifa.billing.models import Invoice
from tarifa.customers.models import Customer


def make_payer(tariff: Any, operator: Customer) -> Customer:
    """A postpaid customer of ``operator`` (each test module wraps it in its ``payer`` fixture)."""
    return Customer.objects.create(
        parent=operator,
        name="Pay Er",
        company="Payer Ltd",
        web_username="payer1",
        tariff=tariff,
        email="payer@x.example",
        phone="+12015550123",
        country="US",
        billing_type="postpaid",
        credit_limit=Decimal("1000"),
    )


def issued(customer: Customer, number: str, total: str, day: date, due_days: int = 15) -> Invoice:
    """An issued invoice of ``total`` for the month before ``day``, due ``due_days`` after."""
    end = day - timedelta(days=1)
    return Invoice.objects.create(
        customer=customer,
        number=number,
        period_start=end.replace(day=1),
        period_end=end,
        issued_at=datetime.combine(day, datetime.min.time(), tzinfo=UTC),
        due_date=day + timedelta(days=due_days),
        status="issued",
        currency=customer.currency,
        subtotal=Decimal(total),
        total=Decimal(total),
    )


def cli(*args: str) -> Any:
    from typer.testing import CliRunner

    from tarifa import cli as tarifa_cli

    if not any(group.name == "payment" for group in tarifa_cli.app.registered_groups):
        tarifa_cli._register_commands()
    return CliRunner().invoke(tarifa_cli.app, list(args))
