"""The DID pool (seed 000), DID plans, and virtual numbers sharing a primary DID (seed 002)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import models

from tarifa import validators as v
from tarifa.customers.models import LabeledUniqueMixin
from tarifa.dids.choices import DidDestination, DidStatus
from tarifa.fields import LabeledCharField, TimestampedModel, choice_field, int_field, money_field


class DidPlan(LabeledUniqueMixin, TimestampedModel):
    name = LabeledCharField("name", max_length=100, unique=True)
    monthly_fee = money_field("Monthly fee", minimum=0)
    setup_fee = money_field("Setup fee", minimum=0)
    included_minutes = int_field("Included inbound minutes", 0, None, default=0)
    inbound_rate = money_field("Inbound rate (per minute)", minimum=0)
    inbound_interval_1 = int_field("Inbound first interval", 1, 86400, "seconds", default=60)
    inbound_interval_n = int_field("Inbound next interval", 1, 86400, "seconds", default=60)
    description = LabeledCharField("description", max_length=200, blank=True)

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
    vendor = models.ForeignKey(
        "routing.Vendor", verbose_name="bought from", null=True, blank=True, on_delete=models.PROTECT,
        related_name="dids",
    )
    monthly_cost = money_field("Monthly cost", minimum=0)
    status = choice_field("Status", DidStatus, default=DidStatus.AVAILABLE)
    account = models.ForeignKey(
        "customers.Account", null=True, blank=True, on_delete=models.PROTECT, related_name="dids"
    )
    plan = models.ForeignKey(DidPlan, null=True, blank=True, on_delete=models.PROTECT, related_name="dids")
    activation_date = models.DateField("activation date", null=True, blank=True)
    cost_center = LabeledCharField("location / cost center", max_length=100, blank=True)
    out_payment_rate = money_field("Out-payment rate (per minute)", minimum=0)
    mac_address = LabeledCharField(
        "MAC address", max_length=17, blank=True, validators=[v.MacAddress("MAC address")],
        help_text="Six hexadecimal pairs, e.g. 00:1A:2B:3C:4D:5E.",
    )
    destination = choice_field("Route calls to", DidDestination, default=DidDestination.ACCOUNT)
    sip_device = models.ForeignKey(
        "customers.SipDevice", null=True, blank=True, on_delete=models.SET_NULL, related_name="dids"
    )
    forward_number = LabeledCharField("forward number", max_length=15, blank=True)

    class Meta:
        verbose_name = "DID"
        ordering = ["number"]

    def __str__(self) -> str:
        return self.number

    def clean(self) -> None:
        super().clean()
        errors = {}
        if self.status == DidStatus.ASSIGNED and not self.account_id:
            errors["account"] = v.refuse("Account", None, "an assigned DID needs an account")
        if self.account_id and self.status not in (DidStatus.ASSIGNED, DidStatus.DISABLED):
            errors["status"] = v.refuse("Status", self.status, "a DID with an account must be assigned or disabled")
        if self.destination == DidDestination.FORWARD:
            try:
                v.Digits("Forward number", 3, 15)(self.forward_number)
            except ValidationError as exc:
                errors["forward_number"] = exc
        if self.destination == DidDestination.SIP_DEVICE and not self.sip_device_id:
            errors["sip_device"] = v.refuse("SIP device", None, "choose the SIP device calls go to")
        if errors:
            raise ValidationError(errors)

    def save(self, *args: Any, **kwargs: Any) -> None:
        import phonenumbers

        try:
            self.country = phonenumbers.region_code_for_number(phonenumbers.parse("+" + self.number)) or ""
        except phonenumbers.NumberParseException:
            self.country = ""
        self.country = "" if self.country == "ZZ" else self.country
        super().save(*args, **kwargs)


class VirtualNumber(LabeledUniqueMixin, TimestampedModel):
    """An extension that shares the rates and included minutes of a primary DID (seed 002)."""

    number = LabeledCharField("virtual number", max_length=20, unique=True, validators=[v.Digits("Virtual number", 1, 20)])
    primary_did = models.ForeignKey(Did, verbose_name="primary DID", on_delete=models.PROTECT, related_name="virtual_numbers")
    account = models.ForeignKey("customers.Account", on_delete=models.PROTECT, related_name="virtual_numbers")
    activation_date = models.DateField("activation date", null=True, blank=True)
    additional_charge = money_field("Additional monthly charge", minimum=0)

    class Meta:
        ordering = ["number"]

    def __str__(self) -> str:
        return f"{self.number} -> {self.primary_did}"
