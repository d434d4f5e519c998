from django.db import models


class ChargePeriod(models.TextChoices):
    DAILY = "daily", "Daily"
    WEEKLY = "weekly", "Weekly"
    MONTHLY = "monthly", "Monthly"
    QUARTERLY = "quarterly", "Quarterly"
    YEARLY = "yearly", "Yearly"


class TransactionKind(models.TextChoices):
    CALL_CHARGE = "call_charge", "Call charge"
    PAYMENT = "payment", "Payment"
    CREDIT = "credit", "Credit"
    REFUND = "refund", "Refund"
    RECURRING_FEE = "recurring_fee", "Recurring fee"
    ONE_TIME_FEE = "one_time_fee", "One-time fee"
    TAX = "tax", "Tax"
    DISCOUNT = "discount", "Discount"
    PENALTY = "penalty", "Penalty"
    DEPOSIT = "deposit", "Deposit"
    ADJUSTMENT = "adjustment", "Adjustment"
    MINIMUM_CHARGE = "minimum_charge", "Minimum billing shortfall"


class InvoiceStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    ISSUED = "issued", "Issued"
    PAID = "paid", "Paid"
    VOID = "void", "Void"


class UnpaidAction(models.TextChoices):
    """What a service plan does when a charge leaves the balance below what the customer may spend."""

    ALLOW = "allow", "Allow calls"
    BLOCK = "block", "Block calls until paid"


class ServiceKind(models.TextChoices):
    """The services that carry a plan and are charged by tarifa.billing.recurring."""

    ACCOUNT = "account", "Account / trunk"
    DID = "did", "DID"
    VIRTUAL_NUMBER = "virtual_number", "Virtual number"
    SIP_DEVICE = "sip_device", "Extension (SIP device)"
    IP_DEVICE = "ip_device", "IP address"


class ChargeKind(models.TextChoices):
    SETUP = "setup", "Setup fee"
    ACTIVATION = "activation", "Activation fee"
    RECURRING = "recurring", "Recurring fee"
    MINIMUM = "minimum", "Minimum billing shortfall"
