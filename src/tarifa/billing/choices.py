"""Enumerations of the billing app; transaction kinds and invoice statuses are the core's
(``tarifa.core.payments``, ``tarifa.core.invoices``) with their labels."""

from django.db import models

from tarifa.core.invoices import InvoiceStatus
from tarifa.core.payments import TransactionKind
from tarifa.vocabulary import Labels

__all__ = ["INVOICE_STATUS_LABELS", "TRANSACTION_KIND_LABELS", "ChargePeriod", "InvoiceStatus", "TransactionKind"]


class ChargePeriod(models.TextChoices):
    DAILY = "daily", "Daily"
    WEEKLY = "weekly", "Weekly"
    MONTHLY = "monthly", "Monthly"
    QUARTERLY = "quarterly", "Quarterly"
    YEARLY = "yearly", "Yearly"


TRANSACTION_KIND_LABELS = Labels(TransactionKind, {
    TransactionKind.CALL_CHARGE: "Call charge",
    TransactionKind.PAYMENT: "Payment",
    TransactionKind.CREDIT: "Credit",
    TransactionKind.REFUND: "Refund",
    TransactionKind.RECURRING_FEE: "Recurring fee",
    TransactionKind.ONE_TIME_FEE: "One-time fee",
    TransactionKind.TAX: "Tax",
    TransactionKind.DISCOUNT: "Discount",
    TransactionKind.PENALTY: "Penalty",
    TransactionKind.DEPOSIT: "Deposit",
    TransactionKind.ADJUSTMENT: "Adjustment",
})

INVOICE_STATUS_LABELS = Labels(InvoiceStatus, {
    InvoiceStatus.DRAFT: "Draft",
    InvoiceStatus.ISSUED: "Issued",
    InvoiceStatus.PAID: "Paid",
    InvoiceStatus.VOID: "Void",
})
