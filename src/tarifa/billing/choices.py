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


class InvoiceStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    ISSUED = "issued", "Issued"
    PAID = "paid", "Paid"
    VOID = "void", "Void"
