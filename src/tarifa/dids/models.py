"""The DID pool (seed 000), DID plans, and virtual numbers sharing a primary DID (seed 002)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models

from tarifa import validators as v
from tarifa.core.dids import (
    DidState,
    NumberRefused,
    did_date_problem,
    effective_status,
    parse_number,
    parts_of_stored,
)
from tarifa.core.recurring import FEE_MAX
from tarifa.customers.models import LabeledUniqueMixin
from tarifa.customers.signals import activation_change_problem, charged_span
from tarifa.dids.choices import DidDestination, DidStatus, ShortCallMode
from tarifa.fields import LabeledCharField, TimestampedModel, choice_field, int_field, money_field


class DidPlan(LabeledUniqueMixin, TimestampedModel):
    name = LabeledCharField("name", max_length=100, unique=True)
    monthly_fee = money_field("Monthly fee", minimum=0, maximum=FEE_MAX)
    setup_fee = money_field("Setup fee", minimum=0, maximum=FEE_MAX)
    included_minutes = int_field("Included inbound minutes", 0, None, default=0)
    inbound_rate = money_field("Inbound rate (per minute)", minimum=0)
    inbound_interval_1 = int_field("Inbound first interval", 1, 86400, "seconds", default=60)
    inbound_interval_n = int_field("Inbound next interval", 1, 86400, "seconds", default=60)
    description = LabeledCharField("description", max_length=200, blank=True)
    offered_for_signup = models.BooleanField(
        "offered for online sign-up",
        default=False,
        help_text="Numbers chosen on the portal's sign-up page are assigned with this plan (the first such plan "
        "by name); no plan offered: the sign-up page offers no numbers.",
    )
    # Origination (docs/origination.md): the inbound rate above is the blended rate; origin rates
    # (OriginRate, inline) tier it by the caller's prefix; toll-free numbers, LATA billing,
    # payphone surcharges and short-call penalties are the plan's settings below.
    toll_free_rate = money_field(
        "Toll-free rate (per minute)",
        minimum=0,
        null=True,
        blank=True,
        default=None,
        help_text="Calls to the plan's toll-free numbers from an origin without a toll-free origin rate; "
        "empty: the inbound rate.",
    )
    lata_billing = models.BooleanField(
        "LATA-based billing",
        default=False,
        help_text="Price calls between two US numbers found in the NPA-NXX table by LATA and state.",
    )
    lata_intra_intrastate = money_field("Intra-LATA intrastate rate (per minute)", minimum=0)
    lata_inter_intrastate = money_field("Inter-LATA intrastate rate (per minute)", minimum=0)
    lata_interstate = money_field("Interstate rate (per minute)", minimum=0)
    lata_intra_interstate = money_field(
        "Intra-LATA interstate rate (per minute)",
        minimum=0,
        null=True,
        blank=True,
        default=None,
        help_text="A call within one LATA that crosses a state line; empty: the interstate rate.",
    )
    payphone_surcharge = money_field(
        "Payphone surcharge (per call)",
        minimum=0,
        help_text="Added to every answered call from a payphone origin (Payphone origins).",
    )
    short_call_seconds = int_field(
        "Short call: shorter than", 0, 3600, "seconds", default=0, help_text="0: no short-call penalty."
    )
    short_call_threshold = money_field(
        "Short call: share above (%)",
        minimum=0,
        maximum=100,
        places=2,
        help_text="The penalty applies when short calls are more than this share of a customer's answered "
        "calls to the plan's numbers in a month.",
    )
    short_call_penalty = money_field("Short call penalty", minimum=0)
    short_call_mode = choice_field("Short call penalty mode", ShortCallMode, default=ShortCallMode.PER_CALL)

    class Meta:
        verbose_name = "DID plan"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Did(LabeledUniqueMixin, TimestampedModel):
    number = LabeledCharField(
        "number (E.164 digits)", max_length=15, unique=True, validators=[v.Digits("Number", 4, 15)]
    )
    country = LabeledCharField("country", max_length=2, blank=True, editable=False)
    area_code = LabeledCharField(
        "area code",
        max_length=8,
        blank=True,
        editable=False,
        db_index=True,
        help_text="From libphonenumber: the geographic area code, else the mobile or toll-free code.",
    )
    local_number = LabeledCharField("local number", max_length=15, blank=True, editable=False)
    vendor = models.ForeignKey(
        "routing.Vendor",
        verbose_name="bought from",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="dids",
    )
    monthly_cost = money_field("Monthly cost", minimum=0)
    status = choice_field("Status", DidStatus, default=DidStatus.AVAILABLE)
    quarantine_until = models.DateField(
        "quarantined until",
        null=True,
        blank=True,
        help_text="A released number is available again from this day (TARIFA_DID_QUARANTINE_DAYS after release).",
    )
    account = models.ForeignKey(
        "customers.Account", null=True, blank=True, on_delete=models.PROTECT, related_name="dids"
    )
    plan = models.ForeignKey(DidPlan, null=True, blank=True, on_delete=models.PROTECT, related_name="dids")
    activation_date = models.DateField("activation date", null=True, blank=True)
    cost_center = LabeledCharField("location / cost center", max_length=100, blank=True)
    out_payment_rate = money_field("Out-payment rate (per minute)", minimum=0)
    mac_address = LabeledCharField(
        "MAC address",
        max_length=17,
        blank=True,
        validators=[v.MacAddress("MAC address")],
        help_text="Six hexadecimal pairs, e.g. 00:1A:2B:3C:4D:5E.",
    )
    username = LabeledCharField(
        "username",
        max_length=64,
        blank=True,
        validators=[v.Alphanumeric("Username")],
        help_text="The device's SIP user name for this number, if it has its own (letters and digits).",
    )
    password = LabeledCharField(
        "password",
        max_length=64,
        blank=True,
        validators=[v.SipSecret("Password")],
        help_text=f"The device's SIP password for this number: {v.SIP_SECRET_MIN} to 64 characters with a capital "
        "letter, a small letter and a digit. Never exported.",
    )
    destination = choice_field("Route calls to", DidDestination, default=DidDestination.ACCOUNT)
    sip_device = models.ForeignKey(
        "customers.SipDevice", null=True, blank=True, on_delete=models.SET_NULL, related_name="dids"
    )
    forward_number = LabeledCharField("forward number", max_length=15, blank=True)

    class Meta:
        verbose_name = "DID"
        ordering = ["number"]
        indexes = [models.Index(fields=["country", "area_code", "status"], name="did_search")]

    def __str__(self) -> str:
        return self.number

    def clean(self) -> None:
        super().clean()
        errors = {}
        if self.pk is None and self.number:  # a new number: the import's rule (old stored ones may predate it)
            try:
                parse_number(self.number)
            except NumberRefused as exc:
                errors["number"] = v.refuse("Number", self.number, str(exc))
        if self.status == DidStatus.ASSIGNED and not self.account_id:
            errors["account"] = v.refuse("Account", None, "an assigned DID needs an account")
        if self.account_id and self.status not in (DidStatus.ASSIGNED, DidStatus.DISABLED, DidStatus.PORTING):
            errors["status"] = v.refuse(
                "Status", self.status, "a DID with an account must be assigned, porting or disabled"
            )
        if self.status == DidStatus.QUARANTINED and self.quarantine_until is None:
            errors["quarantine_until"] = v.refuse("Quarantined until", None, "a quarantined DID needs the day it ends")
        if self.activation_date is not None and (problem := did_date_problem(self.activation_date)) is not None:
            errors["activation_date"] = v.refuse("Activation date", self.activation_date.isoformat(), problem)
        if self.destination == DidDestination.FORWARD:
            try:
                v.Digits("Forward number", 3, 15)(self.forward_number)
            except ValidationError as exc:
                errors["forward_number"] = exc
        if self.destination == DidDestination.SIP_DEVICE and not self.sip_device_id:
            errors["sip_device"] = v.refuse("SIP device", None, "choose the SIP device calls go to")
        if self.status == DidStatus.ASSIGNED:
            if not self.plan_id:
                errors["plan"] = v.refuse("Plan", None, "an assigned DID needs a DID plan (its monthly fee and rates)")
            if self.activation_date is None:
                errors["activation_date"] = v.refuse(
                    "Activation date", None, "an assigned DID needs the day its service starts"
                )
        if "activation_date" not in errors:
            errors.update(self._activation_problems())
        if errors:
            raise ValidationError(errors)

    def _activation_problems(self) -> dict[str, ValidationError]:
        """The charged days a new or moved activation date may not reach back into: the ones
        charged from the stored activation date (moving it would charge them again) and, for an
        assignment, the ones charged to the number's previous owners (two customers would pay the
        same days). What was charged is the services layer's (:mod:`tarifa.customers.signals`)."""
        problem = activation_change_problem(self, "did", "release the number and assign it again")
        activation = self.activation_date
        shown = activation.isoformat() if activation is not None else None
        if problem is not None:
            return {"activation_date": v.refuse("Activation date", shown, problem, "charged")}
        if self.status != DidStatus.ASSIGNED or activation is None:
            return {}
        before = type(self)._default_manager.filter(pk=self.pk).values_list("status", "activation_date").first()
        other_than = before[1] if before is not None and before[0] == DidStatus.ASSIGNED else None
        if before is not None and before[0] == DidStatus.ASSIGNED and other_than is None:
            return {}
        span = charged_span("did", self.pk, other_than=other_than)
        if span is None or activation > span.through:
            return {}
        following = span.through + timedelta(days=1)
        return {
            "activation_date": v.refuse(
                "Activation date",
                shown,
                f"the number was charged to its previous owner through {span.through.isoformat()}; "
                f"the activation date must be {following.isoformat()} or later",
                "charged",
            )
        }

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Country, area code and local number are derived from the number (libphonenumber), so
        search by them needs no parsing at query time."""
        parts = parts_of_stored(self.number)
        self.country, self.area_code, self.local_number = parts.country, parts.area_code, parts.local_number
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "number" in update_fields:
            kwargs["update_fields"] = {*update_fields, "country", "area_code", "local_number"}
        super().save(*args, **kwargs)

    def effective_status(self, today: date) -> DidState:
        """The status as sold on ``today`` (an ended quarantine reads as available)."""
        return effective_status(self.status, self.quarantine_until, today)


class VirtualNumber(LabeledUniqueMixin, TimestampedModel):
    """An extension that shares the rates and included minutes of a primary DID (seed 002)."""

    number = LabeledCharField(
        "virtual number", max_length=20, unique=True, validators=[v.Digits("Virtual number", 1, 20)]
    )
    primary_did = models.ForeignKey(
        Did, verbose_name="primary DID", on_delete=models.PROTECT, related_name="virtual_numbers"
    )
    account = models.ForeignKey("customers.Account", on_delete=models.PROTECT, related_name="virtual_numbers")
    activation_date = models.DateField("activation date", null=True, blank=True)
    additional_charge = money_field("Additional monthly charge", minimum=0, maximum=FEE_MAX)

    class Meta:
        ordering = ["number"]

    def __str__(self) -> str:
        return f"{self.number} -> {self.primary_did}"

    def clean(self) -> None:
        """The rules of docs/services.md: a virtual number is an extension of the customer that
        holds its primary DID, so it shares that DID's rates and minutes within one customer."""
        super().clean()
        errors: dict[str, ValidationError] = {}
        did = self.primary_did if self.primary_did_id else None
        if did is not None and (did.status != DidStatus.ASSIGNED or not did.account_id):
            errors["primary_did"] = v.refuse(
                "Primary DID",
                did.number,
                f"must be assigned to an account (it is {did.get_status_display().lower()})",
                "not_assigned",
            )
        elif (
            did is not None
            and self.account_id
            and did.account is not None
            and self.account.customer_id != did.account.customer_id
        ):
            errors["account"] = v.refuse(
                "Account",
                str(self.account),
                f"must belong to the customer of the primary DID {did.number} ({did.account.customer})",
                "other_customer",
            )
        if self.number and self.account_id and "account" not in errors:
            from tarifa.customers.models import Account

            clash = Account.objects.filter(
                customer_id=self.account.customer_id, kind="extension", identifier=self.number
            )
            if clash.exists():
                errors["number"] = v.refuse(
                    "Virtual number", self.number, "already an extension of this customer", "unique"
                )
        problem = activation_change_problem(self, "virtual_number", "delete it and add a new virtual number")
        if problem is not None:
            shown = self.activation_date.isoformat() if self.activation_date is not None else None
            errors["activation_date"] = v.refuse("Activation date", shown, problem, "charged")
        if errors:
            raise ValidationError(errors)


