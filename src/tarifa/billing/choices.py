"""Enumerations of the billing app; transaction kinds and invoice statuses are the core's
(``tarifa.core.payments``, ``tarifa.core.invoices``) with their labels."""

from django.db import models

from tarifa.core.invoice_document import SECTION_TITLES
from tarifa.core.invoices import InvoiceKind, InvoiceStatus, LineSection
from tarifa.core.invoicing import CycleKind, DiscountKind
from tarifa.core.payments import TransactionKind
from tarifa.core.recurring import ChargeKind
from tarifa.vocabulary import Labels

__all__ = [
    "CHARGE_KIND_LABELS",
    "CYCLE_KIND_LABELS",
    "DISCOUNT_KIND_LABELS",
    "INVOICE_KIND_LABELS",
    "INVOICE_STATUS_LABELS",
    "LINE_SECTION_LABELS",
    "TRANSACTION_KIND_LABELS",
    "ChargeKind",
    "ChargePeriod",
    "CycleKind",
    "DiscountKind",
    "InvoiceKind",
    "InvoiceStatus",
    "LineSection",
    "PaymentMethodKind",
    "ServiceKind",
    "TransactionKind",
    "UnpaidAction",
]


class ChargePeriod(models.TextChoices):
    DAILY = "daily", "Daily"
    WEEKLY = "weekly", "Weekly"
    MONTHLY = "monthly", "Monthly"
    QUARTERLY = "quarterly", "Quarterly"
    YEARLY = "yearly", "Yearly"


TRANSACTION_KIND_LABELS = Labels(
    TransactionKind,
    {
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
        TransactionKind.MINIMUM_CHARGE: "Minimum billing shortfall",
    },
)

INVOICE_STATUS_LABELS = Labels(
    InvoiceStatus,
    {
        InvoiceStatus.DRAFT: "Draft",
        InvoiceStatus.ISSUED: "Issued",
        InvoiceStatus.PAID: "Paid",
        InvoiceStatus.VOID: "Void",
    },
)

INVOICE_KIND_LABELS = Labels(InvoiceKind, {InvoiceKind.INVOICE: "Invoice", InvoiceKind.CREDIT_NOTE: "Credit note"})

#: The section titles an invoice prints are the labels the back office shows (one vocabulary).
LINE_SECTION_LABELS = Labels(LineSection, SECTION_TITLES)


class PaymentMethodKind(models.TextChoices):
    """How money came in or went out (core.payments.METHODS, labelled)."""

    BANK = "bank", "Bank transfer"
    CASH = "cash", "Cash"
    CHEQUE = "cheque", "Cheque"
    CARD = "card", "Card (gateway)"
    OTHER = "other", "Other"


class UnpaidAction(models.TextChoices):
    """What a service plan does when a charge leaves the balance below what the customer may spend."""

    ALLOW = "allow", "Allow calls"
    BLOCK = "block", "Block calls until paid"


class ServiceKind(models.TextChoices):
    """The services that carry a plan and are charged by tarifa.services.recurring."""

    ACCOUNT = "account", "Account / trunk"
    DID = "did", "DID"
    VIRTUAL_NUMBER = "virtual_number", "Virtual number"
    SIP_DEVICE = "sip_device", "Extension (SIP device)"
    IP_DEVICE = "ip_device", "IP address"


CHARGE_KIND_LABELS = Labels(
    ChargeKind,
    {
        ChargeKind.SETUP: "Setup fee",
        ChargeKind.ACTIVATION: "Activation fee",
        ChargeKind.RECURRING: "Recurring fee",
        ChargeKind.MINIMUM: "Minimum billing shortfall",
    },
)

CYCLE_KIND_LABELS = Labels(
    CycleKind,
    {
        CycleKind.MONTHLY: "Monthly, on a day of the month",
        CycleKind.WEEKLY: "Weekly, on a weekday",
        CycleKind.CUSTOM: "Every N days from an anchor date",
    },
)

DISCOUNT_KIND_LABELS = Labels(
    DiscountKind,
    {
        DiscountKind.NONE: "None",
        DiscountKind.PERCENT: "Percentage of calls and services",
        DiscountKind.FIXED: "Fixed amount per invoice",
    },
)
