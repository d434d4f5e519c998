"""Customers (a tree: operator -> resellers -> customers), their Accounts and the seed 003 children
of a customer: IP devices, SIP devices, dialing routes and number translation rules."""

from __future__ import annotations

import re
import secrets
import string
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from django.conf import settings
from django.core import checks
from django.core.exceptions import ValidationError
from django.db import models, router, transaction
from django.db.models.functions import Concat, Substr
from django.db.models.signals import post_delete
from django.dispatch import receiver
from django_countries.fields import CountryField

if TYPE_CHECKING:
    from django.db.models.options import Options

from tarifa import validators as v
from tarifa.customers import choices as c
from tarifa.customers.signals import activation_change_problem
from tarifa.fields import LabeledCharField, LockedDeleteModel, TimestampedModel, choice_field, int_field, money_field

_CODE_ALPHABET = string.ascii_uppercase + string.digits


def service_date_problems(instance: Any, kind: str, instead: str) -> dict[str, ValidationError]:
    """The date rules of every service that carries a plan (docs/recurring-charges.md): the
    cancellation date is not before the activation date, and the activation date does not change
    once charges were posted from it (they are keyed by it: a new date would charge again)."""
    problems: dict[str, ValidationError] = {}
    activation = instance.activation_date
    cancellation = getattr(instance, "cancellation_date", None)
    if activation is not None and cancellation is not None and cancellation < activation:
        problems["cancellation_date"] = v.refuse(
            "Cancellation date",
            cancellation.isoformat(),
            f"must be on or after the activation date {activation.isoformat()}",
            "before_activation",
        )
    problem = activation_change_problem(instance, kind, instead)
    if problem is not None:
        shown = activation.isoformat() if activation is not None else None
        problems["activation_date"] = v.refuse("Activation date", shown, problem, "charged")
    return problems


#: What to do instead of moving the activation date of an account or device that was charged.
CANCEL_INSTEAD = "set a cancellation date and add a new service"


def new_code(prefix: str) -> str:
    """A system generated, never-updated code such as ``C7K2Q9XZ`` (seed 003 "Account Code")."""
    return prefix + "".join(secrets.choice(_CODE_ALPHABET) for _ in range(7))


class LabeledUniqueMixin:
    """Unique-constraint refusals that name the field and the value, like every other rule."""

    if TYPE_CHECKING:
        _meta: Options[Any]  # given by the model this is mixed into

    def unique_error_message(self, model_class: type[models.Model], unique_check: Sequence[str]) -> ValidationError:
        field = self._meta.get_field(unique_check[0]) if len(unique_check) == 1 else None
        if isinstance(field, models.Field):
            value = getattr(self, field.attname)
            label = str(field.verbose_name)  # "IP address", "SIP device login": only the first letter raised
            return v.refuse(label[:1].upper() + label[1:], value, "already in use", "unique")
        return super().unique_error_message(model_class, unique_check)  # type: ignore[misc]