class OriginRate(TimestampedModel):
    """Tiered origination: calls from callers whose number starts with ``prefix`` cost ``rate``
    per minute on this plan (longest prefix wins; toll-free rows for the plan's toll-free numbers)."""

    plan = models.ForeignKey(DidPlan, on_delete=models.CASCADE, related_name="origin_rates")
    prefix = LabeledCharField("origin prefix", max_length=15, validators=[v.Digits("Origin prefix", 1, 15)])
    rate = money_field("Rate (per minute)", minimum=0)
    toll_free = models.BooleanField("for toll-free numbers", default=False)

    class Meta:
        verbose_name = "origin rate"
        ordering = ["plan", "toll_free", "prefix"]
        constraints = [
            models.UniqueConstraint(fields=["plan", "prefix", "toll_free"], name="origin_rate_once_per_plan"),
        ]

    def __str__(self) -> str:
        return f"{self.plan}: {self.prefix}{' (toll-free)' if self.toll_free else ''} {self.rate}"


class PayphoneOrigin(LabeledUniqueMixin, TimestampedModel):
    """A caller prefix (E.164 digits) whose calls are payphone calls: each answered inbound call
    from it pays its DID plan's payphone surcharge."""

    prefix = LabeledCharField(
        "caller prefix", max_length=15, unique=True, validators=[v.Digits("Caller prefix", 1, 15)]
    )
    description = LabeledCharField("description", max_length=200, blank=True)

    class Meta:
        verbose_name = "payphone origin"
        ordering = ["prefix"]

    def __str__(self) -> str:
        return self.prefix


class NpaNxx(LabeledUniqueMixin, models.Model):
    """One row of the operator's NPA-NXX -> LATA/state table (``tarifa lata import``)."""

    npa_nxx = LabeledCharField("NPA-NXX", max_length=6, unique=True, validators=[v.Digits("NPA-NXX", 6, 6)])
    lata = LabeledCharField("LATA", max_length=5, validators=[v.Digits("LATA", 1, 5)])
    state = LabeledCharField("state", max_length=2)

    class Meta:
        verbose_name = "NPA-NXX (LATA table)"
        verbose_name_plural = "NPA-NXX (LATA table)"
        ordering = ["npa_nxx"]

    def __str__(self) -> str:
        return f"{self.npa_nxx} LATA {self.lata} {self.state}"
