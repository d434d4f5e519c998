"""Service plans, the append-only Transaction ledger, and Invoices."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any, ClassVar

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
    PaymentMethodKind,
    ServiceKind,
    UnpaidAction,
)
from tarifa.core import invoices, invoicing
from tarifa.core.recurring import FEE_MAX
from tarifa.customers.models import Customer, LabeledUniqueMixin
from tarifa.fields import AppendOnly, LabeledCharField, TimestampedModel, choice_field, int_field, money_field


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
    offered_for_signup = models.BooleanField(
        "offered for online sign-up",
        default=False,
        help_text="New customers can choose this plan on the portal's sign-up page (when TARIFA_SIGNUP is on).",
    )
    signup_tariff = models.ForeignKey(
        "rating.Tariff",
        verbose_name="tariff of customers who sign up for it",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Their customer tariff (and so their currency); required when the plan is offered for sign-up.",
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        super().clean()
        if self.offered_for_signup and not self.signup_tariff_id:
            raise ValidationError(
                {"signup_tariff": v.refuse("Sign-up tariff", None, "a plan offered for sign-up needs the tariff")}
            )
        if self.offered_for_signup and not self.active:
            raise ValidationError(
                {"offered_for_signup": v.refuse("Offered for sign-up", True, "an inactive plan cannot be offered")}
            )


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
    method = models.CharField(
        "method",
        max_length=10,
        blank=True,
        default="",
        db_default="",
        choices=PaymentMethodKind.choices,
        help_text="Payments, refunds and credits: bank, cash, cheque, card (through the gateway) or other.",
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
                kind=self.kind,
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


def raise_problems(problems: Sequence[invoices.Problem]) -> None:
    """Problems of the core's rules (:class:`tarifa.core.problems.Problem`: invoices, taxes, late
    fees, deposits) as one ValidationError, each on its field. Each keeps its own code: a ModelForm
    replaces a message whose code is its field's ``invalid`` (that is how "period end before start"
    became "Enter a valid date.")."""
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
    tax_rate = money_field(
        "Tax rate (%)", places=4, null=True, blank=True, help_text="Tax lines: the percentage (empty: a fixed tax)."
    )
    tax_base = money_field(
        "Tax base", null=True, blank=True, help_text="Tax lines: the amount the tax was computed on."
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


# --- payments: allocation to invoices, the card gateway, automatic top-up (docs/payments.md) -----------


class PaymentAllocation(AppendOnly):
    """Money of one payment or credit placed on one issued invoice (core.allocation). Append-only:
    a refund that takes money back from an invoice appends a negative row (``refund`` set). The
    sums -- per invoice within [0, total], per source within [0, its amount] -- are kept by
    :mod:`tarifa.billing.allocation`, which writes every row under the customer's balance lock."""

    source = models.ForeignKey(
        Transaction, on_delete=models.PROTECT, related_name="allocations", help_text="The payment or credit."
    )
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="allocations")
    amount = money_field("Amount")
    refund = models.ForeignKey(
        Transaction,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="reversals",
        help_text="Set on a negative row: the refund that took this money back.",
    )
    created_at = models.DateTimeField("created at", auto_now_add=True)

    class Meta:
        ordering = ["invoice", "id"]
        verbose_name = "payment allocation"

    def __str__(self) -> str:
        return f"{self.amount} of transaction {self.source_id} on invoice {self.invoice_id}"


