"""Service plans, the append-only Transaction ledger, and Invoices."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from tarifa import validators as v
from tarifa.billing.choices import (
    CHARGE_KIND_LABELS,
    CYCLE_KIND_LABELS,
    DISCOUNT_KIND_LABELS,
    INVOICE_KIND_LABELS,
    INVOICE_STATUS_LABELS,
    LINE_SECTION_LABELS,
    TRANSACTION_KIND_LABELS,
    ChargePeriod,
    CycleKind,
    DiscountKind,
    InvoiceKind,
    InvoiceStatus,
    LineSection,
    ServiceKind,
    UnpaidAction,
)
from tarifa.core import invoices, invoicing
from tarifa.core.recurring import FEE_MAX
from tarifa.customers.models import Customer, LabeledUniqueMixin
from tarifa.fields import LabeledCharField, TimestampedModel, choice_field, int_field, money_field


class ServicePlan(LabeledUniqueMixin, TimestampedModel):
    """Recurring charges, one-time fees and included-minute pools (seed 000 "Service Plans")."""

    name = LabeledCharField("name", max_length=100, unique=True)
    recurring_fee = money_field("Recurring fee", minimum=0, maximum=FEE_MAX)
    period = choice_field("Charge period", ChargePeriod, default=ChargePeriod.MONTHLY)
    setup_fee = money_field("One-time setup fee", minimum=0, maximum=FEE_MAX)
    activation_fee = money_field("One-time activation fee", minimum=0, maximum=FEE_MAX)
    billing_day = int_field(
        "Billing day of month",
        1,
        31,
        default=1,
        help_text="Monthly, quarterly and yearly periods start on this day; a shorter month starts on its last day.",
    )
    weekday = int_field(
        "Weekly billing day", 0, 6, default=0, help_text="Weekly periods start on it: 0 Monday ... 6 Sunday."
    )
    prorate = models.BooleanField(
        "prorate",
        default=True,
        help_text="Charge a period the service is only partly in (activation, cancellation) by its days in service.",
    )
    minimum_amount = money_field(
        "Minimum billing amount per period",
        minimum=0,
        maximum=FEE_MAX,
        help_text="Usage charges below it in a period are topped up to it at the period's end (0: none).",
    )
    unpaid_action = choice_field(
        "When a charge cannot be paid",
        UnpaidAction,
        default=UnpaidAction.ALLOW,
        help_text="Block: the account's calls are refused until a payment covers the balance.",
    )
    description = LabeledCharField("description", max_length=200, blank=True)
    active = models.BooleanField("active", default=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class IncludedMinutes(TimestampedModel):
    """A pool of minutes to a group of destinations, consumed before money."""

    plan = models.ForeignKey(ServicePlan, on_delete=models.CASCADE, related_name="included_minutes")
    name = LabeledCharField("destination group", max_length=100)
    prefixes = models.JSONField("prefixes", default=list, help_text='E.164 prefixes, e.g. ["1"] for NANP.')
    minutes = int_field("Minutes per period", 1, None, default=1000)
    rollover_cap = int_field(
        "Rollover cap (minutes)",
        0,
        None,
        default=0,
        help_text="Unused minutes carried into the next month, at most this many (0: no rollover).",
    )

    class Meta:
        verbose_name_plural = "included minutes"

    def __str__(self) -> str:
        return f"{self.minutes} min {self.name}"

    def clean(self) -> None:
        super().clean()
        if not isinstance(self.prefixes, list) or not self.prefixes:
            raise ValidationError(
                {"prefixes": v.refuse("Prefixes", self.prefixes, "must be a non-empty list of digit prefixes")}
            )
        for prefix in self.prefixes:
            try:
                v.Digits("Prefix", 1, 15)(str(prefix))
            except ValidationError as exc:
                raise ValidationError({"prefixes": exc}) from None


class AppendOnly(models.Model):
    """Rows that are written once and never changed or deleted: corrections are new rows."""

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None and not self._state.adding:
            raise ValidationError(f"{self._meta.verbose_name} {self.pk} is append-only and cannot be changed")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        raise ValidationError(f"{self._meta.verbose_name} {self.pk} is append-only and cannot be deleted")


class Transaction(AppendOnly):
    """An append-only money movement on a balance. Positive amounts raise the balance."""

    # No database-level foreign keys on customer, account and cdr (db_constraint=False): every
    # Transaction is written by billing.ledger, which holds the customer's and account's balance
    # rows locked (FOR UPDATE) in the same database transaction, and CDRs are never deleted
    # (PROTECT in the ORM); a per-row referential check would double the cost of posting CDRs.
    customer = models.ForeignKey(
        "customers.Customer",
        on_delete=models.PROTECT,
        related_name="transactions",
        db_index=False,
        db_constraint=False,
    )  # indexed with created_at below
    account = models.ForeignKey(
        "customers.Account",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="transactions",
        help_text="Set when the account keeps its own balance.",
        db_index=False,
        db_constraint=False,
    )  # partial index below: most transactions move the customer's balance
    kind = choice_field("Kind", TRANSACTION_KIND_LABELS, max_length=20)
    amount = money_field("Amount")
    balance_after = money_field("Balance after")
    currency = LabeledCharField("currency", max_length=3, default="USD")
    description = LabeledCharField("description", max_length=200, blank=True)
    reference = models.CharField(
        "reference",
        max_length=100,
        blank=True,
        null=True,
        help_text="Idempotency key of the source (re-rating, invoice, payment id); unique when set.",
    )
    cdr = models.ForeignKey(
        "cdrs.Cdr",
        verbose_name="CDR",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="transactions",
        db_constraint=False,
    )
    created_at = models.DateTimeField("created at", auto_now_add=True, db_index=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    actor = models.CharField(
        "done by",
        max_length=150,
        blank=True,
        default="",
        db_default="",
        help_text='Who posted it by hand: the staff user name or "cli:<os user>"; empty for the system.',
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [("add_payment", "Can add payments, credits, refunds and adjustments")]
        indexes = [
            models.Index(fields=["customer", "created_at"]),
            models.Index(
                fields=["account", "created_at"],
                condition=models.Q(account__isnull=False),
                name="transaction_own_balance",
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["reference"], condition=models.Q(reference__isnull=False), name="transaction_unique_reference"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount} {self.currency}"


class Invoice(TimestampedModel):
    """The charges of one billing period of one customer; immutable once issued."""

    customer = models.ForeignKey("customers.Customer", on_delete=models.PROTECT, related_name="invoices")
    issuer = models.ForeignKey(
        "customers.Customer",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="issued_invoices",
        help_text="The reseller that bills this customer; empty: the operator. Numbers run per issuer.",
    )
    kind = choice_field("Kind", INVOICE_KIND_LABELS, default=InvoiceKind.INVOICE)
    credited_invoice = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="credit_notes",
        help_text="For a credit note: the issued invoice it corrects.",
    )
    number = LabeledCharField("number", max_length=32, unique=True)
    period_start = models.DateField("period start")
    period_end = models.DateField("period end")
    issued_at = models.DateTimeField("issued at", null=True, blank=True)
    due_date = models.DateField("due date", null=True, blank=True)
    status = choice_field("Status", INVOICE_STATUS_LABELS, default=InvoiceStatus.DRAFT)
    currency = LabeledCharField("currency", max_length=3, default="USD")
    subtotal = money_field("Subtotal")
    discount = money_field("Discount")
    penalty = money_field("Penalty")
    tax = money_field("Tax")
    total = money_field("Total")

    class Meta:
        ordering = ["-period_start", "number"]
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "period_start", "period_end"],
                condition=models.Q(kind="invoice"),
                name="invoice_unique_period",
                violation_error_message="another invoice already has the same customer, period start and period end",
            )
        ]

    def __str__(self) -> str:
        return self.number

    def clean(self) -> None:
        super().clean()
        customer_currency = None
        if self.customer_id:
            customer_currency = Customer.objects.filter(pk=self.customer_id).values_list("currency", flat=True).first()
        problems = invoices.check_invoice(
            invoices.InvoiceFigures(
                period_start=self.period_start,
                period_end=self.period_end,
                currency=self.currency,
                customer_currency=customer_currency,
                subtotal=self.subtotal,
                discount=self.discount,
                penalty=self.penalty,
                tax=self.tax,
                total=self.total,
            )
        )
        problems += self._status_problems()
        raise_problems(problems)
        self._check_one_invoice_per_period()

    def _check_one_invoice_per_period(self) -> None:
        """One invoice (credit notes aside) per customer and period: the conditional unique constraint,
        refused with the values (Django's own message for a conditional constraint names none)."""
        if self.kind != InvoiceKind.INVOICE or not (self.customer_id and self.period_start and self.period_end):
            return
        others = Invoice.objects.filter(
            kind=InvoiceKind.INVOICE,
            customer_id=self.customer_id,
            period_start=self.period_start,
            period_end=self.period_end,
        ).exclude(pk=self.pk)
        if others.exists():
            raise ValidationError(
                f"Customer {self.customer}, Period start {self.period_start}, Period end {self.period_end} is "
                "refused: another invoice already has the same customer, period start and period end",
                code="unique_together",
            )

    def _status_problems(self) -> list[invoices.Problem]:
        """Against the stored row: only a draft changes; an issued invoice only moves its status on."""
        if self.pk is None or self._state.adding:
            return []
        stored = Invoice.objects.filter(pk=self.pk).first()
        if stored is None:
            return []
        changed = {
            f.attname: getattr(self, f.attname)
            for f in Invoice._meta.concrete_fields
            if f.attname not in ("id", "status", "created_at", "updated_at")
            and getattr(stored, f.attname) != getattr(self, f.attname)
        }
        return invoices.check_status_change(stored.status, self.status, changed)

    def save(self, *args: Any, **kwargs: Any) -> None:
        problems = self._status_problems()
        if problems:  # callers that skip full_clean() are refused here (admin and API call it first)
            raise_problems(problems)
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        stored = Invoice.objects.filter(pk=self.pk).values_list("status", flat=True).first()
        if stored not in (None, InvoiceStatus.DRAFT):
            raise ValidationError(f"Invoice {self.number} is {stored} and cannot be deleted; void it instead")
        return super().delete(*args, **kwargs)


def raise_problems(problems: list[invoices.Problem]) -> None:
    """Problems of :mod:`tarifa.core.invoices` as one ValidationError, each on its field. Each keeps
    its own code: a ModelForm replaces a message whose code is its field's ``invalid`` (that is how
    "period end before start" became "Enter a valid date.")."""
    if not problems:
        return
    errors: dict[str, list[ValidationError]] = {}
    for p in problems:
        errors.setdefault(p.field, []).append(v.refuse(p.label, p.value, p.rule, p.code))
    raise ValidationError(errors)


class InvoiceLine(models.Model):
    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")
    section = choice_field("Section", LINE_SECTION_LABELS, default=LineSection.SERVICES)
    description = LabeledCharField("description", max_length=200)
    calls = int_field("Calls", 0, None, null=True, blank=True, help_text="Calls lines: the number of calls.")
    seconds = models.BigIntegerField(
        "billed seconds", null=True, blank=True, help_text="Calls and usage lines: the billed duration."
    )
    location = LabeledCharField(
        "location / cost center", max_length=100, blank=True, help_text="Usage lines: the accounts' location."
    )
    quantity = money_field("Quantity", places=4, default=Decimal(1))
    unit_price = money_field("Unit price")
    amount = money_field("Amount")

    class Meta:
        ordering = ["invoice", "id"]

    def __str__(self) -> str:
        return self.description

    def clean(self) -> None:
        super().clean()
        decimals = invoices.MONEY_PLACES
        if self.invoice_id:
            decimals = (
                Invoice.objects.filter(pk=self.invoice_id).values_list("customer__billing_decimals", flat=True).first()
                or decimals
            )
        problems = invoices.check_line(self.quantity, self.unit_price, self.amount, decimals)
        problems += self._frozen_problems()
        raise_problems(problems)

    def _frozen_problems(self) -> list[invoices.Problem]:
        status = Invoice.objects.filter(pk=self.invoice_id).values_list("status", flat=True).first()
        if status in (None, InvoiceStatus.DRAFT):
            return []
        return [
            invoices.Problem(
                "description",
                "Line",
                self.description,
                f"the invoice is {status}: its lines can no longer be added, changed or deleted",
                "immutable",
            )
        ]

    def save(self, *args: Any, **kwargs: Any) -> None:
        raise_problems(self._frozen_problems())
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        raise_problems(self._frozen_problems())
        return super().delete(*args, **kwargs)


class MinutePoolUsage(models.Model):
    """Seconds of an included-minutes pool used by an account in one period (calendar month)."""

    account = models.ForeignKey("customers.Account", on_delete=models.CASCADE, related_name="pool_usage")
    pool_key = models.CharField("pool", max_length=40)
    period_start = models.DateField("period start")
    seconds_used = models.PositiveIntegerField("seconds used", default=0)
    carried_seconds = models.PositiveIntegerField(
        "seconds carried over",
        null=True,
        blank=True,
        help_text="Unused seconds rolled over from the previous month (set on the month's first call).",
    )

    class Meta:
        verbose_name_plural = "minute pool usage"
        constraints = [
            models.UniqueConstraint(fields=["account", "pool_key", "period_start"], name="pool_usage_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.account} {self.pool_key} {self.period_start}: {self.seconds_used}s"


class ServiceCharge(models.Model):
    """One charge of one service for one period, posted once (tarifa.services.recurring). The
    unique key (service, its activation date, charge kind, period start) makes posting idempotent: a second
    worker's insert of the same key does nothing, and only inserted rows reach the ledger."""

    service_kind = choice_field("Service kind", ServiceKind)
    service_id = models.BigIntegerField("service id")
    service_start = models.DateField(
        "service activation date",
        help_text="A DID released and assigned again is a new service from its new date.",
    )
    kind = choice_field("Charge kind", CHARGE_KIND_LABELS)
    period_start = models.DateField("period start")
    period_end = models.DateField("period end")
    amount = money_field("Amount")
    customer = models.ForeignKey(
        "customers.Customer",
        on_delete=models.PROTECT,
        related_name="service_charges",
        db_constraint=False,
    )
    account = models.ForeignKey(
        "customers.Account",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="service_charges",
        db_constraint=False,
    )
    reference = models.CharField("transaction reference", max_length=100)
    description = LabeledCharField("description", max_length=200, blank=True)
    created_at = models.DateTimeField("created at", auto_now_add=True)

    class Meta:
        ordering = ["-period_start", "service_kind", "service_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["service_kind", "service_id", "service_start", "kind", "period_start"],
                name="service_charge_once_per_period",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.service_kind} {self.service_id} {self.kind} {self.period_start}: {self.amount}"


class PaymentMethod(TimestampedModel):
    """A saved way to pay: the gateway's token for a card or account, never its number. Used for
    automatic top-up and payments from the portal; expiry drives the card-expiry notices."""

    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="payment_methods")
    gateway = LabeledCharField("gateway", max_length=40, help_text="The adapter that issued the token.")
    token = models.CharField("gateway token", max_length=200, help_text="The gateway's reference; no card data.")
    brand = LabeledCharField("brand", max_length=20, blank=True)
    last4 = LabeledCharField("last four digits", max_length=4, blank=True)
    expiry_month = int_field("Expiry month", 1, 12, null=True, blank=True)
    expiry_year = int_field("Expiry year", 2000, 2999, null=True, blank=True)
    is_default = models.BooleanField("default", default=False)
    active = models.BooleanField("active", default=True)

    class Meta:
        ordering = ["customer", "-is_default", "id"]
        constraints = [
            models.UniqueConstraint(fields=["gateway", "token"], name="payment_method_unique_token"),
        ]

    def __str__(self) -> str:
        shown = f"{self.brand} ****{self.last4}" if self.last4 else self.gateway
        if self.expiry_month and self.expiry_year:
            shown += f" exp {self.expiry_month:02d}/{self.expiry_year}"
        return shown


# --- Billing cycles and invoice numbers (tarifa.services.invoicing, docs/invoicing.md) ---------------


class BillingProfile(TimestampedModel):
    """A customer's billing cycle and discount. A customer without one is invoiced monthly on the
    1st, without discount (:data:`tarifa.core.invoicing.DEFAULT_CYCLE`)."""

    customer = models.OneToOneField(
        "customers.Customer", on_delete=models.CASCADE, related_name="billing_profile", verbose_name="customer"
    )
    cycle = choice_field("Billing cycle", CYCLE_KIND_LABELS, default=CycleKind.MONTHLY)
    day = int_field(
        "Billing day of month",
        1,
        31,
        default=1,
        help_text="Monthly cycles: periods start on this day (a shorter month starts on its last day).",
    )
    weekday = int_field("Billing weekday", 0, 6, default=0, help_text="Weekly cycles: 0 Monday ... 6 Sunday.")
    every_days = int_field(
        "Cycle length",
        1,
        invoicing.CUSTOM_DAYS_MAX,
        "days",
        default=30,
        help_text="Custom cycles: a period of this many days, the first starting on the anchor date.",
    )
    anchor = models.DateField(
        "anchor date", null=True, blank=True, help_text="Custom cycles: the first day of one of the periods."
    )
    discount_kind = choice_field("Discount", DISCOUNT_KIND_LABELS, default=DiscountKind.NONE)
    discount_value = money_field(
        "Discount value",
        minimum=0,
        help_text="Percent of calls and services, or a fixed amount off each invoice, in the customer's currency.",
    )

    class Meta:
        ordering = ["customer"]

    def __str__(self) -> str:
        return f"{self.customer}: {self.get_cycle_display()}"

    def as_cycle(self) -> invoicing.Cycle:
        return invoicing.Cycle(
            kind=invoicing.CycleKind(self.cycle),
            day=self.day,
            weekday=self.weekday,
            every_days=self.every_days,
            anchor=self.anchor or invoicing.DEFAULT_CYCLE.anchor,
        )

    def as_discount(self) -> invoicing.Discount:
        return invoicing.Discount(invoicing.DiscountKind(self.discount_kind), self.discount_value)

    def clean(self) -> None:
        super().clean()
        problems = []
        if self.cycle == CycleKind.CUSTOM and self.anchor is None:
            problems.append(
                invoices.Problem("anchor", "Anchor date", None, "a custom cycle needs its anchor date", "required")
            )
        if self.discount_kind in list(DiscountKind) and self.discount_value is not None:
            problems += invoicing.discount_problems(self.as_discount())  # the cycle's ranges are its fields' own
        raise_problems(problems)


class InvoiceSequence(models.Model):
    """The next invoice number of one issuer (the operator, or a reseller) and year. The invoice
    run locks the row (FOR UPDATE) in the database transaction that inserts the invoices it numbers,
    so numbers never skip or repeat, whatever the run does or how it ends."""

    key = models.CharField("issuer and year", max_length=40, unique=True)
    issuer = models.ForeignKey(
        "customers.Customer", null=True, blank=True, on_delete=models.PROTECT, related_name="invoice_sequences"
    )
    prefix = models.CharField("prefix", max_length=20)
    year = models.IntegerField("year")
    last = models.BigIntegerField("last number issued", default=0)

    class Meta:
        permissions = [
            ("run_invoices", "Can run invoices (issue the invoices of ended periods)"),
            ("credit_invoice", "Can issue credit notes"),
        ]

    def __str__(self) -> str:
        return f"{self.prefix}-{self.year}: {self.last}"