class Customer(LabeledUniqueMixin, TimestampedModel, LockedDeleteModel):
    parent = models.ForeignKey(
        "self",
        verbose_name="parent (reseller or operator)",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="children",
    )
    kind = choice_field("Kind", c.CustomerKind, default=c.CustomerKind.CUSTOMER)
    path = models.CharField(max_length=400, editable=False, db_index=True, default="")
    account_code = models.CharField("account code", max_length=12, unique=True, editable=False)
    customer_type = choice_field("Customer type", c.CustomerType, default=c.CustomerType.LIVE)
    name = LabeledCharField("name", max_length=100, validators=[v.SingleLine("Name")])
    company = LabeledCharField("company", max_length=100, validators=[v.SingleLine("Company")])
    web_username = LabeledCharField(
        "web access user name",
        max_length=30,
        unique=True,
        validators=[v.Alphanumeric("Web access user name")],
    )
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="customer",
        editable=False,
    )
    tariff = models.ForeignKey(
        "rating.Tariff",
        verbose_name="customer tariff",
        on_delete=models.PROTECT,
        related_name="customers",
        error_messages={"null": "Customer tariff is required"},
    )
    billing_type = choice_field("Billing type", c.BillingType, default=c.BillingType.PREPAID)
    currency = LabeledCharField(
        "currency",
        max_length=3,
        default="USD",
        validators=[v.Currency("Currency")],
        help_text="ISO 4217 code in capitals; must be the customer tariff's currency.",
    )
    payment_term_days = int_field("Payment term", 1, 30, "days", default=30)
    credit_limit = money_field("Max credit limit", minimum=0)
    billing_decimals = int_field("Billing decimals", 0, 6, default=4)
    tax_flag = choice_field("VAT/Tax flag", c.TaxFlag, default=c.TaxFlag.NONE)
    tax_rate = money_field("Tax rate (%)", places=4, validators=[v.Between("Tax rate", 0, 100, "%")])
    max_call_sessions = int_field("Maximum call sessions", 1, None, default=10)
    calls_per_second = int_field("Call sessions per second", 1, None, default=5)
    codec_checking = models.BooleanField("codec checking", default=False)
    codecs = models.JSONField("codec list", default=list, blank=True, validators=[])
    call_with_media = models.BooleanField("call with media", default=True)
    deny_loss_routes = models.BooleanField("don't allow calls with loss route", default=False)
    max_call_duration = int_field("Maximum call duration", 1, 86400, "seconds", default=7200)
    daily_spending_limit = money_field("Daily spending limit", minimum=0, null=True, blank=True, default=None)
    monthly_spending_limit = money_field("Monthly spending limit", minimum=0, null=True, blank=True, default=None)
    time_zone = LabeledCharField(
        "time zone",
        max_length=64,
        default="UTC",
        validators=[v.validate_time_zone],
        help_text="The customer's days and months (daily and monthly spending limits) begin at midnight here.",
    )
    email = LabeledCharField("email address", max_length=30, validators=[v.Email("Email address", 30)])
    address = LabeledCharField("address", max_length=200, blank=True)
    phone = LabeledCharField("phone number", max_length=32)
    country = CountryField(
        "country",
        error_messages={"invalid_choice": "Country %(value)r is refused: must be an ISO 3166 country code"},
        blank_label="(choose a country)",  # required, never preselected (customers/admin.py)
    )
    pin = LabeledCharField(
        "PIN / postal code", max_length=10, blank=True, validators=[v.PostalCode("PIN / postal code")]
    )
    status = choice_field("Status", c.Status, default=c.Status.ACTIVE)
    balance = money_field("Balance", editable=False)

    class Meta:
        ordering = ["company", "name"]
        indexes = [models.Index(fields=["status"]), models.Index(fields=["company"])]

    def __str__(self) -> str:
        return f"{self.company} ({self.account_code})"

    def clean(self) -> None:
        super().clean()
        errors: dict[str, list[ValidationError]] = {}
        try:
            v.validate_phone("Phone number", self.phone, str(self.country) if self.country else None)
        except ValidationError as exc:
            errors.setdefault("phone", []).append(exc)
        if self.codecs:
            try:
                v.CodecList("Codec list")(self.codecs)
            except ValidationError as exc:
                errors.setdefault("codecs", []).append(exc)
        if self.kind == c.CustomerKind.OPERATOR and self.parent_id:
            errors.setdefault("parent", []).append(
                v.refuse("Parent", str(self.parent), "an operator is the root of the tree and has no parent")
            )
        if self.kind != c.CustomerKind.OPERATOR and not self.parent_id:
            errors.setdefault("parent", []).append(
                v.refuse("Parent", None, f"a {self.kind} must belong to an operator or a reseller")
            )
        parent = self.parent
        if parent is not None and parent.kind not in (c.CustomerKind.OPERATOR, c.CustomerKind.RESELLER):
            errors.setdefault("parent", []).append(
                v.refuse("Parent", str(self.parent), "only an operator or a reseller can own customers")
            )
        if self.pk and parent is not None and self._under_own_subtree(parent.path):
            errors.setdefault("parent", []).append(
                v.refuse("Parent", str(self.parent), "a customer cannot be placed under itself or its own subtree")
            )
        if (
            self.pk
            and self.kind not in (c.CustomerKind.OPERATOR, c.CustomerKind.RESELLER)
            and Customer.objects.filter(parent_id=self.pk).exists()
        ):
            errors.setdefault("kind", []).append(
                v.refuse("Kind", self.kind, "a customer that owns customers must stay an operator or a reseller")
            )
        if self.tariff_id and self.currency and self.tariff.currency != self.currency:
            errors.setdefault("currency", []).append(
                v.refuse(
                    "Currency",
                    self.currency,
                    f"must be the customer tariff's currency: tariff {self.tariff.name!r} is in {self.tariff.currency}",
                    "currency_mismatch",
                )
            )
        held = self._money_held_in_other_currency()
        if held:
            errors.setdefault("currency", []).append(
                v.refuse(
                    "Currency",
                    self.currency,
                    f"cannot change while the customer holds money in "
                    f"{held[0]} ({held[1]}): its ledger stays in one currency",
                    "currency_in_use",
                )
            )
        if self.pk and self.currency:
            other = (
                Account.objects.filter(customer_id=self.pk, tariff__isnull=False)
                .exclude(tariff__currency=self.currency)
                .select_related("tariff")
                .first()
            )
            if other is not None and other.tariff is not None:
                errors.setdefault("currency", []).append(
                    v.refuse(
                        "Currency",
                        self.currency,
                        f"account {other.name!r} has tariff {other.tariff.name!r} in {other.tariff.currency}",
                        "currency_mismatch",
                    )
                )
        if errors:
            raise ValidationError(errors)

    def _money_held_in_other_currency(self) -> tuple[str, str] | None:
        """(stored currency, what holds money in it) when this edit changes the currency of a
        customer that already has a ledger: balances, transactions and invoices are amounts in the
        stored currency, and relabelling them would turn USD 121.31 into EUR 121.31."""
        if not self.pk or not self.currency:
            return None
        stored = Customer._base_manager.filter(pk=self.pk).values_list("currency", "balance").first()
        if stored is None or stored[0] == self.currency:
            return None
        from tarifa.core.deck import format_money

        currency, balance = stored
        if balance:
            return currency, f"balance {format_money(balance)}"
        account = Account.objects.filter(customer_id=self.pk).exclude(balance=0).values_list("name", "balance").first()
        if account is not None:
            return currency, f"account {account[0]!r} has balance {format_money(account[1])}"

        # the billing app's reverse relations: billing builds on customers, not the other way round
        count = self.transactions.count()
        if count:
            return currency, f"{count} transaction{'s' if count != 1 else ''}"
        count = self.invoices.count()
        if count:
            return currency, f"{count} invoice{'s' if count != 1 else ''}"
        return None

    def _under_own_subtree(self, parent_path: str) -> bool:
        stored = Customer._base_manager.filter(pk=self.pk).values_list("path", flat=True).first() if self.pk else None
        return bool(stored) and parent_path.startswith(stored or "")

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Saves the row and, when it moved, rewrites the paths of its whole subtree in the same
        transaction (one UPDATE): a reseller's subtree query (``path LIKE 'path%'``) must never
        keep a customer that moved away, nor miss one that moved in."""
        if not self.account_code:
            self.account_code = new_code("C")
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "parent" not in update_fields and "path" not in update_fields:
            super().save(*args, **kwargs)
            return
        using = kwargs.get("using") or router.db_for_write(Customer, instance=self)
        with transaction.atomic(using=using):
            manager = Customer._base_manager.using(using)
            old_path = (
                manager.select_for_update().filter(pk=self.pk).values_list("path", flat=True).first()
                if self.pk
                else None
            )
            # The new parent's path read under its row lock: it cannot be moved meanwhile.
            parent_path = (
                manager.select_for_update().filter(pk=self.parent_id).values_list("path", flat=True).get()
                if self.parent_id
                else "/"
            )
            if old_path and parent_path.startswith(old_path):
                raise ValidationError(
                    {
                        "parent": v.refuse(
                            "Parent", str(self.parent), "a customer cannot be placed under itself or its own subtree"
                        )
                    }
                )
            self.path = parent_path + self.account_code + "/"
            if update_fields is not None:
                kwargs["update_fields"] = {*update_fields, "path"}
            super().save(*args, **kwargs)
            if old_path and old_path != self.path:
                manager.filter(path__startswith=old_path).exclude(pk=self.pk).update(
                    path=Concat(
                        models.Value(self.path), Substr("path", len(old_path) + 1), output_field=models.CharField()
                    )
                )

    def in_subtree(self, via: str = "") -> models.Q:
        """The condition "the customer reached through ``via`` is this one or below it" (``via``
        ``"customer"`` for a CDR's customer, ``""`` for a customer itself): the one statement of the
        subtree rule, which every listing of a reseller's data filters by. The path ends with ``/``,
        so ``/C1/`` never matches ``/C10/``; ``save`` keeps the paths of a moved subtree current."""
        lookup = f"{via}__path__startswith" if via else "path__startswith"
        return models.Q(**{lookup: self.path})

    def subtree(self) -> models.QuerySet[Customer]:
        """This customer and everything below it (what a reseller may see)."""
        return Customer.objects.filter(self.in_subtree())


class Account(LabeledUniqueMixin, TimestampedModel, LockedDeleteModel):
    """An end point that places or receives calls, with its seed 001 settings."""

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="accounts")
    account_code = models.CharField("account code", max_length=12, unique=True, editable=False)
    name = LabeledCharField("name", max_length=100)
    kind = choice_field("Kind", c.AccountKind, default=c.AccountKind.SIP_USER)
    identifier = LabeledCharField(
        "identifier",
        max_length=64,
        blank=True,
        help_text="Trunk name or PBX extension the switch reports for this account.",
    )
    pbx = models.ForeignKey(
        "customers.IpDevice",
        verbose_name="PBX (IP device)",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="extensions",
        help_text="For a PBX extension: the PBX it belongs to (its IP device). Empty: any PBX of this customer "
        "(its IP devices, trunks or tenant code in the record).",
    )
    tariff = models.ForeignKey(
        "rating.Tariff",
        verbose_name="tariff (empty: the customer's)",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="accounts",
    )
    service_plan = models.ForeignKey(
        "billing.ServicePlan", null=True, blank=True, on_delete=models.PROTECT, related_name="accounts"
    )
    activation_date = models.DateField("activation date", null=True, blank=True)
    cancellation_date = models.DateField(
        "cancellation date",
        null=True,
        blank=True,
        help_text="The first day the service plan is no longer charged.",
    )
    blocked_for_unpaid = models.BooleanField(
        "blocked for unpaid charges",
        default=False,
        editable=False,
        help_text="Set when a charge of a blocking plan cannot be paid; cleared when a payment covers the balance.",
    )
    balance_mode = choice_field("Balance mode", c.BalanceMode, default=c.BalanceMode.SHARED)
    balance = money_field("Balance", editable=False)
    max_channels = int_field("Maximum channels", 1, None, null=True, blank=True)
    status = choice_field("Status", c.Status, default=c.Status.ACTIVE)

    # Account routing (seed 001)
    domestic_route = choice_field("Domestic routing", c.ROUTE_CHOICE_LABELS, default=c.RouteChoice.VALUE)
    international_route = choice_field("International routing", c.ROUTE_CHOICE_LABELS, default=c.RouteChoice.VALUE)
    tollfree_route = choice_field("Toll-free routing", c.ROUTE_CHOICE_LABELS, default=c.RouteChoice.VALUE)
    tollfree_carrier = choice_field("Toll-free carrier", c.TollFreeCarrier, default=c.TollFreeCarrier.SERVER_DEFAULT)

    # Restrictions (seed 001)
    allow_411 = models.BooleanField("allow 411 dialing", default=False)
    allow_international = models.BooleanField("allow international calls", default=False)
    allow_premium_rate = models.BooleanField(
        "allow premium-rate calls",
        default=False,
        help_text="Premium-rate numbers (US 1-900, UK 09, ...: where toll fraud goes). Off for new accounts; "
        "abroad, the international restrictions apply as well.",
    )
    max_call_time_domestic = int_field("Max call time for domestic calls", 1, 86400, "seconds", null=True, blank=True)
    max_call_time_international = int_field(
        "Max call time for international calls", 1, 86400, "seconds", null=True, blank=True
    )
    international_rate_cap = money_field(
        "International per-minute rate cap", minimum=0, null=True, blank=True, default=None
    )
    allowed_countries = models.JSONField(
        "allowed countries",
        default=list,
        blank=True,
        help_text="ISO 3166 codes; empty allows every country (international calls still need the switch above).",
        validators=[v.CountryList("Allowed countries")],
    )

    # General (seed 001)
    e911_caller_id = LabeledCharField("e911 default caller ID", max_length=20, blank=True)
    dialing_mode = choice_field("Dialing mode", c.DIALING_MODE_LABELS, default=c.DialingMode.NANP)
    caller_id_number = LabeledCharField("caller ID number", max_length=20, blank=True)
    voicemail_enabled = models.BooleanField("voicemail", default=False)
    music_on_hold = choice_field("Music on hold", c.MusicOnHold, default=c.MusicOnHold.BLEEP)

    # Security (seed 001)
    sip_password = LabeledCharField(
        "main SIP/IAX password",
        max_length=64,
        blank=True,
        validators=[v.SipPassword("Main SIP/IAX password")],
        help_text="8 to 64 characters with a capital letter, a digit and a special character; required for SIP "
        "user and device accounts.",
    )
    ip_restriction = models.JSONField(
        "IP restriction",
        default=list,
        blank=True,
        help_text="Addresses or CIDR ranges calls may come from; empty: any.",
        validators=[v.IpNetworkList("IP restriction")],
    )
    pop_restriction = models.ManyToManyField(
        "routing.Pop",
        verbose_name="POP restriction",
        blank=True,
        related_name="restricted_accounts",
        help_text="POPs calls may come from; none selected: any.",
    )

    # Inbound (seed 001)
    inbound_protocol = choice_field("Protocol for inbound DIDs", c.InboundProtocol, default=c.InboundProtocol.SIP)
    device_type = choice_field("Device type", c.DeviceType, default=c.DeviceType.IP_PHONE)

    # Notifications (seed 001)
    balance_threshold = money_field(
        "Balance threshold",
        null=True,
        blank=True,
        default=None,
        places=2,
        help_text="Between 1 and 200; empty disables the low-balance e-mail.",
        validators=[v.Between("Balance threshold", 1, 200)],
    )
    notification_emails = LabeledCharField(
        "notification e-mails", max_length=500, blank=True, validators=[v.EmailList("Notification e-mails")]
    )

    # Default DID routing (seed 001)
    default_did_plan = models.ForeignKey(
        "dids.DidPlan",
        verbose_name="default DID plan",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    cnam_lookup = models.BooleanField("caller ID name lookup", default=False)
    did_pop = models.ForeignKey(
        "routing.Pop", verbose_name="DID POP", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    # Advanced (seed 001)
    nat = models.BooleanField("NAT", default=True)
    dtmf_mode = choice_field("DTMF mode", c.DtmfMode, default=c.DtmfMode.AUTO)
    allowed_codecs = models.JSONField(
        "allowed codecs",
        default=list,
        blank=True,
        help_text="Empty: allow all.",
    )
    encrypted_sip = models.BooleanField("encrypted SIP traffic (TLS/SRTP)", default=False)
    max_expiry = int_field("Max expiry", 60, 3600, "seconds", default=3600)
    rtp_timeout = int_field("RTP time-out", 1, 3600, "seconds", default=60)
    rtp_hold_timeout = int_field("RTP hold time-out", 1, 3600, "seconds", default=600)

    class Meta:
        ordering = ["customer", "name"]
        indexes = [models.Index(fields=["kind", "identifier"])]

    def __str__(self) -> str:
        return f"{self.name} ({self.account_code})"

    def clean(self) -> None:
        super().clean()
        errors: dict[str, list[ValidationError]] = {}
        if self.allowed_codecs:
            try:
                v.CodecList("Allowed codecs")(self.allowed_codecs)
            except ValidationError as exc:
                errors.setdefault("allowed_codecs", []).append(exc)
        if (
            self.rtp_timeout is not None
            and self.rtp_hold_timeout is not None
            and self.rtp_timeout > self.rtp_hold_timeout
        ):
            errors.setdefault("rtp_timeout", []).append(
                v.refuse(
                    "RTP time-out",
                    self.rtp_timeout,
                    f"must be equal to or lower than the RTP hold time-out ({self.rtp_hold_timeout})",
                    "rtp_order",
                )
            )
        if self.kind in REGISTERING_KINDS and not self.sip_password:
            errors.setdefault("sip_password", []).append(
                ValidationError(
                    "Main SIP/IAX password is required for a %(kind)s account",
                    code="required",
                    params={"kind": self.get_kind_display()},
                )
            )
        tariff = self.tariff if self.tariff_id else None
        if tariff is not None and self.customer_id and tariff.currency != self.customer.currency:
            errors.setdefault("tariff", []).append(
                v.refuse(
                    "Tariff",
                    tariff.name,
                    f"must be in the customer's currency {self.customer.currency} (the tariff is in {tariff.currency})",
                    "currency_mismatch",
                )
            )
        for name, label in (("e911_caller_id", "e911 default caller ID"), ("caller_id_number", "Caller ID number")):
            value = getattr(self, name)
            if value:
                try:
                    v.Digits(label, 3, 15)(value.lstrip("+"))
                except ValidationError as exc:
                    errors.setdefault(name, []).append(exc)
        for name, problem in self._service_problems().items():
            errors.setdefault(name, []).append(problem)
        for name, problem in service_date_problems(self, "account", CANCEL_INSTEAD).items():
            errors.setdefault(name, []).append(problem)
        if errors:
            raise ValidationError(errors)

    def _service_problems(self) -> dict[str, ValidationError]:
        """The trunk and extension rules of docs/services.md: the identifier a switch reports must
        name this account and no other in its scope (a trunk: the whole system; an extension: its
        PBX, or its customer's PBXs when it has none)."""
        problems: dict[str, ValidationError] = {}
        kind, ident = self.kind, (self.identifier or "").strip()
        if self.pbx_id and kind != c.AccountKind.EXTENSION:
            problems["pbx"] = v.refuse("PBX (IP device)", str(self.pbx), "only a PBX extension belongs to a PBX")
        if kind not in (c.AccountKind.TRUNK, c.AccountKind.EXTENSION):
            return problems
        label = "Trunk name" if kind == c.AccountKind.TRUNK else "Extension"
        if not ident:
            problems["identifier"] = ValidationError(
                "%(label)s is required for a %(kind)s account (the switch reports it)",
                code="required",
                params={"label": label, "kind": self.get_kind_display()},
            )
            return problems
        others = Account.objects.filter(kind=kind, identifier=ident).exclude(pk=self.pk)
        if kind == c.AccountKind.TRUNK:
            if others.exists():  # the other trunk may be another tenant's: not named
                problems["identifier"] = v.refuse("Trunk name", ident, "already in use by another trunk", "unique")
            return problems
        pbx = self.pbx if self.pbx_id else None
        customer = self.customer if self.customer_id else None
        if pbx is not None and customer is not None:
            owner = pbx.account.customer
            if not customer.path or not customer.path.startswith(owner.path):
                problems["pbx"] = v.refuse(
                    "PBX (IP device)",
                    pbx.address,
                    f"belongs to {owner}: a PBX must be the customer's own or its reseller's/operator's",
                    "other_tenant",
                )
                return problems
        # in one scope: the same PBX, or (no PBX) the same customer's PBX-less extensions; an
        # extension without a PBX also meets every extension of its customer on any PBX
        scope = others.filter(pbx=pbx) if pbx is not None else others.filter(customer_id=self.customer_id)
        if pbx is not None:
            scope = scope | others.filter(customer_id=self.customer_id, pbx__isnull=True)
        where = f"PBX {pbx.address}" if pbx is not None else "this customer's PBXs"
        if scope.exists():  # the other holder may be another tenant of a hosted PBX: not named
            problems["identifier"] = v.refuse("Extension", ident, f"already in use on {where}", "unique")
        # the customer's virtual numbers through the reverse relation (dids sits above customers)
        elif Account.objects.filter(customer_id=self.customer_id, virtual_numbers__number=ident).exists():
            problems["identifier"] = v.refuse("Extension", ident, "already a virtual number of this customer", "unique")
        return problems

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self.account_code:
            self.account_code = new_code("A")
        super().save(*args, **kwargs)


#: Account kinds that register with a password (the others are recognised by address, trunk or number).
REGISTERING_KINDS = (c.AccountKind.SIP_USER, c.AccountKind.DEVICE)


@receiver(post_delete, sender=Customer, dispatch_uid="customers.delete_login")
def _delete_login(sender: type[Customer], instance: Customer, **kwargs: Any) -> None:
    """A deleted customer takes its portal log-in along (in the same transaction): a login left
    behind still holds the web user name and could still sign in. Staff users are never removed."""
    if instance.user_id:
        from django.contrib.auth import get_user_model

        get_user_model()._base_manager.using(kwargs.get("using")).filter(
            pk=instance.user_id, is_staff=False, is_superuser=False
        ).delete()


class AccountChild(TimestampedModel):
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="%(class)ss")
    max_call_sessions = int_field("Maximum call sessions", 1, None, null=True, blank=True)
    calls_per_second = int_field("Call sessions per second", 1, None, null=True, blank=True)
    status = choice_field("Status", c.Status, default=c.Status.ACTIVE)
    service_plan = models.ForeignKey(
        "billing.ServicePlan",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    activation_date = models.DateField("activation date", null=True, blank=True)
    cancellation_date = models.DateField(
        "cancellation date",
        null=True,
        blank=True,
        help_text="The first day the service plan is no longer charged.",
    )

    class Meta:
        abstract = True

    #: the service kind of its charges (tarifa.billing.choices.ServiceKind)
    service_kind: ClassVar[str] = ""

    def clean(self) -> None:
        super().clean()
        problems = service_date_problems(self, self.service_kind, CANCEL_INSTEAD)
        if problems:
            raise ValidationError(problems)


class IpDevice(LabeledUniqueMixin, AccountChild):
    """Seed 003 "Customer IP's Devices": traffic from this address is billed to the account."""

    address = models.GenericIPAddressField(
        "IP address",
        unique=True,
        error_messages={"invalid": "IP address %(value)r is refused: must be an IPv4 or IPv6 address"},
    )
    description = LabeledCharField("description", max_length=200, blank=True)
    dial_prefix = LabeledCharField(
        "dial prefix",
        max_length=15,
        blank=True,
        validators=[v.DialString("Dial prefix")],
        help_text="Tech prefix the customer dials before numbers: digits, * and #.",
    )

    service_kind: ClassVar[str] = "ip_device"

    class Meta:
        verbose_name = "IP device"
        ordering = ["address"]

    def __str__(self) -> str:
        return self.address


class SipDevice(LabeledUniqueMixin, AccountChild):
    """Seed 003 "Customer SIP Users Devices"."""

    login = LabeledCharField(
        "SIP device login",
        max_length=64,
        unique=True,
        validators=[v.Alphanumeric("SIP device login")],
        help_text="Letters and digits (seed 003).",
    )
    secret = LabeledCharField(
        "SIP device secret",
        max_length=64,
        validators=[v.SipSecret("SIP device secret")],
        help_text=f"{v.SIP_SECRET_MIN} to 64 characters with a capital letter, a small letter and a digit.",
    )
    extension = LabeledCharField(
        "extension", max_length=20, blank=True, validators=[v.Digits("Extension", 1, 20)], help_text="Digits only."
    )
    voicemail = models.BooleanField("voicemail", default=False)
    voicemail_email = LabeledCharField(
        "e-mail address for voicemail", max_length=254, blank=True, validators=[v.Email("E-mail address for voicemail")]
    )
    ip_address = models.GenericIPAddressField(
        "IP address",
        null=True,
        blank=True,
        error_messages={"invalid": "IP address %(value)r is refused: must be an IPv4 or IPv6 address"},
    )

    service_kind: ClassVar[str] = "sip_device"

    class Meta:
        verbose_name = "SIP device"
        ordering = ["login"]

    def __str__(self) -> str:
        return self.login


class DialingRoute(TimestampedModel):
    """Seed 003 "Dialing Routes": a dialing pattern of the customer sent to a routing group."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="dialing_routes")
    routing_group = models.ForeignKey("routing.RoutingGroup", verbose_name="route", on_delete=models.PROTECT)
    dialing_pattern = LabeledCharField(
        "dialing pattern",
        max_length=100,
        validators=[v.Regex("Dialing pattern")],
        help_text="Regular expression on the normalised number, e.g. ^44.",
    )
    priority = int_field("Priority", 0, 1000, default=100)

    class Meta:
        ordering = ["customer", "priority"]

    def __str__(self) -> str:
        return f"{self.dialing_pattern} -> {self.routing_group}"


class TranslationRule(TimestampedModel):
    """Ordered regular-expression rewrite of a source or destination number (seed 003).

    A rule belongs to a customer (applied on the way in) or to a connection (on the way out).
    ``dst_prefix`` makes the rule conditional on the destination prefix ("change CLI based on
    DST prefix").
    """

    kind = choice_field("Kind", c.TranslationKind, max_length=20)
    customer = models.ForeignKey(
        Customer, null=True, blank=True, on_delete=models.CASCADE, related_name="translation_rules"
    )
    connection = models.ForeignKey(
        "routing.Connection", null=True, blank=True, on_delete=models.CASCADE, related_name="translation_rules"
    )
    priority = int_field("Priority", 0, 1000, default=100)
    match = LabeledCharField("match (regular expression)", max_length=200, validators=[v.Regex("Match")])
    replace = LabeledCharField("replace with", max_length=200, blank=True, help_text=r"May use \1 groups.")
    dst_prefix = LabeledCharField("only for destination prefix", max_length=15, blank=True)
    description = LabeledCharField("description", max_length=200, blank=True)
    active = models.BooleanField("active", default=True)

    class Meta:
        ordering = ["kind", "priority", "id"]
        constraints = [
            models.CheckConstraint(
                name="translation_rule_has_one_owner",
                condition=(
                    models.Q(customer__isnull=False, connection__isnull=True)
                    | models.Q(customer__isnull=True, connection__isnull=False)
                ),
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind}: s/{self.match}/{self.replace}/"

    def clean(self) -> None:
        super().clean()
        if bool(self.customer_id) == bool(self.connection_id):
            raise ValidationError(
                {"customer": v.refuse("Owner", None, "a rule belongs to exactly one customer or one connection")}
            )
        if self.dst_prefix:
            try:
                v.Digits("Only for destination prefix", 1, 15)(self.dst_prefix)
            except ValidationError as exc:
                raise ValidationError({"dst_prefix": exc}) from None
        self._check_replacement()

    def _check_replacement(self) -> None:
        """The replacement must be usable with this pattern (``\\2`` needs two groups...):
        a rule that cannot be applied is refused here rather than skipped at call time."""
        from tarifa.core.translate import problem

        try:
            re.compile(self.match or "")
        except (re.error, RecursionError, OverflowError):
            return  # the Match field's own validator names that problem
        why = problem(self.match or "", self.replace or "")
        if why:
            raise ValidationError(
                {
                    "replace": v.refuse(
                        "Replace with", self.replace or "", f"{why} (pattern {self.match!r})", "replacement"
                    )
                }
            )


@checks.register()
def broken_translation_rules(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Rules stored before replacements were checked may not be applicable (``\\2`` with one
    group...). Calls skip them (core/translate.py); this warning (``tarifa manage check``) lists
    them so that someone fixes them — the next edit of such a rule is refused until it is fixed."""
    from django.db import DatabaseError

    from tarifa.core.translate import problem

    found: list[checks.CheckMessage] = []
    try:
        for rule in TranslationRule.objects.filter(active=True).only("pk", "match", "replace").order_by("pk"):
            why = problem(rule.match, rule.replace)
            if why:
                found.append(
                    checks.Warning(
                        f"Translation rule {rule.pk} s/{rule.match}/{rule.replace}/ cannot be applied: {why}; "
                        "calls skip it until it is fixed",
                        hint="Edit the rule in the back office (Translation rules) and correct its replacement.",
                        obj=f"TranslationRule {rule.pk}",
                        id="customers.W001",
                    )
                )
    except DatabaseError:
        return []  # no database yet (before migrate): nothing stored to check
    return found


# --- Issuer identity and white label (issues 15 and 16): who an invoice or a portal page says it is from.


class BrandingFields(models.Model):
    """What an invoice (and the portal) prints about the party that bills: name, address, contact,
    tax id, payment instructions and a logo. The logo is kept in the database (app servers stay
    stateless), checked by :func:`tarifa.core.images.logo_problem` (PNG or JPEG, size, dimensions)."""

    address = models.TextField("address", blank=True, max_length=400, help_text="As printed, one line per line.")
    tax_id = LabeledCharField("tax id", max_length=40, blank=True, help_text="VAT or company registration number.")
    email = LabeledCharField("e-mail", max_length=100, blank=True, validators=[v.Email("E-mail", 100)])
    phone = LabeledCharField("phone", max_length=40, blank=True)
    website = LabeledCharField("website", max_length=200, blank=True)
    payment_instructions = models.TextField(
        "payment instructions",
        blank=True,
        max_length=1000,
        help_text="Printed at the foot of invoices: bank account, IBAN / BIC, reference to quote.",
    )
    logo = models.BinaryField("logo", blank=True, default=b"", editable=False)
    logo_type = models.CharField("logo type", max_length=20, blank=True, default="", editable=False)

    class Meta:
        abstract = True

    def clean(self) -> None:
        super().clean()
        if self.logo:
            from tarifa.core.images import logo_problem

            problem = logo_problem(bytes(self.logo))
            if problem:
                raise ValidationError({"logo": v.refuse("Logo", f"({len(self.logo)} bytes)", problem, "logo")})


class IssuerProfile(BrandingFields, TimestampedModel):
    """The operator's own details on its invoices: one row (:meth:`current`). Without it, invoices
    show the operator customer's company, address, e-mail and phone."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1, editable=False)
    name = LabeledCharField("name", max_length=100, help_text="The operator's legal or trading name.")

    class Meta:
        verbose_name = "issuer profile"

    def __str__(self) -> str:
        return self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.id = 1  # one row: the operator has one identity
        super().save(*args, **kwargs)

    @classmethod
    def current(cls) -> IssuerProfile | None:
        return cls.objects.filter(pk=1).first()


class ResellerBranding(BrandingFields, TimestampedModel):
    """A reseller's white label: its customers' invoices (and portal) show this name, logo and address,
    never the operator's."""

    reseller = models.OneToOneField(
        Customer,
        on_delete=models.CASCADE,
        related_name="branding",
        limit_choices_to={"kind": c.CustomerKind.RESELLER},
    )
    display_name = LabeledCharField(
        "display name", max_length=100, blank=True, help_text="Empty: the reseller's company name."
    )

    class Meta:
        verbose_name = "reseller branding"
        verbose_name_plural = "reseller branding"

    def __str__(self) -> str:
        return self.display_name or str(self.reseller)

    def clean(self) -> None:
        super().clean()
        if self.reseller_id and self.reseller.kind != c.CustomerKind.RESELLER:
            raise ValidationError(
                {"reseller": v.refuse("Reseller", str(self.reseller), "must be a customer of kind reseller", "kind")}
            )