class AutoTopUp(TimestampedModel):
    """Automatic top-up of a prepaid customer: when its balance falls below ``threshold`` the worker
    charges ``amount`` to the saved method (the customer's default one when none is chosen)."""

    customer = models.OneToOneField("customers.Customer", on_delete=models.CASCADE, related_name="auto_top_up")
    enabled = models.BooleanField("enabled", default=True)
    threshold = money_field("Top up below", minimum=0, maximum=Decimal("1000000"))
    amount = money_field("Top-up amount", minimum=Decimal("0.01"), maximum=Decimal("100000"))
    method = models.ForeignKey(
        PaymentMethod,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Empty: the customer's default saved method.",
    )
    declines = models.PositiveIntegerField(
        "declines in a row", default=0, help_text="Reset by a successful charge; each one doubles the wait."
    )
    next_attempt_at = models.DateTimeField("no charge before", null=True, blank=True)
    last_error = LabeledCharField("last error", max_length=200, blank=True)

    class Meta:
        verbose_name = "automatic top-up"

    def __str__(self) -> str:
        return f"top up {self.customer} by {self.amount} below {self.threshold}"

    def clean(self) -> None:
        super().clean()
        if self.method_id and self.customer_id and self.method and self.method.customer_id != self.customer_id:
            raise ValidationError(
                {"method": v.refuse("Method", str(self.method), "must be a saved method of this customer")}
            )


class GatewayCharge(models.Model):
    """A charge Tarifa asked the card gateway for: the server-side record a callback is checked
    against (amount and currency are Tarifa's, never the client's). Written before the gateway is
    called, so a crash or a time-out leaves a ``pending`` row that the next try sends again with the
    same idempotency key (the gateway answers with the same charge: never two)."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending (sent, no answer yet)"
        SUCCEEDED = "succeeded", "Succeeded"
        DECLINED = "declined", "Declined"
        FAILED = "failed", "Failed (not charged)"
        REFUNDED = "refunded", "Refunded"

    customer = models.ForeignKey("customers.Customer", on_delete=models.PROTECT, related_name="gateway_charges")
    method = models.ForeignKey(PaymentMethod, null=True, on_delete=models.SET_NULL, related_name="charges")
    gateway = models.CharField("gateway", max_length=40)
    purpose = models.CharField("purpose", max_length=20, help_text="topup or invoice")
    invoice = models.ForeignKey(Invoice, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    idempotency_key = models.CharField("idempotency key", max_length=80, unique=True)
    charge_id = models.CharField("gateway charge id", max_length=100, null=True, blank=True, unique=True)
    amount = money_field("Amount")
    currency = models.CharField("currency", max_length=3)
    status = models.CharField("status", max_length=10, choices=Status.choices, default=Status.PENDING)
    message = models.CharField("gateway message", max_length=200, blank=True)
    transaction = models.ForeignKey(Transaction, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField("created at", auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField("updated at", auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.purpose} {self.amount} {self.currency} {self.status}"


class WebhookEvent(models.Model):
    """A gateway callback received with a valid signature, stored once per (gateway, event id): the
    same event delivered again finds its row and posts nothing. Values are stored as data only."""

    gateway = models.CharField("gateway", max_length=40)
    event_id = models.CharField("event id", max_length=100)
    kind = models.CharField("type", max_length=60)
    charge_id = models.CharField("charge id", max_length=100, blank=True)
    outcome = models.CharField("outcome", max_length=20)
    detail = models.CharField("detail", max_length=300, blank=True)
    source_address = models.CharField("from address", max_length=150, blank=True)
    received_at = models.DateTimeField("received at", auto_now_add=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["gateway", "event_id"], name="webhook_event_once")]

    def __str__(self) -> str:
        return f"{self.gateway} {self.event_id} {self.kind}: {self.outcome}"


class WebhookHit(models.Model):
    """One callback request from an address (signed or not), counted for the per-address rate limit;
    rows older than the window are deleted as new ones come in (like throttle.LoginFailure)."""

    address = models.CharField(max_length=150)
    at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["address", "at"], name="webhook_hit_address_at")]

    def __str__(self) -> str:
        return f"{self.address} at {self.at}"


# ---------------------------------------------------------------------------------------------
# Taxes, late fees and deposits (issue 15: docs/taxes.md, docs/penalties.md, docs/deposits.md)


class TaxedFlag(models.TextChoices):
    """The customers' "VAT/Tax flag" values a tax binds (NONE binds none)."""

    VAT = "VAT", "VAT"
    TAX = "TAX", "Tax"


class TaxKind(models.TextChoices):
    PERCENT = "percent", "Percentage"
    FIXED = "fixed", "Fixed amount"


class TaxRate(TimestampedModel):
    """One row of the operator's tax table (core.taxes.TaxRule): a percentage or fixed tax, on the whole
    invoice or on the calls from one origin, for the customers with its VAT/Tax flag (all of them, or
    those of one reseller's subtree, or one customer), in an order, compounding or not, while valid."""

    name = LabeledCharField("name", max_length=60, help_text="As printed on the invoice, e.g. VAT 20% or 911 fee.")
    flag = choice_field(
        "Applies to flag",
        TaxedFlag,
        default=TaxedFlag.VAT,
        help_text='Binds the customers whose "VAT/Tax flag" is this one (flag NONE: no tax applies).',
    )
    kind = choice_field("Kind", TaxKind, default=TaxKind.PERCENT)
    rate = money_field(
        "Rate (% or amount)", help_text="Percent for a percentage tax (0 to 100); the amount for a fixed tax."
    )
    currency = LabeledCharField(
        "currency",
        max_length=3,
        blank=True,
        validators=[v.Currency("Currency")],
        help_text="A fixed tax's currency; it applies only to customers billed in it.",
    )
    order = int_field("Order", 0, 1000, default=0, help_text="Taxes apply in this order (then by name).")
    compound = models.BooleanField(
        "compound", default=False, help_text="The base includes the taxes before it in the order (tax on tax)."
    )
    origin_country = LabeledCharField(
        "origin country",
        max_length=2,
        blank=True,
        help_text="Origin-based: only calls whose caller is in this country (ISO 3166 alpha-2); empty: all lines.",
    )
    origin_region = LabeledCharField(
        "origin region", max_length=10, blank=True, help_text="With the country: only callers in this region."
    )
    applies_to = models.ForeignKey(
        "customers.Customer",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="tax_rates",
        verbose_name="applies to",
        help_text="Only this customer and, for a reseller or operator, its whole subtree; empty: every customer.",
    )
    valid_from = models.DateField("valid from", null=True, blank=True)
    valid_to = models.DateField("valid to", null=True, blank=True, help_text="First day it no longer applies.")

    class Meta:
        ordering = ["flag", "order", "name"]

    def __str__(self) -> str:
        return self.name

    def as_rule(self, scope_path: str | None = None, scope_currency: str | None = None) -> Any:
        from tarifa.core.taxes import TaxRule

        return TaxRule(
            name=self.name,
            kind=self.kind,
            rate=self.rate,
            flag=self.flag,
            order=self.order,
            compound=self.compound,
            currency=self.currency,
            origin_country=self.origin_country.upper(),
            origin_region=self.origin_region.upper(),
            valid_from=self.valid_from,
            valid_to=self.valid_to,
            scope_path=scope_path,
            scope_currency=scope_currency,
            key=str(self.pk or "new"),
        )

    def clean(self) -> None:
        from tarifa.core.taxes import check_duplicate, check_order, check_rule

        super().clean()
        if self.origin_country and not (len(self.origin_country) == 2 and self.origin_country.isalpha()):
            raise ValidationError(
                {
                    "origin_country": v.refuse(
                        "Origin country", self.origin_country, "must be an ISO 3166 alpha-2 code, e.g. US"
                    )
                }
            )
        scope = None
        if self.applies_to_id:
            scope = Customer.objects.filter(pk=self.applies_to_id).values("path", "currency").first()
        rule = self.as_rule(scope["path"] if scope else None, scope["currency"] if scope else None)
        problems = check_rule(rule)
        if not problems:
            others = rules_of(TaxRate.objects.filter(flag=self.flag).exclude(pk=self.pk))
            problems = check_duplicate(rule, others) + check_order(rule, others)
        raise_problems(problems)


def rules_of(rows: Any) -> list[Any]:
    """TaxRate rows (a queryset) as core TaxRules, their scope read in the same query."""
    return [
        row.as_rule(row.applies_to.path if row.applies_to_id else None)
        for row in rows.select_related("applies_to").only(
            "name",
            "kind",
            "rate",
            "flag",
            "order",
            "compound",
            "currency",
            "origin_country",
            "origin_region",
            "valid_from",
            "valid_to",
            "applies_to__path",
        )
    ]


class TaxExemption(TimestampedModel):
    """A customer that would be taxed holds an exemption (a certificate, a diplomatic or charity status):
    no tax applies while it is valid. (A customer whose VAT/Tax flag is NONE is outside the tax tables
    altogether and needs no exemption.)"""

    customer = models.OneToOneField("customers.Customer", on_delete=models.CASCADE, related_name="tax_exemption")
    reference = LabeledCharField(
        "exemption reference", max_length=60, help_text="The certificate or ruling number, printed on the invoice."
    )
    valid_from = models.DateField("valid from", null=True, blank=True)
    valid_to = models.DateField("valid to", null=True, blank=True, help_text="First day it no longer applies.")
    note = LabeledCharField("note", max_length=200, blank=True)

    def __str__(self) -> str:
        return f"{self.customer}: {self.reference}"

    def clean(self) -> None:
        super().clean()
        if not (self.reference or "").strip():
            raise ValidationError(
                {"reference": v.refuse("Exemption reference", repr(self.reference), "is required", "required")}
            )
        if self.valid_from and self.valid_to and self.valid_to <= self.valid_from:
            raise ValidationError(
                {"valid_to": v.refuse("Valid to", self.valid_to, f"must be after valid from {self.valid_from}")}
            )

    def covers(self, day: Any) -> bool:
        return (self.valid_from is None or self.valid_from <= day) and (self.valid_to is None or day < self.valid_to)


class LateFeePolicy(TimestampedModel):
    """The late fee an operator charges on invoices overdue past the payment term (core.penalties), per
    currency: the customers of its tree billed in that currency."""

    operator = models.ForeignKey(
        "customers.Customer",
        on_delete=models.CASCADE,
        related_name="late_fee_policies",
        limit_choices_to={"kind": "operator"},
    )
    currency = LabeledCharField("currency", max_length=3, default="USD", validators=[v.Currency("Currency")])
    percent = money_field("Late fee (%)", places=4, help_text="Of the overdue amount, per penalty period.")
    fixed = money_field("Fixed late fee", help_text="Added per penalty period, in the policy's currency.")
    grace_days = int_field("Grace period", 0, 365, "days", default=0, help_text="Days after the due date.")
    max_periods = int_field(
        "Max penalties per invoice", 0, 1000, default=0, help_text="One per month while overdue, at most this many."
    )
    active = models.BooleanField("active", default=True)

    class Meta:
        verbose_name_plural = "late fee policies"
        constraints = [
            models.UniqueConstraint(fields=["operator", "currency"], name="late_fee_policy_unique_currency"),
        ]

    def __str__(self) -> str:
        return f"{self.operator} {self.currency}: {self.percent}% + {self.fixed}"

    def as_policy(self) -> Any:
        from tarifa.core.penalties import PenaltyPolicy

        return PenaltyPolicy(self.percent, self.fixed, self.grace_days, self.max_periods)

    def clean(self) -> None:
        from tarifa.core.penalties import check_policy

        super().clean()
        problems = check_policy(self.as_policy())
        if self.operator_id and Customer.objects.filter(pk=self.operator_id).exclude(kind="operator").exists():
            problems.append(
                invoices.Problem("operator", "Operator", str(self.operator), "must be an operator", "operator")
            )
        raise_problems(problems)


class Deposit(TimestampedModel):
    """The deposit held from one customer (core.deposits): what is held, the interest it earns and how
    it follows the customer's usage. ``held`` moves only with deposit Transactions (billing.deposits)."""

    customer = models.OneToOneField("customers.Customer", on_delete=models.CASCADE, related_name="deposit")
    held = money_field("Held", editable=False)
    since = models.DateField("since", help_text="Interest accrues from this day's month.")
    interest_rate = money_field("Interest rate (% per year)", places=4)
    auto_adjust = models.BooleanField(
        "adjust automatically", default=False, help_text="Each month, follow the usage: months × average usage."
    )
    months = money_field("Months of usage", places=2, default=Decimal(2))
    lookback = int_field("Months averaged", 1, 36, default=3)
    minimum = money_field("Minimum deposit")
    threshold = money_field("Adjustment threshold", help_text="Smaller changes than this are not made.")

    def __str__(self) -> str:
        return f"{self.customer}: {self.held}"

    def as_terms(self) -> Any:
        from tarifa.core.deposits import DepositTerms

        return DepositTerms(
            interest_rate=self.interest_rate,
            auto_adjust=self.auto_adjust,
            months=self.months,
            lookback=self.lookback,
            minimum=self.minimum,
            threshold=self.threshold,
        )

    def clean(self) -> None:
        from tarifa.core.deposits import check_terms

        super().clean()
        raise_problems(check_terms(self.as_terms()))


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

    #: the fields each cycle reads; the others may be left empty (they keep their default)
    CYCLE_FIELDS: ClassVar[dict[str, tuple[tuple[str, str], ...]]] = {
        CycleKind.MONTHLY: (("day", "Billing day of month"),),
        CycleKind.WEEKLY: (("weekday", "Billing weekday"),),
        CycleKind.CUSTOM: (("every_days", "Cycle length"),),
    }

    def unique_error_message(self, model_class: type[models.Model], unique_check: Sequence[str]) -> ValidationError:
        if tuple(unique_check) == ("customer",):  # the customer's name, not the id the form posted
            return v.refuse("Customer", str(self.customer), "already has a billing profile", "unique")
        return super().unique_error_message(model_class, unique_check)

    def clean(self) -> None:
        super().clean()
        problems = []
        needed = dict(self.CYCLE_FIELDS.get(self.cycle, ()))
        for name in ("day", "weekday", "every_days"):
            if getattr(self, name) is None:
                if name in needed:
                    rule = f"a {self.cycle} cycle needs it"
                    problems.append(invoices.Problem(name, needed[name], None, rule, "cycle_field_missing"))
                else:
                    field = self._meta.get_field(name)
                    assert isinstance(field, models.Field)  # day, weekday, every_days: plain columns
                    setattr(self, name, field.get_default())
        if self.cycle == CycleKind.CUSTOM and self.anchor is None:
            # not the code "required": a ModelForm would replace the message with its own
            problems.append(
                invoices.Problem(
                    "anchor", "Anchor date", None, "a custom cycle needs its anchor date", "anchor_missing"
                )
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


class InvoicePdf(models.Model):
    """The PDF of an issued invoice or credit note, rendered once (by the invoice run's workers, or
    on first need) and served from here by every download and by the invoice e-mail: the database
    is the store every machine shares (tarifa.billing.pdfs). What an issued invoice says never
    changes; what its PDF also shows, the amount still due, does once money is allocated to it, so
    the amount the PDF was rendered with is kept: a PDF whose amount due no longer holds is
    rendered again."""

    invoice = models.OneToOneField(Invoice, primary_key=True, on_delete=models.CASCADE, related_name="stored_pdf")
    data = models.BinaryField("PDF")
    sha256 = models.CharField("SHA-256 of the PDF", max_length=64)
    amount_due = money_field("Amount due shown", null=True, blank=True, default=None)  # None: a credit note
    rendered_at = models.DateTimeField("rendered at")

    class Meta:
        verbose_name = "invoice PDF"
        verbose_name_plural = "invoice PDFs"

    def __str__(self) -> str:
        return f"PDF of invoice {self.invoice_id} ({len(self.data):,} bytes)"
